"""Reading a config as mmadn's tools do: ``--cfg-options`` checked against the keys the config and mmengine's
Runner know (mmengine adds any key silently, so a typo would be ignored), and the checkpoints it names checked
before anything is built.

Ground floor (the IMTA budget tools and the analysis read configs too); turning the config into a Runner is
``mmadn.apis.runner_setup``.
"""
import difflib
import os.path as osp
import warnings
from typing import List, Optional

from mmengine.config import Config

from .checkpoint import set_strict_load


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
