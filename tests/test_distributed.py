"""Issue 4: the detection demo config trains under torchrun with 2 CPU processes (gloo) and the hook.
Issue 13 (item 3): so does the classification demo without the hook, or with a partial student."""
import glob
import json
import math
import os.path as osp
import re
import socket

import pytest
import torch

from mmengine.config import Config

from mmadn.apis.runner_setup import set_find_unused_parameters
from mmadn.datasets import make_coco_instances, make_digits_folder
from mmadn.engine import unused_parameters_reason
from mmadn.utils import safe_torch_load

from ._cli import run_tool
from ._torch_features import BEFORE_2_5

CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'
CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'


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


@pytest.mark.distributed
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


GLOO_EXIT_PROBE = """
import os, sys
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmadn.apis import runner_setup

def threads():
    return [open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')]

os.environ.update(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1', MASTER_PORT=sys.argv[2])
runner_setup.set_launcher(Config(dict(model=dict())), 'pytorch')
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
model(torch.ones(1, 2)).sum().backward()
holder = dict(model=model)
holder['self'] = holder  # a reference cycle, as a finished runner's hooks make
del model, holder
before = sum('gloo' in t for t in threads())
if sys.argv[1] == 'registry-only':
    dist.destroy_process_group()
else:
    runner_setup._destroy_process_group()  # what mmadn registers with atexit
print('gloo threads', before, sum('gloo' in t for t in threads()))
"""


@pytest.mark.distributed
@pytest.mark.parametrize('how, left', [('registry-only', True), ('mmadn', False)])
def test_the_exit_handler_joins_the_gloo_threads_before_interpreter_teardown(how, left):
    """About one torchrun run in ten aborted at exit ("terminate called without an active exception"): the group
    outlived ``destroy_process_group`` in the finished runner's reference cycles, and its threads met teardown."""
    _, out = run_tool('-c', GLOO_EXIT_PROBE, how, _free_port())
    before, after = map(int, re.search(r'gloo threads (\d+) (\d+)', out).groups())
    if before == 0 and BEFORE_2_5:  # measured on torch 2.1
        pytest.skip(f'torch {torch.__version__} names no thread "gloo": the probe cannot see the group\'s threads')
    assert before > 0 and (after > 0) == left, out[-2000:]


@pytest.mark.parametrize('hooks, reason', [
    (None, None),  # the default teacher / student pair trains every path
    ([], "without ADNDistillHook only the backbone's skip (super) trains"),
    ([dict(type='ADNDistillHook', student='TTFF')], 'ADNDistillHook trains super and TTFF'),
    ([dict(type='ADNDistillHook', alpha=1.0)], 'ADNDistillHook trains super,'),  # the student never runs
    ([dict(type='ADNDistillHook', teacher='TTFF', student='FFTT')], None),
])
def test_find_unused_parameters_only_where_a_step_leaves_parameters_unused(repo_root, hooks, reason):
    cfg = Config.fromfile(osp.join(repo_root, CLS_CONFIG))
    if hooks is not None:
        cfg.custom_hooks = hooks
    got = unused_parameters_reason(cfg)
    assert (got is None) == (reason is None) and (reason is None or got.startswith(reason)), got
    set_find_unused_parameters(cfg)
    assert cfg.get('find_unused_parameters', False) == (reason is not None)


def test_no_find_unused_parameters_for_a_plain_backbone(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, CLS_CONFIG))
    cfg.model.backbone = dict(type='ResNet', depth=18)
    cfg.custom_hooks = []
    assert unused_parameters_reason(cfg) is None


@pytest.fixture(scope='module')
def tiny_digits(tmp_path_factory):
    return make_digits_folder(str(tmp_path_factory.mktemp('digits')), train_per_class=4, val_per_class=1)


@pytest.mark.distributed
@pytest.mark.parametrize('option', ['custom_hooks=[]', 'custom_hooks.0.student=TTFF'])
def test_two_process_gloo_training_of_unused_parameters(tiny_digits, tmp_path, option):
    """Crashed at iteration 2 ("Expected to have finished reduction"): the super-net alone never uses the twins."""
    loaders = [f'{split}_dataloader.{k}' for split in ('train', 'val', 'test')
               for k in (f'dataset.data_root={tiny_digits}', 'num_workers=0', 'batch_size=4')]
    _, out = run_tool('-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={_free_port()}',
                      'tools/train.py', CLS_CONFIG, '--launcher', 'pytorch', '--work-dir', tmp_path,
                      '--cfg-options', option, *loaders, 'train_cfg.max_iters=3', 'default_hooks.logger.interval=1',
                      env=dict(OMP_NUM_THREADS='1'))
    assert 'find_unused_parameters=True' in out
    assert osp.isfile(osp.join(tmp_path, 'iter_3.pth')), out[-3000:]
