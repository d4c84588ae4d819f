"""Issue 15: a chosen sub-network in ONNX Runtime / OpenVINO agrees with PyTorch; the deadline demo end to end."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from mmadn.deploy.runtime import DeployablePart, RuntimeModel, deployable_part, max_relative_error
from mmadn.models import MobileNetV2ADN, ResNetADN

from ._cli import run_tool
from .test_benchmark import CLS_CONFIG, cls_checkpoint  # noqa: F401 (the fixture)

BACKENDS = ['onnxruntime'] + (['openvino'] if importlib.util.find_spec('openvino') else [])


class _Pool(torch.nn.Module):

    def forward(self, feats):
        return feats[-1].mean((2, 3))


class _Classifier(torch.nn.Module):
    """The attributes of an mmpretrain ImageClassifier that deployable_part reads."""

    def __init__(self, backbone, channels):
        super().__init__()
        self.backbone, self.with_neck = backbone, True
        self.neck, self.head = _Pool(), torch.nn.Linear(channels, 5)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('family', ['resnet', 'mobilenet'])
def test_runtime_matches_the_adaptive_model_at_the_chosen_depth(tmp_path, backend, family):
    torch.manual_seed(0)
    if family == 'resnet':
        backbone, channels = ResNetADN(18, zero_init_residual=False), 512
    else:
        backbone, channels = MobileNetV2ADN(widen_factor=0.5), 1280
    backbone.init_weights()
    model = _Classifier(backbone, channels).eval()
    backbone.skip = backbone.subnets()[-1]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.head(model.neck(model.backbone(x)))
    part = deployable_part(model)
    assert isinstance(part, DeployablePart)
    runtime = RuntimeModel(part, x, backend, str(tmp_path / 'model.onnx'))
    assert runtime.error < 1e-4
    assert max_relative_error([expected.numpy()], runtime(x.numpy())) < 1e-4


def test_a_disagreeing_runtime_is_reported():
    ref = [torch.ones(2, 3).numpy()]
    assert max_relative_error(ref, [ref[0] * 1.01]) == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(ValueError, match='output shape'):
        max_relative_error(ref, [torch.ones(3, 2).numpy()])


def test_deadline_demo_on_a_tiny_classifier(cls_checkpoint, tmp_path):  # noqa: F811
    ckpt, opts = cls_checkpoint
    run_tool('tools/analysis_tools/benchmark_subnets.py', CLS_CONFIG, ckpt, '--skips', 'FFFF', 'TTFF', 'TTTT',
             '--out-dir', tmp_path, '--runs', '3', '--warmup', '1', '--cfg-options', *opts)
    _, out = run_tool('tools/deployment/deadline_demo.py', CLS_CONFIG, ckpt, '--table', tmp_path / 'subnets.json',
                      '--deadlines', '1000', '0.001', '--warmup', '1', '--cfg-options', *opts)
    result = json.load(open(tmp_path / 'deadline_demo.json'))
    phases = {(p['phase'], p['policy']): p for p in result['phases']}
    rows = json.load(open(tmp_path / 'subnets.json'))['subnets']
    best = max(rows, key=lambda r: (r['top1'], -r['latency_p90_ms']))['skip']
    cheapest = min(rows, key=lambda r: (r['latency_p90_ms'], -r['top1']))['skip']
    # a generous deadline: the table's best depth throughout; an impossible one: the cheapest, every call missed
    assert phases[(0, 'controller')]['depths'] == {best: 12}
    assert phases[(1, 'controller')]['depths'] == {cheapest: 12} and phases[(1, 'controller')]['hits'] == 0
    assert all(0 <= p['top1'] <= 100 for p in result['phases'])
    assert '| controller |' in out and osp.isfile(tmp_path / 'deadline_demo.md')
