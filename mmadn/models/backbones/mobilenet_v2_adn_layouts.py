"""Checkpoint layouts of MobileNetV2(-ADN) and pure functions between them.

Layouts (what a classifier state dict looks like):
- ``released``: the ADN authors' release (github.com/wchkang/depth, ``models/mobilenetv2.py`` and
  ``models/misc.py``). It is torchvision's MobileNetV2 with two changes that rename keys:
  1. every conv-norm-act unit is a module with named children instead of a ``Sequential``:
     ``conv_layer`` (the conv), ``norm`` and, when the unit is not skippable, its twin ``norm_skip``;
     the projection conv + BN of a block (torchvision's ``conv.2`` / ``conv.3``) is one such unit too;
  2. the blocks of a stage with >= 2 blocks are grouped into one module, so ``features`` has 9 entries:
     ``features.0`` stem, ``features.1`` the 16-channel block, ``features.2`` .. ``features.6`` the five
     skippable stages (``features.S.B.*`` = block B), ``features.7`` the 320-channel block, ``features.8`` the last
     1x1 conv; head ``classifier.1``. Hence ``features.S`` is mmpretrain's ``layerS`` (S = 1..7), e.g.
     ``features.3.1.conv.2.norm_skip.weight`` <-> ``backbone.layer3.1.conv.2.bn_skip.weight``.
  The twins are therefore named ``<norm>_skip`` as in the spec: ``norm`` -> ``norm_skip`` there, ``bn`` ->
  ``bn_skip`` in mmadn. (A twin cannot be a sibling of torchvision's ``features.K.conv.0.1`` BN: that index sits
  in a ``Sequential`` that would run it; the release restructured the units instead.)
- ``torchvision``: a plain torchvision ``mobilenet_v2`` (``features.0`` .. ``features.18``, ``classifier.1``),
  no twins.
- ``mmpretrain``: an ``ImageClassifier`` with a ``MobileNetV2(ADN)`` backbone and ``LinearClsHead``:
  ``backbone.conv1`` / ``backbone.layerS.B.conv.J`` / ``backbone.conv2`` (each ``.conv`` + ``.bn`` [+ ``.bn_skip``])
  and ``head.fc``.
Every conversion is a renaming (no tensor is changed), so the round trip released <-> mmpretrain is exact to the bit.
The release's ``Dropout(0.2)`` before ``classifier.1`` holds no weights; mmpretrain's ``LinearClsHead`` has none.
"""
from collections import OrderedDict
from typing import Dict, Iterator, Mapping, Tuple

import torch
from mmpretrain.models.backbones import MobileNetV2

from ..utils.backbone_handoff import classifier_backbone_state
from ..utils.checkpoint_layout import CheckpointLayout, CheckpointLayouts, has_twins
from ..utils.skippable import num_mandatory_blocks


def _units() -> Iterator[Tuple[str, str, str, str, bool]]:
    """Every conv-norm unit of MobileNetV2 (widen_factor 1.0 settings; names do not depend on width):
    ``(mmpretrain unit, released unit, torchvision conv, torchvision norm, has a twin)``."""
    yield 'conv1', 'features.0', 'features.0.0', 'features.0.1', True
    tv_block = 1  # torchvision numbers blocks across stages: features.1 .. features.17
    for stage, (expand_ratio, _, num_blocks, _) in enumerate(MobileNetV2.arch_settings, start=1):
        mandatory = num_mandatory_blocks(num_blocks)
        for block in range(num_blocks):
            released_block = f'features.{stage}' + (f'.{block}' if num_blocks >= 2 else '')
            tv = f'features.{tv_block}.conv'
            # torchvision: ConvBNReLU units conv.0 (.. conv.1), then the projection conv and its BN as siblings
            num_act_units = 1 if expand_ratio == 1 else 2
            tv_units = [(f'{tv}.{j}.0', f'{tv}.{j}.1') for j in range(num_act_units)]
            tv_units.append((f'{tv}.{num_act_units}', f'{tv}.{num_act_units + 1}'))
            for j, (tv_conv, tv_norm) in enumerate(tv_units):
                yield (f'layer{stage}.{block}.conv.{j}', f'{released_block}.conv.{j}', tv_conv, tv_norm,
                       block < mandatory)
            tv_block += 1
    last = len(MobileNetV2.arch_settings) + 1
    yield 'conv2', f'features.{last}', f'features.{tv_block}.0', f'features.{tv_block}.1', True


def _module_maps() -> Dict[str, Dict[str, str]]:
    """Module-name maps (source -> mmpretrain) for each layout; keys are renamed module by module."""
    released, torchvision = {'classifier.1': 'head.fc'}, {'classifier.1': 'head.fc'}
    for mm, rel, tv_conv, tv_norm, has_twin in _units():
        released[f'{rel}.conv_layer'] = f'backbone.{mm}.conv'
        released[f'{rel}.norm'] = f'backbone.{mm}.bn'
        if has_twin:
            released[f'{rel}.norm_skip'] = f'backbone.{mm}.bn_skip'
        torchvision[tv_conv] = f'backbone.{mm}.conv'
        torchvision[tv_norm] = f'backbone.{mm}.bn'
    return dict(released=released, torchvision=torchvision)


_TO_MMPRETRAIN = _module_maps()
_FROM_MMPRETRAIN = {layout: {v: k for k, v in table.items()} for layout, table in _TO_MMPRETRAIN.items()}


def _rename(state_dict: Mapping[str, torch.Tensor], table: Dict[str, str], source: str, target: str):
    out = OrderedDict()
    for key, value in state_dict.items():
        module, _, leaf = key.rpartition('.')
        if module not in table:
            raise ValueError(f'Cannot place {key!r} of a {source} MobileNetV2 checkpoint in the {target} layout '
                             '(unknown module; only widen_factor-independent MobileNetV2 names are known).')
        out[f'{table[module]}.{leaf}'] = value
    return out


def released_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released MobileNetV2-ADN classifier -> mmpretrain ImageClassifier with a MobileNetV2ADN backbone."""
    MOBILENET_V2_LAYOUTS.expect(state_dict, 'released')
    return _rename(state_dict, _TO_MMPRETRAIN['released'], 'released', 'mmpretrain')


def mmpretrain_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain ImageClassifier (MobileNetV2ADN backbone, linear head) -> the released layout."""
    MOBILENET_V2_LAYOUTS.expect(state_dict, 'mmpretrain')
    return _rename(state_dict, _FROM_MMPRETRAIN['released'], 'mmpretrain', 'released')


def torchvision_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Plain torchvision mobilenet_v2 -> mmpretrain ImageClassifier; no twins (MobileNetV2ADN fills them on
    load from the shared norms, with one warning)."""
    MOBILENET_V2_LAYOUTS.expect(state_dict, 'torchvision')
    return _rename(state_dict, _TO_MMPRETRAIN['torchvision'], 'torchvision', 'mmpretrain')


def torchvision_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Plain torchvision mobilenet_v2 -> the released layout, each twin a copy of its shared norm: an ADN starting
    point that the authors' code can load."""
    MOBILENET_V2_LAYOUTS.expect(state_dict, 'torchvision')
    return MOBILENET_V2_LAYOUTS.convert(state_dict, 'released')


def _to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain -> released; a checkpoint without twins (torchvision's) gets copies of the shared norms, each
    placed right after its norm, as the release orders its keys."""
    released = mmpretrain_to_released(state_dict)
    if has_twins(released):
        return released
    out, twins, current = OrderedDict(), OrderedDict(), None
    for key, value in released.items():
        module, _, leaf = key.rpartition('.')
        if module != current:  # a norm's twin follows all of that norm's keys
            out.update(twins)
            twins.clear()
            current = module
        out[key] = value
        if module.endswith('.norm') and module + '_skip' in _TO_MMPRETRAIN['released']:
            twins[f'{module}_skip.{leaf}'] = value.clone()
    out.update(twins)
    return out


# Probes name keys only MobileNetV2 has: torchvision's Swin, for one, also has 'features.0.0.weight'.
MOBILENET_V2_LAYOUTS = CheckpointLayouts('mobilenet_v2', 'MobileNetV2', hub='mmpretrain', layouts=(
    CheckpointLayout('released', ('features.0.conv_layer.weight', ), released_to_mmpretrain, _to_released),
    CheckpointLayout('torchvision', ('features.1.conv.0.0.weight', ), torchvision_to_mmpretrain),
    CheckpointLayout('mmpretrain', ('backbone.conv1.conv.weight', )),
    CheckpointLayout('mmdet', from_hub=classifier_backbone_state),  # a detector's backbone: a target only
))
detect_layout, convert = MOBILENET_V2_LAYOUTS.detect, MOBILENET_V2_LAYOUTS.convert
