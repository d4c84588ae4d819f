"""Checkpoint layouts of ResNet(-ADN) and pure functions between them.

Layouts (what a state dict looks like):
- ``released``: the ADN authors' classification release: torchvision names, twins ``layerS.B.bnK_skip.*``,
  head ``fc.*``. A plain torchvision ResNet is the same layout without twins (``torchvision``).
- ``mmpretrain``: an ``ImageClassifier``: ``backbone.*`` (same names as above) and ``head.fc.*``.
- ``mmdet``: a detector: ``backbone.*`` plus neck / heads, no classifier.
ResNetADN's own parameter names are torchvision's, so every conversion is a renaming, exact to the bit.
With ``deep_stem`` / ``avg_down`` the layout is mmdet's; ``deep_stem_renames`` and ``pooled_shortcut_renames``
read mmpretrain's (ResNetV1c / V1d) into it.
"""
import re
from collections import OrderedDict
from typing import Dict, Iterable, Mapping

import torch

from ..utils.checkpoint_layout import CheckpointLayout, CheckpointLayouts

_PROBE = 'layer1.0.conv1.weight'


_MMPRETRAIN_STEM_UNIT = re.compile(r'stem\.(\d+)\.([a-z_]+)\.(.+)')


def deep_stem_renames(keys: Iterable[str], prefix: str = '') -> Dict[str, str]:
    """``{old: new}`` for the deep-stem keys under ``prefix`` that are in mmpretrain's form.

    mmpretrain's deep stem is three ConvModules (``stem.i.conv.*``, ``stem.i.bn.*``); mmdet's, which ResNetADN
    builds, is one flat ``nn.Sequential`` of (conv, norm, ReLU) x 3: ``stem.{3i}.*`` and ``stem.{3i+1}.*``.
    """
    renames = {}
    for key in keys:
        match = _MMPRETRAIN_STEM_UNIT.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
        if match is not None:
            unit, part, rest = match.groups()
            renames[key] = f'{prefix}stem.{3 * int(unit) + (0 if part == "conv" else 1)}.{rest}'
    return renames


def pooled_shortcut_renames(keys: Iterable[str], block_prefixes: Iterable[str]) -> Dict[str, str]:
    """``{old: new}`` for the projection shortcuts of ``block_prefixes`` (``'layer1.0.'``) in mmpretrain's form.

    With ``avg_down`` mmdet puts an ``AvgPool2d`` in front of every projection shortcut (a 1x1 identity where the
    stride is 1): ``downsample.1`` conv, ``downsample.2`` norm. mmpretrain only where the shortcut strides, so
    the first stage of its ResNetV1d has ``downsample.0`` conv, ``downsample.1`` norm.
    """
    keys = list(keys)
    renames = {}
    for block in block_prefixes:
        if block + 'downsample.0.weight' not in keys:
            continue
        for key in keys:
            for index in (0, 1):
                head = f'{block}downsample.{index}.'
                if key.startswith(head):
                    renames[key] = f'{block}downsample.{index + 1}.{key[len(head):]}'
    return renames


def released_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) classifier -> mmpretrain ImageClassifier with a ResNetADN backbone."""
    RESNET_LAYOUTS.expect(state_dict, 'released', 'torchvision')
    return OrderedDict(('head.' + k if k.startswith('fc.') else 'backbone.' + k, v) for k, v in state_dict.items())


def mmpretrain_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain ImageClassifier (ResNetADN backbone, linear head) -> the released layout."""
    RESNET_LAYOUTS.expect(state_dict, 'mmpretrain')
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            out[key[len('backbone.'):]] = value
        elif key.startswith('head.fc.'):
            out[key[len('head.'):]] = value
        else:
            raise ValueError(f'Cannot place {key!r} in the released layout (only backbone.* and head.fc.*).')
    return out


def released_to_mmdet(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) classifier -> detector backbone weights (``backbone.*``); ``fc`` is dropped."""
    RESNET_LAYOUTS.expect(state_dict, 'released', 'torchvision')
    return OrderedDict(('backbone.' + k, v) for k, v in state_dict.items() if not k.startswith('fc.'))


def mmdet_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """The backbone of a detector (or classifier) -> the released layout without ``fc``."""
    RESNET_LAYOUTS.expect(state_dict, 'mmdet', 'mmpretrain')
    return OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items() if k.startswith('backbone.'))


def _to_classifier(released: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    if 'fc.weight' not in released:
        raise ValueError('The checkpoint has no classifier head (fc); it cannot become an mmpretrain classifier.')
    return released_to_mmpretrain(released)


RESNET_LAYOUTS = CheckpointLayouts('resnet', 'ResNet', hub='released', layouts=(
    CheckpointLayout('released', (_PROBE, ), twins=True),
    CheckpointLayout('torchvision', (_PROBE, ), to_hub=OrderedDict),
    CheckpointLayout('mmpretrain', ('backbone.' + _PROBE, 'head.fc.weight'), mmpretrain_to_released, _to_classifier),
    CheckpointLayout('mmdet', ('backbone.' + _PROBE, ), mmdet_to_released, released_to_mmdet),
))
detect_layout, convert = RESNET_LAYOUTS.detect, RESNET_LAYOUTS.convert
