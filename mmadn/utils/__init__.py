from .checkpoint import (SAFE_CHECKPOINT_GLOBALS, CheckpointMismatchError, CorruptCheckpointError,
                         UnsafeCheckpointError, check_checkpoint_fits, get_strict_load, install_checkpoint_loader,
                         safe_torch_load, set_strict_load, uninstall_checkpoint_loader)
from .config_loading import check_pretrained_checkpoints, load_config, task_of
from . import config_scope  # noqa: F401  (import mmadn makes mmengine resolve mmadn:: base configs)
from .dataset_preflight import (DatasetCheckError, check_dataset_paths, hand_over_datasets, missing_images,
                                preflight_datasets)

__all__ = [
    'SAFE_CHECKPOINT_GLOBALS', 'CheckpointMismatchError', 'CorruptCheckpointError', 'UnsafeCheckpointError',
    'check_checkpoint_fits', 'get_strict_load', 'install_checkpoint_loader', 'safe_torch_load', 'set_strict_load',
    'uninstall_checkpoint_loader', 'check_dataset_paths', 'check_pretrained_checkpoints',
    'DatasetCheckError', 'hand_over_datasets', 'missing_images', 'preflight_datasets',
    'load_config', 'task_of'
]
