"""Issue 5: an exported sub-network (static, optionally fused, ONNX) computes what the adaptive model computes."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmadn.deploy import export_backbone, export_model
from mmadn.models import ResNetADN, StaticResNet

from ._torch_features import needs_dynamo_exporter


def _adn(depth=18, **kwargs):
    model = ResNetADN(depth, zero_init_residual=False, **kwargs)
    model.init_weights()
    for name, m in model.named_modules():  # twins that differ from their shared norms
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize('skip', ['FFFF', 'TTTT', 'TFTF'])
@pytest.mark.parametrize('depth', [18, 50])
def test_exported_backbone_matches_the_adaptive_one(depth, skip):
    model = _adn(depth, skip=skip)
    cfg, static = export_backbone(model)
    assert isinstance(static, StaticResNet)
    assert sum(cfg['stage_blocks']) == len(model.active_blocks())
    assert not any('_skip' in k for k in static.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for got, expected in zip(static.eval()(x), model(x)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        _, fused = export_backbone(model, fuse=True)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        for got, expected in zip(fused(x), model(x)):  # folding reorders float sums: relative to scale
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    # the exported config rebuilds the same structure, ready for the saved state dict
    rebuilt = StaticResNet(**{k: v for k, v in cfg.items() if k != 'type'})
    rebuilt.load_state_dict(static.state_dict(), strict=True)


@needs_dynamo_exporter
def test_exported_backbone_runs_in_onnxruntime(tmp_path):
    onnxruntime = pytest.importorskip('onnxruntime')
    model = _adn(18, skip='TTTT', out_indices=(3, ))
    _, static = export_backbone(model, fuse=True)
    x = torch.randn(1, 3, 64, 64)
    path = str(tmp_path / 'backbone.onnx')
    torch.onnx.export(static, (x, ), path, dynamo=True, input_names=['input'])
    session = onnxruntime.InferenceSession(path)
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x)[0], rtol=1e-4, atol=1e-4)


def test_exported_detector_matches_and_rebuilds_from_its_config(repo_root):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, 'configs/demo/faster_rcnn_r18_adn_fpn_synthetic.py'))
    cfg.model.backbone.zero_init_residual = False
    cfg.model.backbone.init_cfg = None  # the demo's pretrained classifier is not needed here
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        model.backbone.skip = 'TTFT'
        new_cfg, state = export_model(model, cfg)
        assert new_cfg.model.backbone.type == 'StaticResNet' and not new_cfg.custom_hooks
        static = MODELS.build(new_cfg.model)
    missing, unexpected = static.load_state_dict(state, strict=True)
    static.eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for got, expected in zip(static.extract_feat(x), model.extract_feat(x)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('config, scope, size', [
    ('configs/mobilenet_v2_adn_8xb32_in1k.py', 'mmpretrain', 64),  # a classifier
    ('configs/vit_b32_adn_4xb256_in1k.py', 'mmpretrain', 224),
    ('configs/mask_rcnn_swin_t_adn_fpn_1x_coco.py', 'mmdet', 128),  # a detector of another family
])
def test_exported_model_of_every_family_rebuilds_from_its_config_and_matches(repo_root, config, scope, size):
    from mmengine.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, config))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        backbone = model.backbone
        backbone.skip = ''.join('TF'[i % 2] for i in range(backbone.num_skip_flags))
        new_cfg, state = export_model(model, cfg)
        assert all(h['type'] != 'ADNDistillHook' for h in new_cfg.get('custom_hooks', []))
        assert 'ADN' not in new_cfg.model.backbone.type
        static = MODELS.build(new_cfg.model)
    static.load_state_dict(state, strict=True)
    static.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        for got, expected in zip(static.extract_feat(x), model.extract_feat(x)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
