"""Issue 13, item 1: with_cp=True gives the gradients of with_cp=False when sub-networks switch before backward.

Algorithm 1 runs the teacher, then the student, then one backward. A checkpointed block recomputes its forward
in that backward, so it must normalise with the norms that were selected in its forward, not with the current
ones. Checked for every ADN backbone that offers with_cp (mmpretrain's ViT has no with_cp).
"""
import pytest
import torch
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

from mmadn.models import ResNetADN, SubPathDistillation

from ._families import FAMILIES, family_kwargs, perturb_norms

# every family of the table that offers with_cp, and two ResNets more: drop path, bottlenecks under norm_eval
CASES = {**{name: (name, dict(norm_eval=False) if name == 'resnet' else {})
            for name, family in FAMILIES.items() if family.with_cp},
         'resnet_drop_path': ('resnet', dict(norm_eval=False, drop_path_rate=0.3)),
         'resnet50': ('resnet', dict(depth=50, out_indices=(1, 3)))}


def _twins(family, **kwargs):
    """The same weights, without and with checkpointing; every norm (twins too) its own, so a mix-up shows."""
    plain = FAMILIES[family].adn(**family_kwargs(family, with_cp=False, **kwargs))
    plain.init_weights()
    perturb_norms(plain)
    checkpointed = FAMILIES[family].adn(**family_kwargs(family, with_cp=True, **kwargs))
    checkpointed.load_state_dict(plain.state_dict())
    return plain.train(), checkpointed.train()


def _super_and_base_grads(backbone, x):
    """The backbone part of Algorithm 1: super-net forward, base-net forward, one backward of the sum."""
    torch.manual_seed(1)  # the same drop-path masks in both models
    with backbone.switch('super'):
        teacher = backbone(x)
    with backbone.switch('base'):
        student = backbone(x)
    (sum(o.square().mean() for o in teacher) + sum(o.square().mean() for o in student)).backward()
    return {name: p.grad for name, p in backbone.named_parameters()}


@pytest.mark.parametrize('case', list(CASES))
def test_checkpointed_gradients_equal_plain_ones_across_a_switch(case):
    family, kwargs = CASES[case]
    plain, checkpointed = _twins(family, **kwargs)
    size = FAMILIES[family].size
    x = torch.randn(2, 3, size, size, requires_grad=True)
    expected = _super_and_base_grads(plain, x)
    got = _super_and_base_grads(checkpointed, x)
    twins = [got[f'{twin}.weight'] for twin, _ in checkpointed.twin_norm_names()]
    assert all(g is not None for g in twins) and sum(g.abs().sum() for g in twins) > 0  # the base-net's are trained
    assert all(g is not None for g in expected.values())
    for key, grad in expected.items():
        assert got[key] is not None, key
        assert torch.allclose(got[key], grad, rtol=1e-4, atol=1e-6), key
    assert checkpointed.skip == plain.skip  # the recomputation put back the selection it found


def test_the_stage_checkpoints_its_blocks_only_when_the_input_needs_grad():
    """The blocks' own with_cp is off (the stage does it); as in mmdet, no gradient, no recomputation."""
    model = ResNetADN(18, with_cp=True).eval()
    assert all(not block.with_cp for stage in model.stages for block in stage)  # the stage checkpoints them
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert not out[-1].requires_grad


def _classifier(with_cp):
    return MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='ResNetADN', depth=18, out_indices=(3, ), with_cp=with_cp),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=5, in_channels=512, loss=dict(type='CrossEntropyLoss'))))


def test_algorithm_1_step_with_cp_equals_without():
    plain = _classifier(False)
    plain.init_weights()
    checkpointed = _classifier(True)
    checkpointed.load_state_dict(plain.state_dict())
    inputs = torch.randn(4, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 5) for i in range(4)]
    grads = []
    for model in (plain.train(), checkpointed.train()):
        losses = SubPathDistillation(model, model.loss)(inputs, samples)
        sum(losses.values()).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[1]['backbone.layer1.0.bn1_skip.weight'] is not None
    for key, grad in grads[0].items():
        assert torch.allclose(grads[1][key], grad, rtol=1e-4, atol=1e-6), key
