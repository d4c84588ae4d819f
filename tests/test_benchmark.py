"""Issue 5: norm recalibration, the Pareto front, and benchmark_subnets end to end on a classification config."""
import copy
import json
import os.path as osp

import pytest
import torch

from mmadn.analysis import active_parameters, pareto_front
from mmadn.datasets import make_classification_folder
from mmadn.models import ResNetADN, recalibrate_norms, recalibrated

from ._cli import run_tool

CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'


def test_recalibration_reestimates_exactly_the_norms_the_subnet_runs():
    model = ResNetADN(18, skip='FFFF', zero_init_residual=False)
    model.init_weights()
    before = copy.deepcopy(model.state_dict())
    batches = [torch.randn(4, 3, 32, 32) * (i + 1) for i in range(3)]
    assert recalibrate_norms(model, batches, skip='TTTT') == 3
    after = model.state_dict()
    # the stem norm: its input does not depend on other norms, so its statistics can be checked by hand
    with torch.no_grad():
        means = [model.conv1(b).mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(after['bn1.running_mean'], torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    assert not torch.equal(after['layer2.0.bn1_skip.running_mean'], before['layer2.0.bn1_skip.running_mean'])
    # not run by the base-net: shared norms of mandatory blocks, the skippable blocks
    for key in ('layer2.0.bn1.running_mean', 'layer2.1.bn1.running_mean', 'layer4.1.bn2.running_var'):
        assert torch.equal(after[key], before[key]), key
    assert model.skip == 'FFFF' and model.training  # the active sub-network and mode are restored


def test_recalibrated_context_restores_every_statistic():
    model = ResNetADN(18).eval()
    before = copy.deepcopy(model.state_dict())
    with recalibrated(model, [torch.randn(2, 3, 32, 32)], 'TTFF'):
        assert model.skip == 'TTFF'
        assert not torch.equal(model.state_dict()['bn1.running_mean'], before['bn1.running_mean'])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_pareto_front_by_hand():
    # (cost, quality): C is beaten by B (cheaper, better); D ties nothing and is the best
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.8)]
    assert pareto_front(points) == [0, 1, 3]


def test_active_parameters_leave_out_skipped_blocks():
    model = ResNetADN(18, skip='TTTT').eval()
    x = torch.randn(1, 3, 32, 32)
    base = active_parameters(model, lambda: model(x))
    model.skip = 'FFFF'
    full = active_parameters(model, lambda: model(x))
    skipped = sum(p.numel() for s in model.stages for p in list(s)[1].parameters())
    twins = sum(p.numel() for n, p in model.named_parameters() if '_skip' in n)
    assert full == sum(p.numel() for p in model.parameters()) - twins
    assert base == full - skipped


@pytest.fixture(scope='module')
def cls_checkpoint(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cls'))
    make_classification_folder(root, classes=('circle', 'square', 'ring'), train_per_class=6, val_per_class=4,
                               size=32)
    work = tmp_path_factory.mktemp('cls_work')
    opts = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    opts += [f'{s}_dataloader.num_workers=0' for s in ('train', 'val', 'test')]
    opts += ['model.head.num_classes=3', 'data_preprocessor.num_classes=3', 'train_dataloader.batch_size=6']
    run_tool('tools/train.py', CLS_CONFIG, '--work-dir', work, '--cfg-options', *opts, 'train_cfg.max_iters=2',
             'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2')
    return osp.join(work, 'iter_2.pth'), opts


def test_benchmark_tool_on_a_classification_config(cls_checkpoint, tmp_path):
    ckpt, opts = cls_checkpoint
    skips = ['FFFF', 'TFFF', 'TTFF', 'TTTT']
    _, out = run_tool('tools/analysis_tools/benchmark_subnets.py', CLS_CONFIG, ckpt, '--skips', *skips,
                      '--out-dir', tmp_path, '--runs', '2', '--warmup', '1', '--recalibrate', '2', '--export',
                      'TTTT', '--fuse', '--cfg-options', *opts)
    for ext in ('md', 'csv', 'json', 'png'):
        assert osp.getsize(tmp_path / f'subnets.{ext}') > 0
    rows = json.load(open(tmp_path / 'subnets.json'))['subnets']
    assert [r['skip'] for r in rows] == skips
    assert all(0 <= r['top1'] <= 100 for r in rows)
    gflops = [r['gflops'] for r in rows]
    assert gflops == sorted(gflops, reverse=True) and gflops[0] > gflops[-1]
    assert rows[0]['params_m'] > rows[-1]['params_m']
    assert rows[-1]['export_latency_ms'] > 0 and rows[0]['export_latency_ms'] is None
    assert osp.isfile(tmp_path / 'export_TTTT' / 'backbone.onnx')
    assert osp.isfile(tmp_path / 'export_TTTT' / 'model.pth') and osp.isfile(tmp_path / 'export_TTTT' / 'config.py')
    assert '| skip |' in out
