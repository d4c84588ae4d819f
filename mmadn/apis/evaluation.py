"""An ADN checkpoint and its config, checked and built for evaluation: what the evaluation tools share
(``benchmark_subnets.py``, ``analyze_depth.py``, ``deadline_demo.py``).

Every argument is checked before a runner is built, so that a typo costs no model building or data loading: the
device, the checkpoint file, the config with its ``--cfg-options``, its datasets, and the backbone, built alone
(without weights), which knows its skip grammar and its stages. The runner then evaluates the checkpoint as it
is: one process, no Algorithm 1.
"""
import argparse
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

from mmadn.analysis import canonical_skips
from mmadn.engine import remove_distill_hook
from mmadn.models import AdaptiveDepthMixin
from mmadn.utils import check_dataset_paths, load_config, preflight_datasets, task_of
from .arguments import check_checkpoint, check_device
from .runner_setup import build_runner


class CheckedModel(NamedTuple):
    """What :func:`check_adn_model` found: the config (``--cfg-options`` merged), its task ('detection' or
    'classification'), its ADN backbone built alone, the sub-networks asked for (T/F form) and the datasets the
    pre-flight built (None when only their paths were checked)."""
    cfg: Config
    task: str
    backbone: AdaptiveDepthMixin
    skips: List[str]
    datasets: Optional[Dict[str, dict]]


def parse_skips(parser: argparse.ArgumentParser, backbone: AdaptiveDepthMixin,
                skips: Optional[Sequence[str]]) -> List[str]:
    """``skips`` in their T/F form (``'ttff'``, ``'super'``, ``'base'`` accepted; duplicates dropped), every
    sub-network of ``backbone`` when none are given, or ``parser.error`` naming the invalid one."""
    if not skips:
        return backbone.subnets()
    try:
        return canonical_skips(skips, backbone.num_skip_flags, type(backbone).__name__)
    except ValueError as err:
        parser.error(str(err))


def check_adn_model(parser: argparse.ArgumentParser,
                    args: argparse.Namespace,
                    splits: Sequence[str] = ('test', ),
                    preflight: bool = False) -> CheckedModel:
    """Check the model arguments of ``args`` (``config``, ``checkpoint``, ``cfg_options``, ``device`` as
    :func:`~mmadn.apis.add_model_arguments` adds them; ``skips`` and ``skip_data_check`` where the tool takes
    them) and the datasets of ``splits``: loaded and checked with ``preflight`` (handed to the runner later),
    else their paths. Anything wrong ends in ``parser.error`` (exit code 2) that says what."""
    check_device(parser, args.device)
    check_checkpoint(parser, args.checkpoint)
    datasets = None
    try:
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
        if preflight:
            datasets = preflight_datasets(cfg, splits, skip=getattr(args, 'skip_data_check', False))
        else:
            check_dataset_paths(cfg, splits)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            backbone = MODELS.build(cfg.model.backbone)  # alone: it knows its skip grammar and stages
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:  # DatasetCheckError is a ValueError
        parser.error(str(err))
    if not isinstance(backbone, AdaptiveDepthMixin):
        parser.error(f'model.backbone is {type(backbone).__name__}, not an ADN backbone: it has no depths to '
                     'choose from.')
    return CheckedModel(cfg, task, backbone, parse_skips(parser, backbone, getattr(args, 'skips', None)), datasets)


def build_eval_runner(cfg: Config,
                      checkpoint: str,
                      work_dir: str,
                      datasets: Optional[Dict[str, dict]] = None,
                      load: bool = False,
                      device=None) -> Runner:
    """A Runner that evaluates ``checkpoint`` as it is: in this process (launcher ``none``), without
    ADNDistillHook, writing to ``work_dir``, with the pre-flight's ``datasets``. The weights are loaded by the
    caller's loop (``load_from``) or, with ``load``, here; ``device``: the model is moved there."""
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.launcher = 'none'
    remove_distill_hook(cfg)
    runner = build_runner(cfg, datasets)
    if load:
        runner.call_hook('before_run')
        runner.load_or_resume()
    if device is not None:
        runner.model.to(device)
    return runner
