"""MSDNet for IMTA: cumulative FLOPs and parameters per exit against the original MSDNet figures (spec imta.md)."""
from itertools import accumulate

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
    return build('cifar-lin_grow', 100, num_exits=7)


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
    flops, _ = exit_costs(build('cifar-lin_grow', 100, num_exits=5), (3, 32, 32), convention='msdnet')
    _assert_close([f / 1e6 for f in flops], ORIGINAL_5EXITS_MFLOPS)


def test_imagenet_step4_flops_match_original_counter():
    model = build('imagenet-step4', 1000)
    # the classifiers' widths of the public IMTA code (logits_channels for step 4)
    assert model.backbone.exit_channels == [384, 384, 352, 304, 560]
    flops, _ = exit_costs(model, (3, 224, 224), convention='msdnet')
    _assert_close([f / 1e9 for f in flops], ORIGINAL_IMAGENET_STEP4_GFLOPS)


# the classifiers' input widths of the public IMTA code (models/msdnet_imta.py, logits_channels per step)
PUBLIC_IMAGENET_EXIT_CHANNELS = {4: [384, 384, 352, 304, 560], 6: [512, 544, 496, 880, 792],
                                 7: [576, 640, 608, 528, 976]}


@pytest.mark.parametrize('step', [4, 6, 7])
def test_imagenet_exits_sit_where_the_public_code_puts_them(step):
    """The public code (run_GE.sh / MSDNet-PyTorch's README: --step t --base t, even) puts exit i after t * i MSDN
    layers; the presets follow it. Exits after the paper's (t * i + 3)-th layer (base t + 3) would read other
    widths than the public code's classifiers do."""
    backbone = MSDNet(arch=f'imagenet-step{step}')
    assert backbone.steps == [step] * 5
    assert list(accumulate(backbone.steps)) == [step * i for i in range(1, 6)]
    assert backbone.exit_channels == PUBLIC_IMAGENET_EXIT_CHANNELS[step]
    plus3 = MSDNet(arch=f'imagenet-step{step}', base=step + 3)
    assert list(accumulate(plus3.steps)) == [step * i + 3 for i in range(1, 6)]
    assert plus3.exit_channels != PUBLIC_IMAGENET_EXIT_CHANNELS[step]


def test_block_layout_follows_step_rule():
    assert MSDNet.block_steps(7, 'lin_grow', 1, 1) == [1, 2, 3, 4, 5, 6, 7]
    assert MSDNet.block_steps(7, 'even', 2, 4) == [4, 2, 2, 2, 2, 2, 2]
    assert MSDNet().steps == [1, 2, 3, 4, 5, 6, 7]  # the default: the IMTA paper's CIFAR network (Table 1)
    backbone = MSDNet(arch='cifar-even')  # MSDNet's own anytime setting
    assert backbone.steps == [4, 2, 2, 2, 2, 2, 2]
    feats = backbone(torch.zeros(2, 3, 32, 32))
    assert len(feats) == 7
    assert [f.shape[1] for f in feats] == backbone.exit_channels
    assert all(f.shape[-2:] == (8, 8) for f in feats)  # the coarsest of scales 32/16/8


def test_bad_configuration_is_refused_with_a_fix():
    with pytest.raises(ValueError, match='Unknown MSDNet arch'):
        MSDNet(arch='cifar')
    # the presets whose names said 'anytime' / 'budgeted' of other networks point at their new names
    with pytest.raises(ValueError, match="'cifar-anytime' was renamed: use 'cifar-even'.*'cifar-lin_grow'"):
        MSDNet(arch='cifar-anytime')
    with pytest.raises(ValueError, match="use 'cifar-lin_grow' with num_exits=5"):
        MSDNet(arch='cifar-budgeted')
    with pytest.raises(ValueError, match='one entry per scale'):
        MSDNet(arch='cifar-even', gr_factor=(1, 2, 4), bn_factor=(1, 2))
    with pytest.raises(ValueError, match='must be even'):
        MSDNet(arch='cifar-even', growth_rate=5, gr_factor=(1, 1, 1), bn_factor=(1, 1, 1))
    with pytest.raises(ValueError, match="step_mode must be 'even' or 'lin_grow'"):
        MSDNet(arch='cifar-even', step_mode='linear')
    with pytest.raises(ValueError, match='head.in_channels'):
        MODELS.build(dict(type='MultiExitClassifier', backbone=dict(type='MSDNet', arch='cifar-even'),
                          head=dict(type='MultiExitClsHead', num_classes=10, in_channels=[1, 2])))
    model = build('cifar-even', 10)
    with pytest.raises(ValueError, match='32x32 inputs with the CIFAR stem'):
        model(torch.zeros(1, 3, 64, 64))
