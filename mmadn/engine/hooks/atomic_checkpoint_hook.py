"""Checkpoints that survive a kill: written to a temporary file and renamed, the outdated one removed after.

mmengine's ``CheckpointHook`` removes the oldest checkpoint before it saves the new one and writes the new one in
place, so with ``max_keep_ckpts=1`` a run killed while saving (or a full disk) leaves no loadable checkpoint.
``tools/train.py`` swaps the config's ``CheckpointHook`` for this one (same arguments, see
:func:`mmadn.utils.use_atomic_checkpoints`).
"""
import os
import os.path as osp
import re
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook

from mmadn.registry import register_hook


TMP_SUFFIX = '.tmp'


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` never leaves a partly written file under the final name."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        filepath = str(filepath)
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        tmp = f'{filepath}.{os.getpid()}{TMP_SUFFIX}'  # same directory: os.replace is then an atomic rename
        try:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())  # on disk before it gets the final name
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise


@register_hook
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that writes atomically and removes the outdated checkpoint only once
    the new one is complete. Remote ``out_dir`` / custom backends are left to mmengine's behaviour."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.backend_args is None and self.file_client_args is None and type(self.file_backend) is LocalBackend:
            self.backend_args = dict(backend='atomic_local')  # what runner.save_checkpoint writes with
            self.file_backend = AtomicLocalBackend()
            if is_main_process() and osp.isdir(self.out_dir):
                self._remove_partial_writes(runner)

    def _remove_partial_writes(self, runner) -> None:
        """Remove what a killed save left behind (its temporary file; the checkpoints before it are intact)."""
        for name in sorted(os.listdir(self.out_dir)):
            if re.fullmatch(r'.+\.\d+' + re.escape(TMP_SUFFIX), name):
                os.remove(osp.join(self.out_dir, name))
                runner.logger.warning(f'Removed {name} in {self.out_dir}: a checkpoint whose writing was '
                                      'interrupted (the checkpoints saved before it are complete).')

    def _save_checkpoint_with_step(self, runner, step, meta):
        stale = None
        if (self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step)
                and len(self.keep_ckpt_ids) == self.max_keep_ckpts):
            stale = self.keep_ckpt_ids.popleft()  # taken out here, so mmengine does not remove it before saving
        super()._save_checkpoint_with_step(runner, step, meta)
        if stale is not None and is_main_process():
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed writes directories
                self.file_backend.rmtree(path)
