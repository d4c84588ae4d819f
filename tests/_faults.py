"""Faults injected into real runs of the tools by the tests (imported by a run through ``custom_imports``)."""
import os.path as osp
import resource
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FileSizeLimitHook(Hook):
    """Once the first checkpoint is saved, limit the size of the files this process writes to half of it: the
    kernel then kills the process (SIGXFSZ) in the middle of writing the next checkpoint, as a kill or a full
    disk would."""

    priority = 'LOWEST'  # after CheckpointHook has saved iter_1.pth

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == 0:
            size = osp.getsize(osp.join(runner.work_dir, 'iter_1.pth'))
            resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it (the write would raise instead)
