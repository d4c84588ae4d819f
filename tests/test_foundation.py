"""Issue 2: registries, the train / resume / test tools on a tiny config, and safe checkpoint loading."""
import os
import os.path as osp
import re

import pytest
import torch
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from mmadn.datasets import make_classification_folder
from mmadn.utils import UnsafeCheckpointError, safe_torch_load

from ._cli import run_main, run_tool

CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'


def test_import_registers_modules_for_both_libraries():
    for name in ('ResNetADN', ):
        assert name in MMDET_MODELS.module_dict and name in MMPRETRAIN_MODELS.module_dict
    assert 'ADNDistillHook' in MMDET_HOOKS.module_dict and 'ADNDistillHook' in MMPRETRAIN_HOOKS.module_dict
    # and they build from each library's scope
    assert type(MMDET_MODELS.build(dict(type='ResNetADN', depth=18))).__name__ == 'ResNetADN'
    assert type(MMPRETRAIN_MODELS.build(dict(type='ResNetADN', depth=18))).__name__ == 'ResNetADN'
    # ODN and IMTA go through mmadn.registry too: models in both libraries, the rest in mmpretrain's
    from mmpretrain.registry import DATASETS, LOOPS, METRICS
    assert all(n in MMDET_MODELS.module_dict for n in ('ODNClassifier', 'ODNResNet', 'MSDNet', 'MultiExitClsHead'))
    assert 'ODNTrainLoop' in LOOPS.module_dict and 'HoldoutSplit' in DATASETS.module_dict
    assert 'AnytimeAccuracy' in METRICS.module_dict


@pytest.mark.slow
def test_the_checkpoint_loader_is_announced_and_can_be_opted_out_of():
    import mmengine.runner.checkpoint as mmengine_checkpoint

    from mmadn.utils import checkpoint as ours
    from mmadn.utils import install_checkpoint_loader, uninstall_checkpoint_loader

    def installed():
        loader = mmengine_checkpoint.CheckpointLoader._get_checkpoint_loader('x.pth')
        return loader is ours.load_from_local, mmengine_checkpoint.load_state_dict is ours.load_state_dict

    assert installed() == (True, True)
    uninstall_checkpoint_loader()
    try:
        assert installed() == (False, False)
        assert mmengine_checkpoint.CheckpointLoader._get_checkpoint_loader('x.pth') is \
            mmengine_checkpoint.load_from_local
    finally:
        install_checkpoint_loader()
    assert installed() == (True, True)
    code = ("import mmadn, mmengine.runner.checkpoint as c; print('LOADER', c.CheckpointLoader."
            "_get_checkpoint_loader('x.pth').__module__, c.load_state_dict.__module__)")
    for opt_out, module in (('1', 'mmengine.runner.checkpoint'), ('', 'mmadn.utils.checkpoint')):
        _, out = run_tool('-c', code, env={'MMADN_NO_CHECKPOINT_LOADER': opt_out})
        assert re.search(r'LOADER (\S+) (\S+)', out).groups() == (module, module), out
        assert ('set MMADN_NO_CHECKPOINT_LOADER=1' in out) == (not opt_out), out


@pytest.fixture(scope='module')
def tiny_cls_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_cls')
    make_classification_folder(str(root), classes=('circle', 'square'), train_per_class=8, val_per_class=4,
                               size=32)
    return str(root)


def _data_options(root):
    return [
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', 'model.head.num_classes=2',
        'data_preprocessor.num_classes=2', 'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'default_hooks.checkpoint.max_keep_ckpts=-1'
    ]


@pytest.fixture(scope='module')
def trained_two_iters(tiny_cls_data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('work')
    run_tool('tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options', *_data_options(tiny_cls_data),
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1')
    return work_dir


@pytest.mark.slow
def test_train_saves_checkpoints(trained_two_iters):
    assert osp.isfile(osp.join(trained_two_iters, 'iter_2.pth'))
    ckpt = safe_torch_load(osp.join(trained_two_iters, 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2
    assert any(k.endswith('bn1_skip.weight') for k in ckpt['state_dict'])


@pytest.mark.slow
def test_resume_continues_from_the_saved_iteration(trained_two_iters, tiny_cls_data):
    _, out = run_tool('tools/train.py', CONFIG, '--work-dir', trained_two_iters, '--resume', '--cfg-options',
                      *_data_options(tiny_cls_data), 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                      'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1')
    assert re.search(r'resumed epoch: \d+, iter: 2', out), out[-3000:]
    logged_iters = [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/4\]', out)]
    assert logged_iters == [3, 4], out[-3000:]
    ckpt = safe_torch_load(osp.join(trained_two_iters, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4


@pytest.mark.slow
def test_test_tool_loads_the_checkpoint_and_evaluates(trained_two_iters, tiny_cls_data, tmp_path):
    out_file = tmp_path / 'preds.pkl'
    _, out = run_tool('tools/test.py', CONFIG, osp.join(trained_two_iters, 'iter_2.pth'), '--work-dir',
                      tmp_path, '--out', out_file, '--cfg-options', *_data_options(tiny_cls_data),
                      'model.backbone.skip=TTFF')
    assert 'accuracy/top1' in out
    assert out_file.is_file()


class _Payload:
    """An object whose unpickling would create a file: stands in for arbitrary code in a checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), 'w'))


def test_foreign_pickled_object_is_refused_and_nothing_runs(tmp_path, tiny_cls_data, capsys):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {'x': _Payload(marker)}}, path)
    with pytest.raises(UnsafeCheckpointError, match='Refusing to load') as err:
        _load_checkpoint(str(path))  # mmengine's own entry point, used by load_from, resume and Pretrained
    assert 'io.open' in str(err.value)
    assert not marker.exists()
    code, out = run_main(capsys, 'tools/test.py', CONFIG, path, '--work-dir', tmp_path, '--cfg-options',
                         *_data_options(tiny_cls_data))
    assert code != 0 and 'Refusing to load' in out
    assert not marker.exists()


def test_plain_tensor_checkpoint_still_loads(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, path)
    assert torch.equal(_load_checkpoint(str(path))['state_dict']['w'], torch.ones(2))


def test_missing_dataset_is_reported_before_building_anything(tmp_path, capsys):
    code, out = run_main(capsys, 'tools/train.py', CONFIG, '--work-dir', tmp_path, '--cfg-options',
                         f'train_dataloader.dataset.data_root={tmp_path}/nowhere')
    assert code != 0
    assert f'The train dataset is missing: {tmp_path}/nowhere does not exist' in out
    assert 'make_synthetic_digits.py' in out
    assert not list(tmp_path.glob('*/vis_data'))  # no run was started


def test_cfg_option_typo_is_flagged(tmp_path, tiny_cls_data, capsys):
    code, out = run_main(capsys, 'tools/train.py', CONFIG, '--work-dir', tmp_path, '--cfg-options',
                         *_data_options(tiny_cls_data), 'model.backbone.skp=TTFF', 'train_cfg.max_iters=1')
    assert code != 0
    assert 'model.backbone.skp=... adds a key the config does not have' in out
    assert "unexpected keyword argument 'skp'" in out
    assert 'train_cfg.max_iters=... adds a key' not in out  # existing keys are not flagged


def test_load_config_flags_only_new_keys(repo_root):
    import warnings
    from mmadn.utils import load_config
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        cfg = load_config(osp.join(repo_root, CONFIG),
                          {'model.backbone.skip': 'TTFF', 'train_cfg.max_iters': 3, 'model.backbone.skp': 'T'})
    flagged = [str(w.message) for w in caught if 'adds a key' in str(w.message)]
    assert len(flagged) == 1 and flagged[0].startswith('--cfg-options model.backbone.skp=')
    assert cfg.model.backbone.skip == 'TTFF' and cfg.train_cfg.max_iters == 3


@pytest.mark.slow
def test_checkpoint_trained_with_the_hook_loads_without_it(trained_two_iters):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(CONFIG)
    assert cfg.custom_hooks[0].type == 'ADNDistillHook'  # the checkpoint was trained with the hook
    cfg.model.head.num_classes = 2
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint(model, osp.join(trained_two_iters, 'iter_2.pth'), strict=True)
    assert not any('distill' in k.lower() or 'recorder' in k.lower() for k in ckpt['state_dict'])
