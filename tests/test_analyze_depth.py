"""Issue 17: tools/analysis_tools/analyze_depth.py, the ADN paper's depth analyses (sub-network quality, twin-norm
distances, stage divergence, Grad-CAM per block), on tiny checkpoints trained here with the real stack."""
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from torch import nn

from mmadn.analysis.depth_analysis import _correlation, read_subnet_table
from mmadn.analysis.gradcam import grad_cam
from mmadn.analysis.norm_distance import first_layer_check, twin_norm_distances
from mmadn.analysis.stage_divergence import stage_divergence
from mmadn.datasets import make_classification_folder, make_coco_instances
from mmadn.models import ResNetADN
from mmadn.utils import load_config

from ._cli import load_tool

CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'
DET_CONFIG = 'configs/demo/faster_rcnn_r18_adn_fpn_synthetic.py'
TOOL = 'tools/analysis_tools/analyze_depth.py'


def _tool():
    return load_tool(TOOL)


# ---- the pieces, by hand ------------------------------------------------------------------------------------------
def test_twin_norm_distance_reads_each_pair_by_stage_and_layer():
    model = ResNetADN(18)
    shared, twin = model.layer2[0].bn2, model.layer2[0].bn2_skip
    shared.running_mean.fill_(1.0)
    shared.running_var.fill_(4.0)
    twin.running_mean.fill_(0.5)
    rows = twin_norm_distances(model)
    assert [(r['stage'], r['layer'], r['shared']) for r in rows[:4]] == [
        (0, 0, 'layer1.0.bn1'), (0, 1, 'layer1.0.bn2'), (1, 0, 'layer2.0.bn1'), (1, 1, 'layer2.0.bn2')]
    assert {r['twin'] for r in rows} == {f'layer{s}.0.bn{k}_skip' for s in range(1, 5) for k in (1, 2)}
    row = rows[3]
    assert row['mean_abs'] == pytest.approx(0.5) and row['normalized'] == pytest.approx(0.5 / (4 + 1e-5)**0.5)
    assert row['var_log_ratio'] == pytest.approx(abs(torch.log(torch.tensor((1 + 1e-5) / (4 + 1e-5)))).item())
    assert all(r['mean_abs'] == 0 for r in rows if r is not row)  # twins start as copies
    checks = first_layer_check(rows)
    assert [c['first_below_inner'] for c in checks] == [False, True, False, False]  # 0 < 0.5 only in stage 2


def test_twin_norm_distance_refuses_a_plain_backbone():
    from mmdet.models.backbones import ResNet
    with pytest.raises(TypeError, match='not an ADN backbone'):
        twin_norm_distances(ResNet(18))


def test_grad_cam_equals_the_definition_and_skipped_blocks_get_no_map():
    model = ResNetADN(18, zero_init_residual=False).eval()
    head = nn.Linear(512, 3)
    x = torch.randn(2, 3, 32, 32)

    def score():
        return head(model(x)[-1].mean((2, 3)))[:, 1].sum()

    with model.switch('TTTT'):
        cams = grad_cam(model, ['layer3.0', 'layer3.1'], score, size=(32, 32))
    assert list(cams) == ['layer3.0']  # layer3.1 is skipped by the base-net
    # the definition, from a forward of our own
    acts = {}
    handle = model.layer3[0].register_forward_hook(lambda m, i, o: acts.setdefault('a', o))
    with model.switch('TTTT'):
        s = score()
    handle.remove()
    grad, = torch.autograd.grad(s, acts['a'])
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * acts['a']).sum(1, keepdim=True))
    cam = nn.functional.interpolate(cam, size=(32, 32), mode='bilinear', align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(1)[:, None, None]
    torch.testing.assert_close(cams['layer3.0'], cam.detach())
    assert cams['layer3.0'].shape == (2, 32, 32) and float(cams['layer3.0'].max()) == pytest.approx(1.0)
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated in the model


def test_map_correlation_stays_within_one_and_leaves_out_constant_maps():
    torch.manual_seed(0)
    maps = torch.relu(torch.randn(200, 7, 7)) * 37.0  # float32 rounding took such pairs to 1.0000004
    # never past one; float64 sums of another torch may land one ulp below it
    assert 1 - 1e-12 <= _correlation(maps, maps.clone()) <= 1.0 and -1.0 <= _correlation(maps, -maps) <= -1 + 1e-12
    flat = torch.zeros(2, 7, 7)
    assert _correlation(flat, maps[:2]) is None  # an all-zero Grad-CAM has no pattern
    mixed = torch.stack([maps[0], torch.zeros(7, 7)])
    assert 1 - 1e-12 <= _correlation(mixed, mixed) <= 1.0  # only the image with a pattern counts


def test_stage_divergence_is_zero_against_itself_and_isolates_each_stage():
    model = ResNetADN(18, zero_init_residual=False)
    model.init_weights()
    batches = [torch.randn(3, 3, 32, 32), torch.randn(2, 3, 32, 32)]
    same = stage_divergence(model, batches, teacher='super', student='super', isolated=False)
    assert [r['module'] for r in same] == ['layer1', 'layer2', 'layer3', 'layer4']
    assert all(abs(r['kl_pooled']) < 1e-6 and r['rel_l2'] < 1e-6 and r['cosine'] == pytest.approx(1) for r in same)
    rows = stage_divergence(model, batches)
    assert all(r['kl_pooled'] > 0 and r['rel_l2'] > 0 for r in rows)
    # nothing before stage 1 differs: skipping stage 1 alone is the base-net there
    assert rows[0]['isolated_rel_l2'] == pytest.approx(rows[0]['rel_l2'])
    assert rows[0]['isolated_kl_channel'] == pytest.approx(rows[0]['kl_channel'])
    # later stages: the base-net carries the earlier stages' drift too
    assert rows[3]['rel_l2'] > rows[3]['isolated_rel_l2']
    assert model.skip == 'FFFF' and model.training


# ---- the tool on checkpoints trained here -------------------------------------------------------------------------
NO_VALIDATION = {'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None}


def _train(config, work_dir, options):
    """A few iterations of the config's own training (mmengine's Runner, in this process: no interpreter start;
    no validation: the tool evaluates; seeded, so that a failure can be re-run)."""
    cfg = load_config(config, {'randomness.seed': 0, **options, **NO_VALIDATION})
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    Runner.from_cfg(cfg).train()
    return osp.join(work_dir, f'iter_{options["train_cfg.max_iters"]}.pth')


def _as_cli(options):
    return [f'{k}={v}' for k, v in options.items()]


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cls'))
    make_classification_folder(root, classes=('circle', 'square', 'ring'), train_per_class=6, val_per_class=2,
                               size=32)
    options = {f'{s}_dataloader.dataset.data_root': root for s in ('train', 'val', 'test')}
    options.update({f'{s}_dataloader.num_workers': 0 for s in ('train', 'val', 'test')})
    options.update({'model.head.num_classes': 3, 'data_preprocessor.num_classes': 3})
    return options


def _train_cls(tmp_path_factory, data, name, iters, **extra):
    # residual branches not zero: from zero, the super-net and the base-net coincide for the first iterations
    options = {**data, 'train_dataloader.batch_size': 6, 'model.backbone.zero_init_residual': False,
               'train_cfg.max_iters': iters, 'default_hooks.checkpoint.interval': iters, **extra}
    return _train(CLS_CONFIG, tmp_path_factory.mktemp(name), options)


@pytest.fixture(scope='module')
def cls_hook_ckpt(tmp_path_factory, cls_data):
    return _train_cls(tmp_path_factory, cls_data, 'with_hook', 3)


@pytest.fixture(scope='module')
def cls_no_hook_ckpt(tmp_path_factory, cls_data):
    return _train_cls(tmp_path_factory, cls_data, 'no_hook', 1, custom_hooks=[])


@pytest.mark.slow
def test_tool_on_a_classifier_trained_with_algorithm_1(cls_hook_ckpt, cls_data, tmp_path, capsys):
    _tool().main([CLS_CONFIG, cls_hook_ckpt, '--out-dir', str(tmp_path), '--num-images', '3',
                  '--cfg-options', *_as_cli(cls_data)])
    out = capsys.readouterr().out
    report = json.load(open(tmp_path / 'depth_analysis.json'))
    for name in report['figures'].values():
        assert osp.getsize(tmp_path / name) > 10_000, name
    assert report['figures']['gradcam'] == 'gradcam_layer3.png'
    rows = report['subnets']['rows']
    assert [r['skip'] for r in rows][::15] == ['FFFF', 'TTTT'] and len(rows) == 16
    assert report['subnets']['quality_key'] == 'top1' and all(0 <= r['top1'] <= 100 for r in rows)
    layers = {r['shared']: r for r in report['norm_distance']['layers']}
    assert len(layers) == 8
    # Algorithm 1 ran the base-net every iteration: each twin was updated as often as its shared norm ...
    assert all(r['twin_updates'] == r['shared_updates'] == 3 for r in layers.values())
    # ... and stage 1's first norm saw the very same input in both passes (the stem is shared), so the two
    # statistics coincide; the next one already sees the two different first norms' outputs
    assert layers['layer1.0.bn1']['mean_abs'] < 1e-6 < layers['layer1.0.bn2']['mean_abs']
    checks = report['norm_distance']['first_layer_check']['mean_abs']
    assert checks[0]['first_below_inner'] and len(checks) == 4
    divergence = report['stage_divergence']
    assert [r['module'] for r in divergence] == [f'backbone.layer{i}' for i in range(1, 5)]
    assert all(r['kl_pooled'] >= 0 and r['rel_l2'] > 0 for r in divergence)
    cam = report['gradcam']
    assert cam['num_images'] == 3 and cam['stage_name'] == 'backbone.layer3'
    assert cam['blocks'] == {'super-net': ['backbone.layer3.0', 'backbone.layer3.1'],
                             'base-net': ['backbone.layer3.0']}
    assert cam['labels'] == ['label 0', 'label 1', 'label 2']  # spread over the (class-sorted) test set
    assert all(v is None or -1 <= v <= 1 for v in cam['similarity'].values()) and len(cam['similarity']) == 2
    # a report is a --table for the next run (another --stage without evaluating everything again)
    assert read_subnet_table(str(tmp_path / 'depth_analysis.json')) == (rows, 'top1')
    assert 'first layer below the inner layers (mean_abs)' in out and 'TTTT' in out


@pytest.mark.slow
def test_without_algorithm_1_the_twins_are_never_trained(cls_no_hook_ckpt, cls_data, tmp_path):
    """Quality from a benchmark_subnets.py table (--table) here; the norms tell that no base-net ever ran."""
    table = tmp_path / 'subnets.json'
    json.dump(dict(title='t', quality_key='top1', subnets=[dict(skip='FFFF', top1=50.0), dict(skip='TTTT', top1=1.0)]),
              open(table, 'w'))
    _tool().main([CLS_CONFIG, cls_no_hook_ckpt, '--out-dir', str(tmp_path), '--table', str(table), '--stage', '2',
                  '--num-images', '1', '--kl-images', '2', '--cfg-options', *_as_cli(cls_data)])
    report = json.load(open(tmp_path / 'depth_analysis.json'))
    assert report['subnets']['source'] == f'table {table}'
    assert [r['top1'] for r in report['subnets']['rows']] == [50.0, 1.0]
    state = torch.load(cls_no_hook_ckpt, weights_only=False)['state_dict']
    for row in report['norm_distance']['layers']:
        assert row['twin_updates'] == 0 and row['shared_updates'] == 1
        # the twin kept its init (mean 0): the distance is the shared mean's own size
        shared = state[f'backbone.{row["shared"]}.running_mean']
        assert row['mean_abs'] == pytest.approx(shared.abs().mean().item(), rel=1e-5)
    assert report['figures']['gradcam'] == 'gradcam_layer2.png'
    assert len(report['stage_divergence']) == 4


@pytest.mark.slow
def test_arguments_are_checked_before_anything_is_built(cls_hook_ckpt, cls_data, tmp_path, capsys):
    tool = _tool()
    cases = [(['--stage', '5'], 'has 4 stages'), (['--skips', 'TTF'], "Invalid skip 'TTF'"),
             (['--table', str(tmp_path / 'none.json')], 'benchmark_subnets.py writes'),
             (['--table', str(tmp_path / 'none.json'), '--skips', 'TTTT'], 'give one of them')]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            tool.main([CLS_CONFIG, cls_hook_ckpt, '--out-dir', str(tmp_path), *extra, '--cfg-options',
                       *_as_cli(cls_data)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, extra
    bad = tmp_path / 'bad.json'
    bad.write_text('{"subnets": []}')
    with pytest.raises(SystemExit):
        tool.main([CLS_CONFIG, cls_hook_ckpt, '--table', str(bad), '--cfg-options', *_as_cli(cls_data)])
    assert 'not a benchmark_subnets.py report' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'runner')


@pytest.mark.slow
def test_tool_on_a_two_stage_detector(tmp_path_factory, tmp_path):
    root = str(tmp_path_factory.mktemp('coco')) + '/'
    make_coco_instances(root, num_train=4, num_val=2, size=(64, 64), max_objects=2)
    options = {f'{s}_dataloader.dataset.data_root': root for s in ('train', 'val', 'test')}
    options.update({f'{s}_dataloader.{k}': v for s in ('train', 'val', 'test')
                    for k, v in (('num_workers', 0), ('persistent_workers', False))})
    options.update({f'{s}_evaluator.ann_file': root + 'annotations/instances_val2017.json' for s in ('val', 'test')})
    options.update({'model.backbone.init_cfg': None, 'model.backbone.zero_init_residual': False,
                    'model.test_cfg.rcnn.score_thr': 0.05})  # one iteration scores below the demo's 0.3
    ckpt = _train(DET_CONFIG, tmp_path_factory.mktemp('det_work'),
                  {**options, 'train_dataloader.batch_size': 2, 'train_cfg.max_iters': 1,
                   'default_hooks.checkpoint.interval': 1})
    _tool().main([DET_CONFIG, ckpt, '--out-dir', str(tmp_path), '--skips', 'super', 'base', '--num-images', '1',
                  '--cfg-options', *_as_cli(options)])
    report = json.load(open(tmp_path / 'depth_analysis.json'))
    assert report['task'] == 'detection' and report['subnets']['quality_key'] == 'bbox_mAP'
    assert [r['skip'] for r in report['subnets']['rows']] == ['FFFF', 'TTTT']
    assert all(r['twin_updates'] == r['shared_updates'] == 1 for r in report['norm_distance']['layers'])
    assert report['gradcam']['blocks']['base-net'] == ['backbone.layer3.0']
    assert osp.getsize(tmp_path / 'gradcam_layer3.png') > 5_000
