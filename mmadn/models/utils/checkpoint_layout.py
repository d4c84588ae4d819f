"""Checkpoint layouts: how each codebase names one architecture's tensors, and the conversions between them.

An architecture declares its layouts once (:class:`CheckpointLayouts`, carried by its backbone class as
``checkpoint_layouts``): the keys that identify each layout and its renamings to and from one hub layout.
Detection and conversion are written here, for one architecture and across all the registered backbones'
declarations (:func:`detect_arch`, :func:`convert_checkpoint`, what ``tools/model_converters/adn_converter.py``
runs). A conversion renames keys (and permutes where two codebases order a
tensor differently), so it is exact to the bit.
"""
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch

from mmadn.registry import MMPRETRAIN_MODELS
from .skippable import TWIN_SUFFIX

Renaming = Callable[[Mapping[str, torch.Tensor]], 'OrderedDict[str, torch.Tensor]']


def unwrap_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file's content (``state_dict`` / ``model`` wrappers or bare)."""
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model', 'model_state_dict'):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                return unwrap_state_dict(checkpoint[key])
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            # DataParallel checkpoints carry a 'module.' prefix on every key
            if all(k.startswith('module.') for k in checkpoint):
                return OrderedDict((k[len('module.'):], v) for k, v in checkpoint.items())
            return OrderedDict(checkpoint)
    raise ValueError('Not a checkpoint of a model: expected a state dict (name -> tensor), optionally under '
                     "'state_dict' or 'model'.")


def has_twins(keys: Iterable[str]) -> bool:
    """Whether a state dict holds twin norms (``*_skip.*``)."""
    return any(TWIN_SUFFIX + '.' in k for k in keys)


class CheckpointLayout(NamedTuple):
    """One layout of an architecture's checkpoints.

    Args:
        name: 'released', 'torchvision', 'mmpretrain', 'mmdet'.
        probes: keys every state dict of this layout holds; none: a target only, never detected.
        to_hub / from_hub: renamings to and from the architecture's hub layout; None: not a source / target
            (the hub itself needs none).
        twins: when given, whether the layout's state dicts hold twin norms (a torchvision model does not).
    """
    name: str
    probes: Tuple[str, ...] = ()
    to_hub: Optional[Renaming] = None
    from_hub: Optional[Renaming] = None
    twins: Optional[bool] = None

    def matches(self, keys) -> bool:
        return bool(self.probes) and all(p in keys for p in self.probes) and (
            self.twins is None or self.twins == has_twins(keys))


class CheckpointLayouts:
    """The layouts of one architecture; a state dict is of the first layout it matches, and converts through
    the layout named ``hub``.

    Args:
        arch: the converter's name of the architecture ('resnet', 'swin', ...).
        family: the plain network's name, for messages ('ResNet', 'Swin', ...).
    """

    def __init__(self, arch: str, family: str, hub: str, layouts: Sequence[CheckpointLayout]) -> None:
        self.arch, self.family, self.hub = arch, family, hub
        self.layouts = OrderedDict((layout.name, layout) for layout in layouts)

    def detect(self, state_dict: Mapping[str, torch.Tensor]) -> str:
        """Name the layout of ``state_dict``, or raise a ValueError that shows what was found."""
        keys = set(state_dict)
        for layout in self.layouts.values():
            if layout.matches(keys):
                return layout.name
        expected: Dict[str, list] = OrderedDict()
        for layout in self.layouts.values():
            if layout.probes:
                expected.setdefault(layout.probes[0], []).append(layout.name)
        expected = ' or '.join(f'{probe!r} ({" / ".join(names)})' for probe, names in expected.items())
        raise ValueError(f'Unknown checkpoint layout: expected a {self.family} state dict with {expected}; found '
                         f'{len(keys)} keys such as: {", ".join(sorted(keys)[:5])}')

    def expect(self, state_dict: Mapping[str, torch.Tensor], *names: str) -> None:
        found = self.detect(state_dict)
        if found not in names:
            raise ValueError(f'Expected a checkpoint in the {" or ".join(names)} layout of {self.family}, got '
                             f'{found}.')

    def convert(self, state_dict: Mapping[str, torch.Tensor], to: str) -> 'OrderedDict[str, torch.Tensor]':
        """Convert a state dict of any layout into layout ``to``, through the hub."""
        targets = [n for n, layout in self.layouts.items() if n == self.hub or layout.from_hub]
        if to not in targets:
            raise ValueError(f'Unknown target layout {to!r} for {self.family}; choose '
                             f'{", ".join(map(repr, targets))}.')
        source = self.layouts[self.detect(state_dict)]
        if source.name != self.hub and source.to_hub is None:
            raise ValueError(f'A {self.family} checkpoint in the {source.name} layout cannot be converted; convert '
                             'the classifier it was trained from.')
        hub = OrderedDict(state_dict) if source.name == self.hub else source.to_hub(state_dict)
        return hub if to == self.hub else self.layouts[to].from_hub(hub)


def registered_layouts() -> Dict[str, CheckpointLayouts]:
    """The layouts of every architecture whose registered ADN backbone declares them (``checkpoint_layouts``), by
    ``arch``. Read when called: the backbones register when ``mmadn`` is imported, after this module."""
    return OrderedDict((cls.checkpoint_layouts.arch, cls.checkpoint_layouts)
                       for cls in MMPRETRAIN_MODELS.module_dict.values()
                       if isinstance(getattr(cls, 'checkpoint_layouts', None), CheckpointLayouts))


def detect_arch(state_dict: Mapping[str, torch.Tensor]) -> Tuple[str, str]:
    """``(arch, layout)`` of the one registered architecture whose layouts recognise ``state_dict``; a ValueError
    that lists each architecture's reason when none does, or asks for an ``arch`` when several do."""
    found, reasons = [], []
    for arch, layouts in registered_layouts().items():
        try:
            found.append((arch, layouts.detect(state_dict)))
        except ValueError as err:
            reasons.append(f'  {arch}: {str(err).splitlines()[0]}')
    if len(found) > 1:
        raise ValueError(f'Several architectures recognise this checkpoint ({found}); choose one with --arch.')
    if not found:
        raise ValueError('No ADN architecture recognises this checkpoint:\n' + '\n'.join(reasons))
    return found[0]


def convert_checkpoint(state_dict: Mapping[str, torch.Tensor], to: str,
                       arch: Optional[str] = None) -> Tuple[str, str, 'OrderedDict[str, torch.Tensor]']:
    """``(arch, source layout, state dict in layout to)``; ``arch`` (default: :func:`detect_arch`) names the
    architecture whose conversions apply."""
    archs = registered_layouts()
    if arch is None:
        arch, source = detect_arch(state_dict)
    elif arch not in archs:
        raise ValueError(f'Unknown architecture {arch!r}; the registered ones are {", ".join(sorted(archs))}.')
    else:
        source = archs[arch].detect(state_dict)
    return arch, source, archs[arch].convert(state_dict, to)
