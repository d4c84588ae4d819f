"""What the ODN tests that train for real share: a tiny network's settings and one run of the runner."""
import itertools
import os.path as osp

import torch
from mmengine.runner import Runner

BASE_LR = 0.05
_RUNS = itertools.count()


def tiny_settings(warmup_epochs: int, **train_cfg) -> dict:
    """``--cfg-options`` of a run that takes seconds on 2 CPU cores: 8 channels, batch 16 at ``BASE_LR``, the
    config's cosine warm-up over ``warmup_epochs``, and the given ``train_cfg`` entries (e.g. ``target``)."""
    return {
        'model.backbone.base_channels': 8,
        'model.backbone.stem_channels': 8,
        'train_dataloader.batch_size': 16,
        'auto_scale_lr.base_batch_size': 16,
        'optim_wrapper.optimizer.lr': BASE_LR,
        'train_cfg.warmup_epochs': warmup_epochs,
        'param_scheduler.end': warmup_epochs,
        'param_scheduler.T_max': warmup_epochs,
        **{f'train_cfg.{name}': value
           for name, value in train_cfg.items()},
        'default_hooks.logger.interval': 5,
    }


def data_settings(root: str) -> dict:
    """``--cfg-options`` that read every split from the class folders under ``root``."""
    return {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}


def run_training(cfg, work_dir, hook=None) -> Runner:
    """Train ``cfg`` in ``work_dir``, with ``hook`` (if given) registered last; returns the runner."""
    cfg.work_dir = str(work_dir)
    # one logger, visualizer and message hub per run in this process
    cfg.experiment_name = f'{osp.basename(str(work_dir))}_{next(_RUNS)}'
    try:
        runner = Runner.from_cfg(cfg)
        if hook is not None:
            runner.register_hook(hook, priority='LOWEST')
        runner.train()
    finally:
        torch.use_deterministic_algorithms(False)  # a config's randomness setting is process-wide
    return runner
