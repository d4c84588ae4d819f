"""Issue 4: the detection demo config trains under torchrun with 2 CPU processes (gloo) and the hook."""
import glob
import json
import math
import os.path as osp
import re
import socket

import pytest
import torch

from mmadn.datasets import make_coco_instances
from mmadn.utils import safe_torch_load

from ._cli import run_tool

CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_coco'))
    make_coco_instances(root, num_train=8, num_val=4, size=(128, 128), max_objects=3, seed=1)
    return root


def detection_options(root):
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    opts = [f'{split}_dataloader.dataset.data_root={root}/' for split in ('train', 'val', 'test')]
    opts += [f'{split}_dataloader.{k}' for split in ('train', 'val', 'test')
             for k in ('num_workers=0', 'persistent_workers=False')]
    return opts + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}', 'train_dataloader.batch_size=2',
                   'model.backbone.init_cfg=None']


def test_two_process_gloo_training_with_the_hook(tiny_coco, tmp_path):
    _, out = run_tool('-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={_free_port()}',
                      'tools/train.py', CONFIG, '--launcher', 'pytorch', '--work-dir', tmp_path,
                      '--cfg-options', *detection_options(tiny_coco), 'train_cfg.max_iters=2',
                      'train_cfg.val_interval=100', 'default_hooks.logger.interval=1',
                      'default_hooks.checkpoint.interval=2', env=dict(OMP_NUM_THREADS='1'))
    assert re.search(r'Distributed training: True', out)
    assert re.search(r'(GPU number|world_size): 2', out), out[-3000:]
    assert 'ADNDistillHook: training FFFF' in out
    # the two ranks' console output interleaves, so read the logged scalars rank 0 wrote
    scalars = glob.glob(osp.join(str(tmp_path), '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, out[-3000:]
    records = [json.loads(line) for line in open(scalars[0])]
    last = [r for r in records if r.get('iter') == 2]
    assert last and all(f'loss_kl_neck_{i}' in last[0] for i in range(5)), records
    assert all(math.isfinite(last[0][k]) for k in last[0] if k.startswith('loss'))
    ckpt = safe_torch_load(osp.join(tmp_path, 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2
    # DDP saved the unwrapped model's names
    assert 'backbone.layer1.0.bn1_skip.weight' in ckpt['state_dict']
    assert torch.isfinite(ckpt['state_dict']['backbone.layer1.0.bn1_skip.weight']).all()
