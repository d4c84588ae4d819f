"""MSDNet for IMTA: cumulative FLOPs and parameters per exit against the original MSDNet figures (spec imta.md)."""
import pytest
import torch
from mmpretrain.registry import MODELS

from mmadn.imta import MSDNet, exit_costs

# IMTA paper, Table 1: CIFAR-100, 7 exits, linear growth, step 1, base 1 (read with MSDNet's own counter)
PAPER_7EXITS_MFLOPS = [6.86, 14.35, 27.29, 48.45, 76.43, 108.85, 137.28]
PAPER_7EXITS_MPARAMS = [0.30, 0.65, 1.11, 1.73, 2.38, 3.05, 3.97]
ORIGINAL_5EXITS_MFLOPS = [6.86, 14.35, 27.54, 41.71, 58.48]
ORIGINAL_IMAGENET_STEP4_GFLOPS = [0.340, 0.685, 1.008, 1.254, 1.361]
MMENGINE_7EXITS_TOTAL_MFLOPS = 137.99  # mmengine's counter on the original 7-exit model


def build(arch, num_classes, **backbone):
    return MODELS.build(
        dict(type='MultiExitClassifier',
             backbone=dict(type='MSDNet', arch=arch, **backbone),
             head=dict(type='MultiExitClsHead', num_classes=num_classes,
                       inter_channels=128 if arch.startswith('cifar') else None))).eval()


@pytest.fixture(scope='module')
def cifar100_7exits():
    return build('cifar-budgeted', 100, num_exits=7)


def _assert_close(measured, reference, tol=0.01):
    for m, r in zip(measured, reference, strict=True):
        assert abs(m - r) / r < tol, (measured, reference)


def test_cifar100_7exits_flops_and_params_match_imta_table1(cifar100_7exits):
    flops, params = exit_costs(cifar100_7exits, (3, 32, 32), convention='msdnet')
    _assert_close([f / 1e6 for f in flops], PAPER_7EXITS_MFLOPS)
    _assert_close([p / 1e6 for p in params], PAPER_7EXITS_MPARAMS)
    # the paper's figures are reproduced to their printed precision, not just within 1 %
    _assert_close([f / 1e6 for f in flops], PAPER_7EXITS_MFLOPS, tol=0.001)


def test_mmengine_default_count_of_the_whole_7exit_model(cifar100_7exits):
    flops, _ = exit_costs(cifar100_7exits, (3, 32, 32))
    assert abs(flops[-1] / 1e6 - MMENGINE_7EXITS_TOTAL_MFLOPS) < 0.01, flops[-1]
    # mmengine's default convention (BN counted, ReLU and pooling free) is within ~1 % per exit
    _assert_close([f / 1e6 for f in flops], PAPER_7EXITS_MFLOPS, tol=0.011)


def test_cifar100_5exits_flops_match_original_counter():
    flops, _ = exit_costs(build('cifar-budgeted', 100), (3, 32, 32), convention='msdnet')
    _assert_close([f / 1e6 for f in flops], ORIGINAL_5EXITS_MFLOPS)


def test_imagenet_step4_flops_match_original_counter():
    model = build('imagenet-step4', 1000)
    # the classifiers' widths of the public IMTA code (logits_channels for step 4)
    assert model.backbone.exit_channels == [384, 384, 352, 304, 560]
    flops, _ = exit_costs(model, (3, 224, 224), convention='msdnet')
    _assert_close([f / 1e9 for f in flops], ORIGINAL_IMAGENET_STEP4_GFLOPS)


def test_block_layout_follows_step_rule():
    assert MSDNet.block_steps(7, 'lin_grow', 1, 1) == [1, 2, 3, 4, 5, 6, 7]
    assert MSDNet.block_steps(7, 'even', 2, 4) == [4, 2, 2, 2, 2, 2, 2]
    backbone = MSDNet(arch='cifar-anytime')
    feats = backbone(torch.zeros(2, 3, 32, 32))
    assert len(feats) == 7
    assert [f.shape[1] for f in feats] == backbone.exit_channels
    assert all(f.shape[-2:] == (8, 8) for f in feats)  # the coarsest of scales 32/16/8


def test_bad_configuration_is_refused_with_a_fix():
    with pytest.raises(ValueError, match='Unknown MSDNet arch'):
        MSDNet(arch='cifar')
    with pytest.raises(ValueError, match='one entry per scale'):
        MSDNet(arch='cifar-anytime', gr_factor=(1, 2, 4), bn_factor=(1, 2))
    with pytest.raises(ValueError, match='must be even'):
        MSDNet(arch='cifar-anytime', growth_rate=5, gr_factor=(1, 1, 1), bn_factor=(1, 1, 1))
    with pytest.raises(ValueError, match="step_mode must be 'even' or 'lin_grow'"):
        MSDNet(arch='cifar-anytime', step_mode='linear')
    with pytest.raises(ValueError, match='head.in_channels'):
        MODELS.build(dict(type='MultiExitClassifier', backbone=dict(type='MSDNet', arch='cifar-anytime'),
                          head=dict(type='MultiExitClsHead', num_classes=10, in_channels=[1, 2])))
    model = build('cifar-anytime', 10)
    with pytest.raises(ValueError, match='32x32 inputs with the CIFAR stem'):
        model(torch.zeros(1, 3, 64, 64))
