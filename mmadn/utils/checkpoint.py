"""Load checkpoints with torch's weights-only unpickler, allowing only what mmengine itself writes.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine 0.10.7's checkpoints (message hub,
numpy values) then fail to load. Switching the check off would let a malicious checkpoint run code; instead the
loader allows, for the duration of one load, the few classes and functions mmengine's checkpoints contain.

``import mmadn`` installs two things in mmengine, for every caller in the process, and logs once that it did
(:func:`install_checkpoint_loader`). :func:`load_from_local` becomes mmengine's loader for local paths, so
``--resume``, ``load_from``, ``tools/test.py CONFIG CKPT`` and ``Pretrained`` inits all go through it; files that
are empty, truncated, damaged (zip CRCs) or no checkpoint at all are refused as such
(:class:`CorruptCheckpointError`). And mmengine's ``load_state_dict``, through which all those loads put the
weights into the model, only warns when a checkpoint does not fit, so the run tests or trains a partly random
model; wrapped, such a load stops with what did not fit and how to fix it (:func:`check_checkpoint_fits`), unless
the config sets ``strict_load = False``. To keep mmengine's own loading, set ``MMADN_NO_CHECKPOINT_LOADER=1``
before importing mmadn, or call :func:`uninstall_checkpoint_loader`.

torch < 2.5 has no ``torch.serialization.safe_globals`` to extend its weights-only allow-list; there the same
allow-list (torch's own weights-only globals plus the ones above) is enforced by a restricted unpickler given to
``torch.load`` as its ``pickle_module``, so loading stays as safe as on newer torch.
"""
import _compat_pickle
import os
import os.path as osp
import pickle
import re
import sys
import types
import zipfile
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Sequence

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model import BaseModel, BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn


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
    # numpy 1.26 has a numpy._core too (a partial shim, once something imports it): choose by version
    core = np._core if int(np.__version__.split('.')[0]) >= 2 else np.core
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

# torch >= 2.5 extends its weights-only unpickler's allow-list for the duration of a load; older torch cannot.
_HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'safe_globals')


def _global_name(entry: Any) -> str:
    return entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'


@lru_cache(maxsize=None)
def _restricted_globals() -> Dict[str, Any]:
    """What the restricted unpickler may resolve, by pickled name: torch's weights-only allow-list (tensors,
    storages, dtypes, their rebuild functions) and :data:`SAFE_CHECKPOINT_GLOBALS`. numpy's core module is named
    ``numpy.core`` by numpy 1 and ``numpy._core`` by numpy 2; both spellings name the same objects, so a checkpoint
    saved under either numpy loads."""
    import collections

    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    # plain containers that newer torch's weights-only unpickler allows by default and torch 2.1's does not
    # (mmdet's detector checkpoints hold a Counter)
    allowed.update({f'{t.__module__}.{t.__qualname__}': t
                    for t in (collections.Counter, set, bytearray, complex)})
    for entry in SAFE_CHECKPOINT_GLOBALS:
        obj = entry[0] if isinstance(entry, tuple) else entry
        name = _global_name(entry)
        allowed[name] = obj
        for old, new in (('numpy.core.', 'numpy._core.'), ('numpy._core.', 'numpy.core.')):
            if name.startswith(old):
                allowed[new + name[len(old):]] = obj
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :func:`_restricted_globals` (torch < 2.5).

    Every global a pickle can call or instantiate comes through ``find_class``, so refusing all others there
    keeps a checkpoint from running code, as torch's weights-only unpickler does.
    """

    def find_class(self, module: str, name: str) -> Any:
        # torch.save pickles at protocol 2, which names builtins by their Python 2 names (__builtin__.getattr);
        # map them as pickle's own find_class does, then check the result
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f'{module}.{name}'
        allowed = _restricted_globals()
        if full not in allowed:
            raise UnsafeCheckpointError(f'Unsupported global: GLOBAL {full} is not among the globals mmengine '
                                        'checkpoints hold')
        return allowed[full]


def _restricted_load(file, **kwargs) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load's pickle_module on torch < 2.5 (``weights_only=False`` there only because torch refuses a
# pickle_module otherwise: the restricted unpickler is the check). torch unpickles through its ``Unpickler``
# (subclassed, ``find_class`` still ours) and ``load`` (the legacy format's header).
_RESTRICTED_PICKLE = types.SimpleNamespace(__name__='mmadn_restricted_pickle', Unpickler=_RestrictedUnpickler,
                                           load=_restricted_load)


def _refuse_torchscript(filename: str) -> None:
    """torch < 2.5's ``torch.load`` hands a TorchScript archive to ``torch.jit.load`` whatever unpickler it is
    given; such a file is no checkpoint and is refused before torch sees it."""
    if zipfile.is_zipfile(filename):
        with zipfile.ZipFile(filename) as archive:
            if any(n.endswith('/constants.pkl') for n in archive.namelist()):
                raise UnsafeCheckpointError(
                    f'Refusing to load {filename}: it is a TorchScript archive (torch.jit.save), not a checkpoint. '
                    'Nothing from it was executed; load it with torch.jit.load if you trust it.')


class CorruptCheckpointError(ValueError):
    """A checkpoint file is empty, truncated, damaged or not a checkpoint at all."""


# torch's legacy (pre-zip) format starts with its magic number pickled at protocol 2.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'
_ZIP_MAGIC = b'PK\x03\x04'


_DAMAGED_HINT = ('A checkpoint cut short while it was written (a killed run, a full disk) or while it was copied '
                 'looks like this: use an earlier checkpoint of the run, or copy or download the file again.')


def _corrupt(filename: str, what: str, hint: str = _DAMAGED_HINT) -> CorruptCheckpointError:
    return CorruptCheckpointError(f'Cannot load {filename}: {what}. Nothing was loaded from it. {hint}')


def _check_container(filename: str) -> None:
    """Refuse an empty, truncated or damaged file before unpickling it.

    torch reads a zip checkpoint without checking the CRC of its entries, so a damaged tensor would load
    silently; the CRCs are checked here (one read of the file).
    """
    size = osp.getsize(filename)
    if size == 0:
        raise _corrupt(filename, 'the file is empty (0 bytes)')
    with open(filename, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(filename) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise _corrupt(filename, f'it is a truncated or damaged PyTorch (zip) checkpoint ({err})') from None
        if bad is not None:
            raise _corrupt(filename, f'its entry {bad!r} fails its CRC check (the data was damaged)')
    elif not head.startswith(_LEGACY_MAGIC):
        raise _corrupt(filename, f'it is not a PyTorch checkpoint ({size} bytes starting with {head[:8]!r}, '
                       'neither torch.save\'s zip format nor its legacy format)',
                       'Pass a file written by torch.save, such as the .pth files mmengine writes to the work dir.')


def _foreign_globals(filename: str, err: Exception) -> List[str]:
    """The pickled globals of ``filename`` that the allow-list refuses; empty when the pickle is just damaged."""
    allowed = {_global_name(g) for g in SAFE_CHECKPOINT_GLOBALS}
    if _HAS_SAFE_GLOBALS and zipfile.is_zipfile(filename):
        try:
            found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # the pickle itself cannot be parsed: damaged, not foreign
            found = []
    else:  # legacy format or torch < 2.5: the unpickler names the global it refused; a name cut short by damage
        # resolves to nothing
        found = [name for name in re.findall(r'GLOBAL (\S+)', str(err)) if _may_exist(name)]
    return sorted(set(found) - allowed)


def _may_exist(name: str) -> bool:
    """False for a global that cannot exist (its module is loaded but lacks it); nothing is imported here."""
    module, _, attr = name.rpartition('.')
    return module not in sys.modules or hasattr(sys.modules[module], attr)


def safe_torch_load(filename: str, map_location=None) -> Any:
    """``torch.load`` with the weights-only unpickler and the allow-list above; refuses anything else.

    Raises:
        UnsafeCheckpointError: the file pickles objects mmengine checkpoints do not hold (nothing of it ran).
        CorruptCheckpointError: the file is empty, truncated, damaged (zip CRCs) or not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    _check_container(filename)
    if not _HAS_SAFE_GLOBALS:
        _refuse_torchscript(filename)
    try:
        if not _HAS_SAFE_GLOBALS:
            return torch.load(filename, map_location=map_location, pickle_module=_RESTRICTED_PICKLE,
                              weights_only=False)  # only because torch refuses a pickle_module otherwise
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        foreign = _foreign_globals(filename, err)
        if not foreign:  # torch's message would suggest weights_only=False, which is no fix for damage
            raise _corrupt(filename, 'its pickled data is damaged (it breaks off or holds bytes that are not a '
                           'valid pickle)') from None
        raise UnsafeCheckpointError(
            f'Refusing to load {filename}: it contains pickled objects that mmengine checkpoints do not '
            f'contain ({", ".join(foreign)}), and unpickling them could run arbitrary code. Nothing from it '
            'was executed. If you trust the file, re-save only its tensors in a trusted environment, e.g. '
            "torch.save(torch.load(path, weights_only=False)['state_dict'], new_path).") from None
    except (EOFError, KeyError, RuntimeError) as err:  # a legacy-format file cut short or overwritten
        if isinstance(err, RuntimeError) and not re.search('corrupt|unexpected EOF', str(err)):
            raise  # not about the file (e.g. a CUDA map_location on a machine without CUDA)
        raise _corrupt(filename, f'its data breaks off early or is damaged ({type(err).__name__}: '
                       f'{str(err).splitlines()[0] if str(err) else "end of file"})') from None


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader for local paths, made safe (see the module docstring)."""
    return safe_torch_load(filename, map_location)


# --- does the checkpoint fit the model? ------------------------------------------------------------------------

CONVERTER = 'tools/model_converters/adn_converter.py'


_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) from '
                            r'checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model it is loaded into (see :func:`check_checkpoint_fits`)."""


_STRICT_LOAD = [True]


def set_strict_load(strict: bool) -> None:
    """The ``strict_load`` policy of every load that follows (the tools set it from the config's ``strict_load``)."""
    if not isinstance(strict, bool):
        raise TypeError(f'strict_load must be True or False, got {strict!r}')
    _STRICT_LOAD[0] = strict


def get_strict_load() -> bool:
    return _STRICT_LOAD[0]


def _unwrap(module: nn.Module) -> nn.Module:
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def check_checkpoint_fits(module: nn.Module, state_dict: Mapping, missing: Sequence[str],
                          unexpected: Sequence[str], errors: Sequence[str]) -> None:
    """Raise a :class:`CheckpointMismatchError` when a load left part of ``module`` without its checkpoint value.

    A whole model (an mmengine ``BaseModel``: ``load_from``, ``--resume``, ``tools/test.py CKPT``) must get every
    tensor. A part (a backbone's ``init_cfg=dict(type='Pretrained', ...)``) may have tensors its pretraining
    lacks, which keep their init (new output norms, DCN offsets), as in mmdet; but every tensor the checkpoint
    names must have the model's shape, and something must load. Tensors of the checkpoint that the model lacks
    (a classifier's ``fc``) are left to mmengine's warning.

    Args:
        module: what was loaded into (unwrapped).
        state_dict: the state dict given (its keys suggest the fix).
        missing, unexpected, errors: torch's lists from ``_load_from_state_dict``.
    """
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith('num_batches_tracked')}
    missing = [k for k in missing if k in expected]
    # torch reports a tensor of another shape only as a message (children load from filtered copies of the
    # state dict, so comparing with the root's copy would miss what their pre-hooks changed)
    mis_shaped, other = [], []
    for error in errors:
        if error.startswith(('The model and loaded state dict', 'unexpected key in source', 'missing keys in source')):
            continue  # mmengine's own summary of the lists above
        found = _SIZE_MISMATCH.match(error)
        if found:
            mis_shaped.append((found[1], f'({found[2]})', f'({found[3]})'))
        else:
            other.append(error)
    whole = isinstance(module, BaseModel)
    loaded = len(expected) - len(missing) - len(mis_shaped)
    if not (mis_shaped or other or loaded <= 0 or (whole and missing)):
        return
    what = 'model' if whole else 'module'
    target = f'the model {type(module).__name__}' if whole else \
        f'the module {type(module).__name__} (loaded as a part: a Pretrained init)'
    lines = [f'The checkpoint does not fit {target}: {len(expected) - max(loaded, 0)} of its {len(expected)} '
             'tensors did not load, so it would run with random weights there.']
    if mis_shaped:
        shown = '; '.join(f'{k}: checkpoint {c}, model {m}' for k, c, m in mis_shaped[:4])
        lines.append(f'  {len(mis_shaped)} with another shape: {shown}' + (' ...' if len(mis_shaped) > 4 else ''))
    if missing:
        lines.append(f'  {len(missing)} not in the checkpoint: {_sample(missing)}')
    if unexpected:
        lines.append(f'  {len(unexpected)} in the checkpoint that the {what} lacks: {_sample(unexpected)}')
    lines += [f'  {e.strip()}' for e in other[:3]]
    lines.append('How to fix:')
    lines += [f'  - {hint}' for hint in _mismatch_hints(expected, state_dict, unexpected, mis_shaped, loaded,
                                                       whole)]
    lines.append('  - to fine-tune on purpose from a checkpoint that cannot fill every tensor (another head or '
                 'number of classes, new layers), set strict_load = False in the config (or --cfg-options '
                 'strict_load=False): what does not fit keeps its init and is only warned about.')
    raise CheckpointMismatchError('\n'.join(lines))


def _sample(keys: Sequence[str], n: int = 4) -> str:
    return ', '.join(keys[:n]) + (' ...' if len(keys) > n else '')


def _mismatch_hints(expected, state_dict, unexpected, mis_shaped, loaded, whole) -> List[str]:
    hints = []
    keys = [k for k in state_dict if k in unexpected] or list(state_dict)
    under = [p for p in ('backbone.', 'module.', 'model.', 'state_dict.')
             if sum(k.startswith(p) and k[len(p):] in expected for k in keys) > len(keys) // 2]
    above = [p for p in ('backbone.', ) if sum(p + k in expected for k in keys) > len(keys) // 2]
    if above:
        hints.append('the checkpoint holds a bare backbone, not a whole model: use it as the backbone\'s init, '
                     "model.backbone.init_cfg=dict(type='Pretrained', checkpoint=CKPT), not as load_from or "
                     'tools/test.py\'s CHECKPOINT')
    if under:
        hints.append(f"the checkpoint holds these weights under the prefix {under[0]!r}: load that part with "
                     f"init_cfg=dict(type='Pretrained', checkpoint=CKPT, prefix={under[0]!r})")
    if any(k.startswith(('fc.', 'features.', 'encoder.', 'heads.')) for k in state_dict):
        hints.append(f'a torchvision checkpoint or a released ADN model is in another layout: convert it first, '
                     f'python {CONVERTER} SRC DST --to mmdet (or --to mmpretrain)')
    if mis_shaped:
        hints.append('the checkpoint is of another architecture or size: make the config match it (e.g. '
                     'model.backbone.depth=..., model.head.num_classes=... / model.roi_head.bbox_head.num_classes'
                     '=...), or use a checkpoint trained with this config')
    if whole and loaded > 0 and not hints:
        hints.append('the checkpoint was trained for another model (e.g. a classifier for a detector): use only its '
                     "backbone, model.backbone.init_cfg=dict(type='Pretrained', checkpoint=CKPT, prefix='backbone.')")
    if not hints:
        hints.append('check that the checkpoint was trained with this config')
    return hints


def load_state_dict(module: nn.Module, state_dict: Mapping, strict: bool = False, logger=None) -> None:
    """mmengine's ``load_state_dict``, which every load goes through (``load_from``, ``--resume``,
    ``tools/test.py``, ``Pretrained`` inits): with ``strict=False`` it only warns, so a model that did not load
    would be tested or trained; here the load is checked by :func:`check_checkpoint_fits` unless the config sets
    ``strict_load = False``."""
    target = _unwrap(module)
    seen = {}

    def record(mod, sd, prefix, local_metadata, strict_, missing, unexpected, errors):
        seen.update(state_dict=sd, missing=missing, unexpected=unexpected, errors=errors)  # torch's own lists

    if hasattr(target, 'register_load_state_dict_pre_hook'):
        handle = target.register_load_state_dict_pre_hook(record)
    else:  # torch < 2.2: the same hook in its private form
        handle = target._register_load_state_dict_pre_hook(record, with_module=True)
    try:
        _mmengine_load_state_dict(module, state_dict, strict, logger)
    finally:
        handle.remove()
    if seen and not strict and get_strict_load():
        check_checkpoint_fits(target, seen['state_dict'], seen['missing'], seen['unexpected'], seen['errors'])


# mmengine's function, kept once even if this module is reloaded; its callers look it up at call time.
_mmengine_load_state_dict = getattr(mmengine_checkpoint.load_state_dict, '_mmengine',
                                    mmengine_checkpoint.load_state_dict)
load_state_dict._mmengine = _mmengine_load_state_dict
OPT_OUT = 'MMADN_NO_CHECKPOINT_LOADER'


def install_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_from_local` and check every load with
    :func:`load_state_dict` (what ``import mmadn`` does unless ``MMADN_NO_CHECKPOINT_LOADER=1``), and say so."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    mmengine_checkpoint.load_state_dict = load_state_dict
    print_log(f'mmadn: mmengine now loads local checkpoints weights-only and stops a load that does not fit '
              f'(mmadn.utils.checkpoint); set {OPT_OUT}=1 to keep its own loading.', logger='current')


def uninstall_checkpoint_loader() -> None:
    """Give mmengine back its own local checkpoint loader and ``load_state_dict``."""
    CheckpointLoader.register_scheme(prefixes='', loader=mmengine_checkpoint.load_from_local, force=True)
    mmengine_checkpoint.load_state_dict = _mmengine_load_state_dict


if os.environ.get(OPT_OUT, '') in ('', '0'):
    install_checkpoint_loader()
