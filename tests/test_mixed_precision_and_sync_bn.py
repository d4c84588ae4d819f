"""Issue 34: Algorithm 1 under autocast (the KL terms in float32) and twin norms under SyncBN, on CPU.

CPU autocast in bfloat16 stands in for a GPU's ``--amp``: the same dispatch, and a mantissa shorter than
float16's. mmcv's CPU NMS takes float32 only, so the detector here is a RetinaNet, whose training loss runs no NMS.
"""
import copy

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import ConfigDict
from mmengine.model import convert_sync_batchnorm
from mmengine.registry import DefaultScope
from torch import nn

from mmadn.models import SubPathDistillation, subnet
from mmadn.models.losses import feature_kl
from tests.test_adn_distill import _classifier, _cls_batch

RELATIVE_TOLERANCE = 0.02  # issue 34's target for every loss under bf16 autocast against float32


def _retinanet(norm_type='BN'):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(ConfigDict(
            type='RetinaNet',
            data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
            backbone=dict(type='ResNetADN', depth=18, norm_eval=False, frozen_stages=-1, zero_init_residual=False,
                          norm_cfg=dict(type=norm_type, requires_grad=True)),
            neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=32, start_level=1,
                      add_extra_convs='on_input', num_outs=5),
            bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=32, stacked_convs=1, feat_channels=32,
                           anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                                 ratios=[1.0], strides=[8, 16, 32, 64, 128]),
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
                           loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                           loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                         ignore_iof_thr=-1),
                           sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
            test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                          max_per_img=20)))
    model.init_weights()
    return model


def _scalar_losses(losses):
    return {k: sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items() if 'loss' in k}


def _algorithm_1(model, inputs, samples, autocast):
    model.zero_grad()
    objective = SubPathDistillation(model, model.loss, student_task_loss_weight=0)
    torch.manual_seed(0)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        losses = _scalar_losses(objective(inputs, samples))
    sum(losses.values()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def _detection_batch(model):
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 3], num_classes=3)
    data = model.data_preprocessor(packed, True)
    return data['inputs'], data['data_samples']


@pytest.mark.parametrize('kind', ['classifier', 'retinanet'])
def test_algorithm_1_under_bf16_autocast_matches_float32(kind):
    """Every loss within 2 % of float32 and finite, the KL terms themselves computed in float32, and the twins
    (used by the base-net only) reached by a non-zero gradient."""
    if kind == 'classifier':
        model = _classifier().train()
        inputs, samples = _cls_batch(8)
    else:
        model = _retinanet().train()
        inputs, samples = _detection_batch(model)
    reference, _ = _algorithm_1(copy.deepcopy(model), inputs, samples, autocast=False)
    mixed, grads = _algorithm_1(model, inputs, samples, autocast=True)
    assert set(mixed) == set(reference) and any(k.startswith('loss_kl') for k in mixed)
    for key, value in mixed.items():
        assert torch.isfinite(value), key
        assert value.dtype == torch.float32 or not key.startswith('loss_kl'), key
        torch.testing.assert_close(value, reference[key], rtol=RELATIVE_TOLERANCE, atol=1e-6, msg=key)
    twins = [n for n in grads if '_skip.' in n]
    assert twins and all(grads[n].abs().sum() > 0 for n in twins)


def test_feature_kl_keeps_what_bf16_would_lose():
    """A softmax over 64x64 positions puts ~2e-4 on each: computed in bf16 the KL of two close maps is off by far
    more than 2 %; the function computes it in float32 from bf16 inputs."""
    torch.manual_seed(0)
    teacher = torch.randn(2, 8, 64, 64)
    student = teacher + 0.05 * torch.randn_like(teacher)
    exact = feature_kl(teacher, student, 'spatial')
    half_t, half_s = teacher.bfloat16(), student.bfloat16().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        kl = feature_kl(half_t, half_s, 'spatial')
    assert kl.dtype == torch.float32
    torch.testing.assert_close(kl, feature_kl(half_t.float(), half_s.float(), 'spatial'))
    kl.backward()
    assert half_s.grad.dtype == torch.bfloat16 and half_s.grad.abs().sum() > 0
    p_t = torch.softmax(half_t.flatten(2), 2)  # the same KL done in bf16 throughout
    naive = (p_t * (torch.log_softmax(half_t.flatten(2), 2) - torch.log_softmax(half_s.detach().flatten(2), 2)))
    assert abs(naive.sum(2).mean().float() / exact - 1) > RELATIVE_TOLERANCE
    assert abs(kl / exact - 1) < RELATIVE_TOLERANCE


def _twin_norms(model):
    return {n: m for n, m in model.named_modules() if n.endswith('_skip')}


@pytest.mark.parametrize('route', ['runner_sync_bn', 'norm_cfg'])
def test_sync_bn_keeps_every_twin_the_switching_and_the_checkpoint_layout(route):
    """``sync_bn='torch'`` (the Runner's conversion, mmengine's convert_sync_batchnorm) or
    ``norm_cfg=dict(type='SyncBN')``: every twin is a SyncBatchNorm, a switch still selects it, the state dict has the
    same keys, and in eval the outputs equal the BatchNorm model's at every depth (SyncBatchNorm trains only in a
    process group; in eval it is a BatchNorm)."""
    torch.manual_seed(0)
    plain = _retinanet().eval()
    for module in plain.modules():  # distinct running statistics per norm, so that a wrong twin would show
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    if route == 'runner_sync_bn':
        synced = convert_sync_batchnorm(copy.deepcopy(plain), implementation='torch')
    else:
        synced = _retinanet(norm_type='SyncBN')
        synced.load_state_dict(plain.state_dict(), strict=True)
    synced.eval()
    twins = _twin_norms(synced)
    assert twins and set(twins) == set(_twin_norms(plain))
    assert all(isinstance(t, nn.SyncBatchNorm) for t in twins.values())  # mmcv's SyncBN subclasses torch's
    assert list(synced.state_dict()) == list(plain.state_dict())
    block = synced.backbone.layer2[0]
    with subnet(synced, 'TTTT'):
        assert block.norm1 is block.bn1_skip and isinstance(block.norm1, nn.SyncBatchNorm)
    assert block.norm1 is block.bn1
    inputs = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for skip in ('FFFF', 'TFTF', 'TTTT'):
            with subnet(plain, skip), subnet(synced, skip):
                for want, got in zip(plain.extract_feat(inputs), synced.extract_feat(inputs)):
                    torch.testing.assert_close(got, want)
    reloaded = _retinanet()
    reloaded.load_state_dict(synced.state_dict(), strict=True)  # back to BatchNorm: the same layout
