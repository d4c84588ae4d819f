"""What the tools call: the library behind ``tools/``, above every other package (as ``mmdet.apis``)."""
from .runner_setup import at_least, set_find_unused_parameters, set_launcher, set_work_dir, use_atomic_checkpoints

__all__ = ['at_least', 'set_find_unused_parameters', 'set_launcher', 'set_work_dir', 'use_atomic_checkpoints']
