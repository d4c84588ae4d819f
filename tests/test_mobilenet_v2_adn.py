"""MobileNetV2ADN: the blocks and norms of each sub-network, released / torchvision checkpoints, FLOPs and
parameters, the ImageNet config (the contract suite checks what every family must do: equivalence with
mmpretrain's MobileNetV2, frozen stages, plain checkpoints, Algorithm 1)."""
import os.path as osp

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.models.backbones.mobilenet_v2 import InvertedResidual
from mmpretrain.registry import MODELS

from mmadn.analysis.measure import count_flops
from mmadn.models import MobileNetV2ADN
from mmadn.models.backbones.mobilenet_v2_adn_layouts import (convert, detect_layout, mmpretrain_to_released,
                                                             released_to_mmpretrain, torchvision_to_mmpretrain,
                                                             torchvision_to_released)

from ._families import perturb_norms, record_each_subnet

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# ADN spec section 3, written out rather than computed: blocks per stage (layer1 .. layer7) and, for the five
# skippable stages, the skippable block indices.
STAGE_BLOCKS = (1, 2, 3, 4, 3, 3, 1)
SPEC_SKIPPABLE = {'layer2': {1}, 'layer3': {2}, 'layer4': {2, 3}, 'layer5': {2}, 'layer6': {2}}
FLAG_OF = {'conv1': 0, 'layer1': 0, 'layer2': 0, 'layer3': 1, 'layer4': 2, 'layer5': 3, 'layer6': 4, 'layer7': 4,
           'conv2': 4}
# spec section 7: mmengine's counter on the released classifier, 224x224; released parameters
SPEC_GFLOPS = {'FFFFF': 0.314, 'TTTTT': 0.215}
RELEASED_PARAMS_M = 3.528
TINY = dict(widen_factor=0.25)


def _classifier(num_classes=1000, **backbone):
    return MODELS.build(
        dict(type='ImageClassifier', backbone=dict(type='MobileNetV2ADN', **backbone),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=1280)))


def test_five_flags_one_per_stage_of_at_least_two_blocks():
    model = MobileNetV2ADN(**TINY)
    assert model.num_skip_flags == 5 and model.skip == 'FFFFF'
    assert model.stage_module_names() == list(SPEC_SKIPPABLE)
    assert [len(getattr(model, f'layer{i + 1}')) for i in range(7)] == list(STAGE_BLOCKS)
    assert list(model.distill_stage_features()) == ['layer2', 'layer3', 'layer4', 'layer5']
    assert len(model.subnets()) == 32 and model.subnets()[-1] == 'TTTTT'


def _unit_flag(norm_name):
    return FLAG_OF[norm_name.split('.')[0]]


def test_each_skip_runs_the_blocks_and_norms_of_the_spec():
    model = MobileNetV2ADN(**TINY).eval()
    all_norms = [name for name, m in model.named_modules()
                 if isinstance(m, torch.nn.BatchNorm2d) and not name.endswith('_skip')]
    ran = record_each_subnet(model, torch.randn(1, 3, 32, 32),
                             is_block=lambda _, m: isinstance(m, InvertedResidual),
                             is_norm=lambda _, m: isinstance(m, torch.nn.BatchNorm2d))
    for skip, (ran_blocks, ran_norms) in ran.items():
        expected_blocks = []
        for stage, n in enumerate(STAGE_BLOCKS, start=1):
            layer = f'layer{stage}'
            flag = skip[FLAG_OF[layer]] == 'T'
            expected_blocks += [f'{layer}.{b}' for b in range(n)
                                if not (flag and b in SPEC_SKIPPABLE.get(layer, ()))]
        expected_norms = []
        for norm in all_norms:
            owner = norm.split('.')[0]
            if owner.startswith('layer') and '.'.join(norm.split('.')[:2]) not in expected_blocks:
                continue
            # twins: every unit that still runs while its flag is T (skippable blocks do not run then)
            expected_norms.append(norm.replace('.bn', '.bn_skip') if skip[_unit_flag(norm)] == 'T' else norm)
        assert ran_blocks == expected_blocks, skip
        assert ran_norms == expected_norms, skip
        assert model.active_blocks(skip) == expected_blocks
    assert model.blocks_per_subnet()['TTTTT'] == [
        'layer1.0', 'layer2.0', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1', 'layer5.0', 'layer5.1', 'layer6.0',
        'layer6.1', 'layer7.0'
    ]


def test_twins_sit_on_every_non_skippable_unit_and_cost_the_released_parameters():
    model = MobileNetV2ADN()
    twins = [twin for twin, _ in model.twin_norm_names()]
    owners = sorted({'.'.join(t.split('.')[:2]) if t.startswith('layer') else t.split('.')[0] for t in twins})
    assert owners == ['conv1', 'conv2', 'layer1.0', 'layer2.0', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1',
                      'layer5.0', 'layer5.1', 'layer6.0', 'layer6.1', 'layer7.0']
    assert len(twins) == 34 and all(t.endswith('.bn_skip') for t in twins)
    extra = sum(p.numel() for n, p in model.named_parameters() if '_skip' in n)
    assert extra == 22672
    classifier = _classifier()
    params = sum(p.numel() for p in classifier.parameters())
    assert params == 3504872 + 22672  # torchvision's MobileNetV2 + twins
    assert abs(params / 1e6 - RELEASED_PARAMS_M) < 0.0005, params


@torch.no_grad()
def test_flops_of_super_and_base_net_match_the_spec():
    classifier = _classifier().eval()
    inputs = torch.randn(1, 3, 224, 224)
    measured = {}
    for skip in ('FFFFF', 'TFFFF', 'TTTTT'):
        classifier.backbone.skip = skip
        measured[skip] = count_flops(classifier, lambda x: classifier(x, mode='tensor'), inputs) / 1e9
    for skip, spec in SPEC_GFLOPS.items():
        assert abs(measured[skip] - spec) / spec < 0.01, measured
    assert measured['TTTTT'] < measured['TFFFF'] < measured['FFFFF']


# ---- checkpoints -----------------------------------------------------------------------------------------------

def _torchvision_mobilenet_v2(num_classes=1000):
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes)
    perturb_norms(model)
    return model.eval()


def _released(num_classes=1000):
    """A state dict laid out as the authors release MobileNetV2-ADN, with twins distinct from the shared norms."""
    released = torchvision_to_released(_torchvision_mobilenet_v2(num_classes).state_dict())
    for key, value in released.items():
        if '.norm_skip.' in key and value.is_floating_point():
            released[key] = value + torch.rand_like(value) * 0.1
    return released


def test_released_layout_has_the_names_of_the_authors_code():
    released = _released(10)
    assert detect_layout(released) == 'released'
    for key in ('features.0.conv_layer.weight', 'features.0.norm_skip.running_var', 'features.1.conv.1.norm_skip.bias',
                'features.2.0.conv.2.norm_skip.weight', 'features.3.1.conv.0.norm_skip.weight',
                'features.4.1.conv.1.norm.weight', 'features.4.3.conv.2.norm.running_mean',
                'features.7.conv.2.norm_skip.weight', 'features.8.norm_skip.weight', 'classifier.1.weight'):
        assert key in released, key
    for key in ('features.2.1.conv.0.norm_skip.weight', 'features.4.2.conv.0.norm_skip.weight',
                'features.6.2.conv.2.norm_skip.weight'):  # skippable blocks have no twins
        assert key not in released, key
    assert len({k.rpartition('.')[0] for k in released if '.norm_skip.' in k}) == 34
    stats = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
    assert list(released)[:11] == (['features.0.conv_layer.weight'] + [f'features.0.norm.{s}' for s in stats] +
                                   [f'features.0.norm_skip.{s}' for s in stats])  # the release's module order


def test_released_layout_round_trips_bit_exactly():
    released = _released(10)
    mm = released_to_mmpretrain(released)
    assert detect_layout(mm) == 'mmpretrain'
    for rel, ours in (('features.0.norm_skip.weight', 'backbone.conv1.bn_skip.weight'),
                      ('features.1.conv.1.conv_layer.weight', 'backbone.layer1.0.conv.1.conv.weight'),
                      ('features.4.1.conv.2.norm_skip.running_mean', 'backbone.layer4.1.conv.2.bn_skip.running_mean'),
                      ('features.4.3.conv.0.norm.bias', 'backbone.layer4.3.conv.0.bn.bias'),
                      ('features.7.conv.1.norm.weight', 'backbone.layer7.0.conv.1.bn.weight'),
                      ('features.8.norm_skip.running_var', 'backbone.conv2.bn_skip.running_var'),
                      ('classifier.1.bias', 'head.fc.bias')):
        assert mm[ours] is released[rel], rel
    back = mmpretrain_to_released(mm)
    assert list(back) == list(released)
    assert all(torch.equal(back[k], released[k]) for k in released)
    assert list(convert(mm, 'released')) == list(released) and list(convert(released, 'mmpretrain')) == list(mm)


@torch.no_grad()
def test_torchvision_with_twins_converts_to_a_classifier_with_identical_outputs():
    reference = _torchvision_mobilenet_v2(10)
    released = torchvision_to_released(reference.state_dict())  # twins = copies of the shared norms
    classifier = _classifier(num_classes=10).eval()
    converted = released_to_mmpretrain(released)
    missing, unexpected = classifier.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    plain = torchvision_to_mmpretrain(reference.state_dict())  # the same, without twins
    assert list(plain) == [k for k in converted if '_skip' not in k]
    assert all(torch.equal(plain[k], converted[k]) for k in plain)
    x = torch.randn(2, 3, 64, 64)
    expected = reference(x)
    torch.testing.assert_close(classifier(x, mode='tensor'), expected, rtol=1e-5, atol=1e-5)
    # twins = shared norms: the base-net of this network is torchvision's with the skippable blocks left out
    classifier.backbone.skip = 'base'
    features = reference.features
    keep = [0, 1, 2, 4, 5, 7, 8, 11, 12, 14, 15, 17, 18]  # stem, base-net blocks (torchvision numbers), last conv
    h = x
    for i in keep:
        h = features[i](h)
    base_expected = reference.classifier(h.mean((2, 3)))
    torch.testing.assert_close(classifier(x, mode='tensor'), base_expected, rtol=1e-5, atol=1e-5)


def test_unknown_layout_fails_clearly():
    with pytest.raises(ValueError, match='Unknown checkpoint layout'):
        detect_layout({'encoder.blocks.0.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='Expected a checkpoint in the released'):
        released_to_mmpretrain(torchvision.models.mobilenet_v2(weights=None).state_dict())
    with pytest.raises(ValueError, match='unknown module'):
        released_to_mmpretrain({'features.0.conv_layer.weight': torch.zeros(1),
                                'features.9.norm.weight': torch.zeros(1)})


# ---- training and config ---------------------------------------------------------------------------------------

def test_imagenet_config_builds():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mobilenet_v2_adn_8xb32_in1k.py'))
    assert cfg.default_scope == 'mmpretrain' and 'mmadn' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['ADNDistillHook'] and cfg.custom_hooks[0].logits_topk == 500
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    assert cfg.param_scheduler.milestones == [150, 225, 285] and cfg.train_cfg.max_epochs == 300
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, MobileNetV2ADN) and model.backbone.skip == 'FFFFF'
    assert model.backbone.widen_factor == 1.0 and model.head.fc.in_features == 1280
