"""Issue 12: the main job (scripts/demo.sh) runs the paper's pipeline; each stage checked on a tiny setting."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmadn.datasets import DET_CLASSES, make_instance_crops

from ._cli import ROOT, THREADS, load_tool, run_tool

DET_CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'


def test_instance_crops_are_balanced_deterministic_and_show_the_detection_classes(tmp_path):
    for run in ('a', 'b'):
        make_instance_crops(str(tmp_path / run), train_per_class=3, val_per_class=2, size=32, seed=5)
    for split, count in (('train', 3), ('val', 2)):
        assert sorted(os.listdir(tmp_path / 'a' / split)) == sorted(DET_CLASSES)
        for name in DET_CLASSES:
            files = sorted(os.listdir(tmp_path / 'a' / split / name))
            assert len(files) == count
            for f in files:
                a, b = cv2.imread(str(tmp_path / 'a' / split / name / f)), cv2.imread(str(tmp_path / 'b' / split / name / f))
                assert a.shape == (32, 32, 3) and np.array_equal(a, b)
                assert a.std() > 10  # a shape on its scene, not an empty crop
    with pytest.raises(ValueError, match='at least one crop'):
        make_instance_crops(str(tmp_path / 'c'), train_per_class=0)


def test_cls_to_det_backbone_prints_a_next_step_that_merges_into_the_config():
    next_step = load_tool('tools/model_converters/cls_to_det_backbone.py').next_step
    cfg = Config.fromfile(osp.join(ROOT, DET_CONFIG))
    printed = next_step(cfg.model.backbone.init_cfg, 'x.pth')
    key, value = printed.split('--cfg-options ')[1].split('=')
    cfg.merge_from_dict({key: value})
    assert cfg.model.backbone.init_cfg.checkpoint == 'x.pth'
    # a config without a Pretrained init gets the config snippet instead: merging keys into None would fail
    assert "init_cfg=dict(type='Pretrained', checkpoint='x.pth', prefix='backbone.')" in next_step(None, 'x.pth')


def _demo(work_dir):
    env = {**os.environ, 'WORK_DIR': str(work_dir), 'PY': sys.executable, 'OMP_NUM_THREADS': THREADS,
           # a few iterations, and the first images of each val split (mmengine's dataset ``indices``)
           'PRETRAIN_OPTIONS': 'train_cfg.max_iters=3 default_hooks.logger.interval=1 '
                               'val_dataloader.dataset.indices=16',
           'DETECTOR_OPTIONS': 'train_cfg.max_iters=3 default_hooks.logger.interval=1 '
                               'val_dataloader.dataset.indices=8',
           'SKIPS': 'FFFF ttff base',
           # three iterations score below the demo's test threshold 0.3
           'BENCH_ARGS': '--runs 1 --warmup 0 --cfg-options test_dataloader.dataset.indices=16 '
                         'model.test_cfg.rcnn.score_thr=0.05'}
    proc = subprocess.run(['bash', 'scripts/demo.sh'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


@pytest.mark.slow
def test_demo_runs_every_stage_and_reuses_finished_ones(tmp_path):
    """Pretraining with Algorithm 1, the handoff (twins included), detector training with the hook, and the
    sub-network benchmark: on the generated data, a few iterations each."""
    output = _demo(tmp_path)
    pretrain_log = open(tmp_path / 'pretrain' / 'train_console.log').read()
    detector_log = open(tmp_path / 'detector' / 'train_console.log').read()
    assert 'ADNDistillHook: training FFFF' in pretrain_log and 'loss_kl_head' in pretrain_log
    assert 'ADNDistillHook: training FFFF' in detector_log and 'loss_kl_neck_0' in detector_log
    assert 'pretrain/backbone_for_detection.pth' in detector_log  # the detector started from the handoff
    handoff = run_tool('-c', 'import sys, torch; sd = torch.load(sys.argv[1])["state_dict"]; '
                       'print(sum(k.endswith("_skip.weight") for k in sd))',
                       tmp_path / 'pretrain' / 'backbone_for_detection.pth')[1]
    assert int(handoff.split()[-1]) > 0  # the twins travel with the backbone
    report = json.load(open(tmp_path / 'subnets' / 'subnets.json'))
    rows = {r['skip']: r for r in report['subnets']}
    assert list(rows) == ['FFFF', 'TTFF', 'TTTT']
    max_dets = Config.fromfile(osp.join(ROOT, DET_CONFIG)).model.test_cfg.rcnn.max_per_img
    for row in rows.values():
        assert {'bbox_mAP', 'segm_mAP', 'gflops', 'latency_ms'} <= set(row)
        assert 0 <= row['detections'] <= max_dets  # what the heads worked on in the timed image
    assert rows['TTTT']['gflops'] < rows['TTFF']['gflops'] < rows['FFFF']['gflops']
    assert osp.getsize(tmp_path / 'subnets' / 'subnets.png') > 0
    assert '| FFFF |' in output  # the table is printed

    again = _demo(tmp_path)
    assert again.count('reusing') == 2 and 'training configs/' not in again


@pytest.mark.parametrize('config', ['configs/demo/resnet18_adn_synthetic_cls.py', 'configs/demo/resnet18_adn_shapes_cls.py'])
def test_classification_demos_never_train_on_a_batch_of_one(config, tmp_path):
    """65 = 4 x 16 + 1 images: without drop_last the fifth batch holds one image, and BatchNorm over the 1x1 maps
    of a 32x32 input stops the run ("Expected more than 1 value per channel") after all earlier work."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    make_instance_crops(str(tmp_path), train_per_class=13, val_per_class=1)
    cfg = Config.fromfile(osp.join(ROOT, config))
    loader_cfg = cfg.train_dataloader
    loader_cfg.update(batch_size=16, num_workers=0)
    loader_cfg.dataset.data_root = str(tmp_path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(loader_cfg)
        assert len(loader.dataset) == 65
        assert [len(batch['inputs']) for batch in loader] == [16] * 4
