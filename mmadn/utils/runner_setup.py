"""What ``tools/train.py`` and ``tools/test.py`` share: turning a config and CLI arguments into a Runner.

Kept out of the scripts so that the scripts stay as short as mmdet's and the logic is importable and tested.
"""
import atexit
import difflib
import gc
import os
import os.path as osp
import warnings
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config

from .checkpoint import set_strict_load
from mmengine.logging import print_log


def task_of(cfg: Config) -> str:
    """``'detection'`` for mmdet configs, ``'classification'`` for mmpretrain configs."""
    scope = cfg.get('default_scope', None)
    if scope == 'mmdet':
        return 'detection'
    if scope == 'mmpretrain':
        return 'classification'
    raise ValueError(f"The config's default_scope is {scope!r}; mmadn's tools expect 'mmdet' or 'mmpretrain' "
                     '(inherit from an mmdet:: or mmpretrain:: base config).')


# Top-level keys that mmengine's Runner (and mmadn's tools) read although a config need not set them.
RUNNER_KEYS = ('model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg', 'val_cfg',
               'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
               'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from', 'resume', 'launcher', 'env_cfg',
               'log_processor', 'log_level', 'visualizer', 'default_scope', 'randomness', 'experiment_name',
               'runner_type', 'model_wrapper_cfg', 'find_unused_parameters', 'sync_bn', 'compile',
               'activation_checkpointing', 'efficient_conv_bn_eval', 'custom_imports', 'tta_model', 'tta_pipeline')
MMADN_KEYS = ('strict_load', 'allow_new_keys', 'skip_data_check', 'allow_unlisted_categories')
# mmdet 2.x / mmcv 1.x names that mmengine no longer reads: adding them does nothing.
LEGACY_KEYS = {
    'resume_from': 'resume=True load_from=CKPT (or tools/train.py --resume CKPT)',
    'checkpoint_config': 'default_hooks.checkpoint.interval=...',
    'log_config': 'default_hooks.logger.interval=...',
    'evaluation': 'train_cfg.val_interval=...',
    'total_epochs': 'train_cfg.max_epochs=...',
    'optimizer': 'optim_wrapper.optimizer.lr=...',
    'lr_config': 'param_scheduler=...',
    'data': 'train_dataloader.batch_size=... (one key per dataloader)',
}


def load_config(path: str, cfg_options: Optional[dict] = None, allow_new_keys: bool = False) -> Config:
    """Read a config, merge ``--cfg-options`` and catch options that add keys the config lacks.

    mmengine adds any key silently, so a typo in a top-level key (``load_form=...``) would be ignored and the
    run would go on without it (train from scratch, exit code 0): that is an error here, with a suggestion,
    unless ``allow_new_keys=True`` (also as ``--cfg-options allow_new_keys=True`` or a config key). A new nested
    key only warns: it reaches a constructor, which refuses it. Also sets the ``strict_load`` policy of the
    checkpoint loads (see :mod:`mmadn.utils.checkpoint`).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        _refuse_substituted_variables(cfg, cfg_options)
        allow_new_keys = allow_new_keys or bool(cfg_options.get('allow_new_keys', cfg.get('allow_new_keys', False)))
        for key in cfg_options:
            if _has_key(cfg, key):
                continue
            top = key.split('.')[0]
            if top not in cfg and top not in RUNNER_KEYS + MMADN_KEYS and not allow_new_keys:
                raise ValueError(_unknown_top_level_key(key, top, list(cfg.keys())))
            if top in cfg:
                warnings.warn(
                    f'--cfg-options {key}=... adds a key the config does not have; if this is a typo, '
                    'the run will fail later with an unexpected-keyword error.',
                    stacklevel=2)
        cfg.merge_from_dict(cfg_options)
    set_strict_load(cfg.get('strict_load', True))
    return cfg


def _unknown_top_level_key(key: str, top: str, config_keys: List[str]) -> str:
    known = sorted(set(config_keys) | set(RUNNER_KEYS) | set(MMADN_KEYS))
    close = difflib.get_close_matches(top, known, n=3, cutoff=0.6)
    lines = [f'--cfg-options {key}=...: {top!r} is not a key of the config nor one that mmengine\'s Runner reads, '
             'so the option would be ignored without a word.']
    if top in LEGACY_KEYS:
        lines.append(f'{top!r} is an mmdet 2.x key; with mmengine use {LEGACY_KEYS[top]}.')
    elif close:
        lines.append('Did you mean ' + ' or '.join(repr(c) for c in close) + '?')
    lines.append('To add a new top-level key on purpose, put it in the config or add --cfg-options '
                 'allow_new_keys=True.')
    return ' '.join(lines)


def _refuse_substituted_variables(cfg: Config, cfg_options: dict) -> None:
    """An option on a top-level variable (``data_root``, ``max_iters``) that the config already substituted into
    its settings when it was read changes nothing: refuse it and name the settings to set instead.

    Not re-substituted: after parsing, a setting that came from the variable cannot be told from one that equals it
    by chance (500 iterations and a 500-iteration warm-up), and values computed from it are gone.
    """
    for key, value in cfg_options.items():
        if '.' in key or key in RUNNER_KEYS + MMADN_KEYS or key not in cfg:
            continue
        old = cfg[key]
        if isinstance(old, bool) or not isinstance(old, (str, int, float)) or old == value or old == '':
            continue
        holders = [(path, held) for path, held in _scalar_settings(cfg.to_dict())
                   if path != key and path not in cfg_options and _holds(held, old)]
        if not holders:
            continue
        fixes = ' '.join(f'{path}={held.replace(old, str(value)) if isinstance(held, str) else value}'
                         for path, held in holders)
        raise ValueError(
            f'--cfg-options {key}={value}: {key!r} is a variable that the config substituted into its settings when '
            f'it was read, so changing it now changes nothing (the run would still use {old!r}). Set the settings '
            f'that hold its value instead:\n  --cfg-options {fixes}\n'
            + ('' if isinstance(old, str) else 'Keep any of them that equals it only by chance. ')
            + 'Settings computed from it (e.g. milestones=int(0.8 * max_iters)) are not found this way: check '
            'them too, or change the variable in a config that inherits this one and sets those settings.')


def _scalar_settings(node, prefix=''):
    """(dotted path, value) of every str / number leaf of a config dict, list items by index."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    for name, child in items:
        path = f'{prefix}{name}'
        if isinstance(child, (dict, list, tuple)):
            yield from _scalar_settings(child, path + '.')
        elif isinstance(child, (str, int, float)) and not isinstance(child, bool):
            yield path, child


def _holds(value, old) -> bool:
    if isinstance(old, str):
        return isinstance(value, str) and (value == old or (len(old) >= 4 and old in value))
    return not isinstance(value, str) and value == old


def check_pretrained_checkpoints(cfg: Config) -> None:
    """Fail before anything is built when a local checkpoint named by an ``init_cfg`` (``type='Pretrained'``) or
    by ``load_from`` does not exist, with the commands that make one. mmengine finds out after the datasets and
    the model are built and says only "can not be found"."""
    missing = [(where, path) for where, path in _pretrained_paths(cfg.get('model', {}), 'model')
               if _is_local(path) and not osp.isfile(path)]
    load_from = cfg.get('load_from', None)
    if load_from and not cfg.get('resume', False) and _is_local(load_from) and not osp.isfile(load_from):
        missing.append(('load_from', load_from))
    if not missing:
        return
    where, path = missing[0]
    raise FileNotFoundError(
        f'The checkpoint {path} ({where}) does not exist. Make it, or point the config at yours with '
        f'--cfg-options {where}=/path/to/checkpoint.pth:\n'
        '  - an ADN classifier of your own: python tools/train.py configs/resnet50_adn_4xb64_in1k.py; for a '
        'detector, hand its backbone over with python tools/model_converters/cls_to_det_backbone.py CLS_CKPT '
        'DET_CONFIG OUT;\n'
        '  - the ADN authors\' released model (github wchkang/depth): python tools/model_converters/'
        'adn_converter.py RELEASED.pth OUT --to mmpretrain (or --to mmdet);\n'
        '  - only a plain ImageNet ResNet-50 (torchvision layout) at hand: '
        'configs/mask_rcnn_r50_adn_fpn_1x_coco_from_plain_in1k.py;\n'
        '  - no pretraining: --cfg-options ' + (f'{where}=None' if where == 'load_from' else f'{where[:-11]}=None')
        + '.')


def _pretrained_paths(node, prefix):
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            yield f'{prefix}.checkpoint', node['checkpoint']
        for name, child in node.items():
            yield from _pretrained_paths(child, f'{prefix}.{name}')
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            yield from _pretrained_paths(child, f'{prefix}.{i}')


def _is_local(path) -> bool:
    return isinstance(path, str) and '://' not in path and not path.startswith(('torchvision:', 'open-mmlab:',
                                                                                 'mmcls:', 'pavi:'))


def _has_key(cfg: Config, dotted: str) -> bool:
    node = cfg.to_dict()  # the root Config is not a dict; its content is
    for part in dotted.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def use_atomic_checkpoints(cfg: Config) -> None:
    """Save checkpoints with :class:`~mmadn.engine.hooks.AtomicCheckpointHook` where the config uses mmengine's
    ``CheckpointHook`` (or leaves it to the Runner's default): same arguments, but a kill while saving no
    longer leaves the run without a loadable checkpoint."""
    hooks = cfg.get('default_hooks', None)
    if hooks is None:
        cfg.default_hooks = hooks = dict()
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(type='CheckpointHook', interval=1)  # the Runner's default
    hook = hooks['checkpoint']
    if isinstance(hook, dict) and hook.get('type') == 'CheckpointHook':
        hook['type'] = 'AtomicCheckpointHook'


def set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    """CLI > config > ``./work_dirs/<config name>``, as in mmdet."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def set_launcher(cfg: Config, launcher: str) -> None:
    """Set the launcher; on a machine without CUDA, prepare mmengine for gloo.

    mmengine 0.10.7 cannot start CPU-only distributed runs by itself: ``init_dist('pytorch')`` calls
    ``torch.cuda.set_device`` and its default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP rejects
    for a CPU model. Initialising the gloo group first (mmengine then skips its own init) and wrapping with
    ``device_ids=None`` makes the stock path work; on GPUs nothing is changed. On both, DDP looks for unused
    parameters where the trained sub-networks leave some (``set_find_unused_parameters``).
    """
    cfg.launcher = launcher
    if launcher == 'pytorch' and not {'RANK', 'WORLD_SIZE'} <= set(os.environ):
        # the tools set LOCAL_RANK themselves (for torch.distributed.launch), so only these tell torchrun apart
        raise RuntimeError('--launcher pytorch expects to be started by torchrun, which sets RANK and WORLD_SIZE '
                           '(not set here): run tools/dist_train.sh CONFIG NUM_PROCS (or tools/dist_test.sh), i.e. '
                           'torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch; for a single '
                           'process use --launcher none.')
    if launcher != 'none':
        set_find_unused_parameters(cfg)
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} without a GPU is not supported; use --launcher pytorch with '
                           'torchrun (tools/dist_train.sh) for CPU-only distributed runs.')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
        # the group this created is destroyed at exit, not left to interpreter teardown (below)
        atexit.register(_destroy_process_group)
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def _destroy_process_group() -> None:
    """Release the gloo group and join its threads while the interpreter is still whole.

    ``destroy_process_group`` only drops the registry's reference: the DDP wrapper, held in reference cycles of the
    finished runner, keeps the group and its ``pt_gloo_runloop`` threads alive until teardown, where about one run
    in ten aborted ("terminate called without an active exception"). Collecting the cycles frees the group here.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
    gc.collect()


def set_find_unused_parameters(cfg: Config) -> None:
    """Turn on DDP's ``find_unused_parameters`` when the config trains sub-networks that leave ADN parameters
    without a gradient: the super-net alone (no ADNDistillHook), a partial student such as ``'TTFF'``.

    Without it DDP waits for the gradient of every parameter before it reduces their bucket: the unused twins'
    never comes, so the first step's gradients are not all averaged and the second step stops with "Expected to
    have finished reduction in the prior iteration". Searching the graph for unused parameters costs a little in
    every step, so it stays off where every parameter gets a gradient (the default super-net / base-net pair).
    """
    from mmadn.engine.hooks.adn_distill_hook import unused_parameters_reason  # here: mmadn imports utils first
    reason = unused_parameters_reason(cfg)
    if reason is None or cfg.get('find_unused_parameters', False):
        return
    cfg.find_unused_parameters = True  # what mmengine's default DDP wrapper reads
    if cfg.get('model_wrapper_cfg', None) is not None:
        cfg.model_wrapper_cfg.setdefault('find_unused_parameters', True)
    print_log(f'DDP: find_unused_parameters=True, as {reason}.', logger='current')


def at_least(minimum: int):
    """An argparse ``type``: an integer of at least ``minimum``, or an error that says which (exit code 2)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse
