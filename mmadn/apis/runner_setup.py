"""Turning a config and CLI arguments into a Runner: what ``tools/train.py``, ``tools/test.py`` and the evaluation
tools (``mmadn.apis.evaluation``) share.

Kept out of the scripts so that the scripts stay as short as mmdet's and the logic is importable and tested.
Reading and checking the config is ``mmadn.utils.config_loading``.
"""
import atexit
import gc
import os
import os.path as osp
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmadn.engine import unused_parameters_reason
from mmadn.utils import hand_over_datasets


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
    reason = unused_parameters_reason(cfg)
    if reason is None or cfg.get('find_unused_parameters', False):
        return
    cfg.find_unused_parameters = True  # what mmengine's default DDP wrapper reads
    if cfg.get('model_wrapper_cfg', None) is not None:
        cfg.model_wrapper_cfg.setdefault('find_unused_parameters', True)
    print_log(f'DDP: find_unused_parameters=True, as {reason}.', logger='current')


def build_runner(cfg: Config, datasets: Optional[Dict[str, dict]] = None) -> Runner:
    """The config's Runner (``runner_type`` when it names one, as in mmdet's tools), given the ``datasets`` the
    pre-flight built (``mmadn.utils.preflight_datasets``) so that it does not load them again."""
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    hand_over_datasets(runner, datasets or {})
    return runner
