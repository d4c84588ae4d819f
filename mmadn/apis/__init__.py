"""What the tools call: the library behind ``tools/``, above every other package (as ``mmdet.apis``)."""
from mmadn.engine import remove_distill_hook
from .arguments import (add_data_check_argument, add_launcher_arguments, add_model_arguments, at_least,
                        check_checkpoint, check_device, default_device, export_local_rank)
from .evaluation import CheckedModel, build_eval_runner, check_adn_model, parse_skips
from .runner_setup import build_runner, set_find_unused_parameters, set_launcher, set_work_dir, use_atomic_checkpoints

__all__ = [
    'add_data_check_argument', 'add_launcher_arguments', 'add_model_arguments', 'at_least', 'check_checkpoint',
    'check_device', 'default_device', 'export_local_rank', 'CheckedModel', 'build_eval_runner', 'check_adn_model',
    'parse_skips', 'build_runner', 'remove_distill_hook', 'set_find_unused_parameters', 'set_launcher',
    'set_work_dir', 'use_atomic_checkpoints'
]
