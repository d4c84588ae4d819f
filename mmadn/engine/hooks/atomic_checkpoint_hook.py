"""Checkpoints that survive a kill: written to a temporary file and renamed, the outdated one removed after.

mmengine's ``CheckpointHook`` removes the oldest checkpoint before it saves the new one and writes the new one in
place, so with ``max_keep_ckpts=1`` a run killed while saving (or a full disk) leaves no loadable checkpoint.
``tools/train.py`` swaps the config's ``CheckpointHook`` for this one (same arguments, see
:func:`mmadn.apis.use_atomic_checkpoints`).
"""
import logging
import os
import os.path as osp
import re
import zipfile
from typing import Optional, Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmadn.registry import register_hook


TMP_SUFFIX = '.tmp'
LAST_CHECKPOINT = 'last_checkpoint'  # where mmengine records the newest checkpoint of a work dir


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

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


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
        """mmengine's bookkeeping (``keep_ckpt_ids``, ``last_ckpt``), but the outdated checkpoint is removed only
        after the new one is complete, and ``last_checkpoint`` is written atomically too: mmengine's plain
        ``open('w')`` left it empty when killed at that moment, and ``--resume`` then failed."""
        if not isinstance(self.file_backend, AtomicLocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        self.file_backend.put_text(self.last_ckpt, osp.join(runner.work_dir, LAST_CHECKPOINT))
        if stale is not None:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed writes directories
                self.file_backend.rmtree(path)


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) continues from: the one ``last_checkpoint`` names, or, when that file is
    empty or names a checkpoint that is gone, the newest complete checkpoint of the work dir (saying so); ``None``
    when there is none (training starts from the beginning, as with mmengine)."""
    record = osp.join(work_dir, LAST_CHECKPOINT)
    named = open(record).read().strip() if osp.isfile(record) else ''
    if named and osp.isfile(named):
        return named
    candidates = [osp.join(work_dir, n) for n in os.listdir(work_dir)] if osp.isdir(work_dir) else []
    complete = [p for p in candidates if p.endswith('.pth') and osp.isfile(p) and _is_complete(p)]
    if not complete:
        return None
    newest = max(complete, key=lambda p: (_step_of(p), osp.getmtime(p)))
    problem = 'is empty' if not named else f'names {named}, which does not exist'
    if not osp.isfile(record):
        problem = 'is missing'
    print_log(f'{record} {problem}: resuming from the newest complete checkpoint of {work_dir}, {newest}.',
              logger='current', level=logging.WARNING)
    return newest


def _is_complete(path: str) -> bool:
    """A torch zip checkpoint whose central directory (written last) reads: not cut short by a kill."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _step_of(path: str) -> int:
    match = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))
    return int(match.group(1)) if match else -1
