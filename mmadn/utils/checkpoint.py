"""Load checkpoints with torch's weights-only unpickler, allowing only what mmengine itself writes.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine 0.10.7's checkpoints (message hub,
numpy values) then fail to load. Switching the check off would let a malicious checkpoint run code; instead the
loader allows, for the duration of one load, the few classes and functions mmengine's checkpoints contain.

``import mmadn`` registers :func:`load_from_local` as mmengine's loader for local paths, so ``--resume``,
``load_from``, ``tools/test.py CONFIG CKPT`` and ``Pretrained`` inits all go through it.
"""
import os.path as osp
import pickle
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not among those mmengine writes."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    mmengine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``; this
    resolves exactly those and nothing else, so allowing it does not reopen the hole a general ``getattr``
    would (``getattr(os, 'system')``).
    """
    if obj is HistoryBuffer and name in ('min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise UnsafeCheckpointError(f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> List[Any]:
    core = np._core if hasattr(np, '_core') else np.core
    scalar_types = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                    np.float16, np.float32, np.float64, np.complex64, np.complex128]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *[type(np.dtype(t)) for t in scalar_types]]


def _allowed_globals() -> List[Any]:
    # What an mmengine 0.10 checkpoint pickles besides tensors (torch.serialization.
    # get_unsafe_globals_in_checkpoint on a saved run): numpy arrays, dtypes and scalars, the message hub's
    # HistoryBuffer and getattr for its statistics methods; _codecs.encode is how numpy pickles raw bytes.
    import _codecs
    return [HistoryBuffer, _codecs.encode, (_history_buffer_getattr, 'builtins.getattr'), *_numpy_globals()]


SAFE_CHECKPOINT_GLOBALS = _allowed_globals()


def safe_torch_load(filename: str, map_location=None) -> Any:
    """``torch.load`` with the weights-only unpickler and the allow-list above; refuses anything else."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        allowed = {f'{g.__module__}.{g.__qualname__}' if not isinstance(g, tuple) else g[1]
                   for g in SAFE_CHECKPOINT_GLOBALS}
        try:
            found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # not a zip checkpoint: the unpickler's own message must do
            found = []
        foreign = sorted(set(found) - allowed) or [str(err).splitlines()[0]]
        raise UnsafeCheckpointError(
            f'Refusing to load {filename}: it contains pickled objects that mmengine checkpoints do not '
            f'contain ({", ".join(foreign)}), and unpickling them could run arbitrary code. Nothing from it '
            'was executed. If you trust the file, re-save only its tensors in a trusted environment, e.g. '
            "torch.save(torch.load(path, weights_only=False)['state_dict'], new_path).") from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader for local paths, made safe (see the module docstring)."""
    return safe_torch_load(filename, map_location)
