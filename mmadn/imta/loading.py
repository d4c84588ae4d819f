"""The trained multi-exit classifier and its config, as the budget tools (``tools/imta/evaluate_budgets.py``,
``early_exit_benchmark.py``) start from them: the held-out split that fits the exit thresholds and the test set are
checked before any model is built."""
from typing import Optional, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

from mmadn.utils import check_dataset_paths, load_config


def load_for_budgets(config: str, checkpoint: str, device: str = 'cpu',
                     cfg_options: Optional[dict] = None) -> Tuple[Config, object]:
    """``(cfg, model)``: the config with ``cfg_options`` merged, and the model of ``checkpoint`` in eval mode on
    ``device``; a config without ``holdout_dataloader`` or with a missing dataset stops with what to add."""
    cfg = load_config(config, cfg_options)
    if cfg.get('holdout_dataloader', None) is None:
        raise SystemExit(f'{config} has no `holdout_dataloader`: budgeted evaluation fits its exit thresholds on a '
                         'held-out part of the training set. Add a HoldoutSplit of the training set with the test '
                         'pipeline (see configs/imta/_base_/datasets/).')
    check_dataset_paths(cfg, ('holdout', 'test'))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor', None))
    model = MODELS.build(model_cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='current')
    return cfg, model.to(device).eval()
