"""Checkpoint layouts of Swin-T(-ADN) and pure functions between them.

Layouts (what a classifier state dict looks like):
- ``released``: the ADN authors' release (github.com/wchkang/depth, ``models/swin_transformer.py``). It starts from
  torchvision's Swin but regroups the modules: the patch embedding is its own ``pre`` (``pre.0`` conv, ``pre.2``
  LayerNorm), and ``features`` holds the stages and the patch mergings alternately, so the stages are
  ``features.{0,2,4,6}`` (blocks ``features.{0,2,4,6}.j.*``, twins ``norm1_skip`` / ``norm2_skip`` in the
  mandatory blocks only) and the patch mergings ``features.{1,3,5}`` (``reduction``, ``norm`` and its twin
  ``norm_skip``); then ``norm`` and ``head``. The merging ``features.{2s+1}`` follows the flag of the stage it
  feeds (s+1), like ``stages.s.downsample`` here.
- ``torchvision``: a plain torchvision ``swin_t`` (``features.0.{0,2}`` patch embedding, stages
  ``features.{1,3,5,7}``, mergings ``features.{2,4,6}``), no twins. Files that mmadn's converter wrote before it
  knew the real release (torchvision names with twins added) are read as this layout too, their twins kept.
- ``mmpretrain``: an ``ImageClassifier`` with a ``SwinTransformerADN`` backbone (``backbone.*``, ``head.fc.*``).
- ``mmdet``: a detector's ``backbone.*`` (no classifier head).

Two differences beyond renaming, both exactly invertible:
- torchvision (and the release) store ``relative_position_index`` flat (Wh*Ww*Wh*Ww,), mmpretrain as
  (Wh*Ww, Wh*Ww): a reshape.
- torchvision's patch merging concatenates the 2x2 sub-patches as [(0,0), (1,0), (0,1), (1,1)] blocks of C channels,
  mmpretrain's ``nn.Unfold`` interleaves them per channel (c * 4 + 2 * row + col): the merging norm's parameters and
  the reduction's input columns are permuted (a gather, so the round trip is bit-exact).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

from ..utils.backbone_handoff import classifier_backbone_state
from ..utils.checkpoint_layout import CheckpointLayout, CheckpointLayouts, has_twins
from ..utils.skippable import num_mandatory_blocks

RELEASED_LAYOUT = ("the ADN release's: pre.{0,2}.*, stages features.{0,2,4,6}.j.*, patch mergings "
                   'features.{1,3,5}.{reduction,norm,norm_skip}.*, norm.*, head.*')

# inside a block: torchvision / released name -> mmpretrain name
_BLOCK_RENAMES = (
    ('attn.relative_position_bias_table', 'attn.w_msa.relative_position_bias_table'),
    ('attn.relative_position_index', 'attn.w_msa.relative_position_index'),
    ('attn.qkv.', 'attn.w_msa.qkv.'),
    ('attn.proj.', 'attn.w_msa.proj.'),
    ('mlp.0.', 'ffn.layers.0.0.'),
    ('mlp.3.', 'ffn.layers.1.'),
)
_NORMS = ('norm1.', 'norm1_skip.', 'norm2.', 'norm2_skip.')
_MERGING = ('reduction.', 'norm.', 'norm_skip.')


def merging_permutation(in_channels: int) -> torch.Tensor:
    """``perm`` with ``mmpretrain_vector = torchvision_vector[perm]`` for a patch merging's 4*C inputs."""
    c = torch.arange(in_channels).repeat_interleave(4)  # mmpretrain index m = c * 4 + 2 * row + col
    pos = torch.arange(4).repeat(in_channels)
    row, col = pos // 2, pos % 2
    return (row + 2 * col) * in_channels + c  # torchvision index: sub-patch (row + 2 * col), then channel


def _inverse(perm: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return inv


def _permute_merging(key: str, value: torch.Tensor, to_mmpretrain: bool) -> torch.Tensor:
    perm = merging_permutation(value.shape[-1] // 4)
    if not to_mmpretrain:
        perm = _inverse(perm)
    return value[..., perm] if key.endswith('reduction.weight') else value[perm]


# ---- released <-> torchvision: module indices only ----------------------------------------------------------


def _torchvision_key_to_released(key: str) -> str:
    if key.startswith('features.0.'):
        return 'pre.' + key[len('features.0.'):]
    m = re.match(r'features\.(\d+)\.(.*)$', key)
    if m:
        return f'features.{int(m.group(1)) - 1}.{m.group(2)}'
    return key  # norm.*, head.*


def _stage_depths(released: Mapping[str, torch.Tensor]) -> Dict[int, int]:
    """{stage features index: number of blocks} of a released-layout state dict."""
    depths: Dict[int, int] = {}
    for key in released:
        m = re.match(r'features\.(\d+)\.(\d+)\.', key)
        if m and int(m.group(1)) % 2 == 0:
            index = int(m.group(1))
            depths[index] = max(depths.get(index, 0), int(m.group(2)) + 1)
    return depths


def released_twin_modules(released: Mapping[str, torch.Tensor]) -> List[Tuple[str, str]]:
    """``(twin, shared)`` module names of the twins a released-layout state dict of this Swin has: norm1 / norm2
    of the first ``min(n - 1, ceil(n / 2))`` blocks of every stage ([1, 1, 3, 1] for Swin-T, the release's
    ``depths_base``) and the norm of every patch merging, as SwinTransformerADN has them."""
    depths = _stage_depths(released)
    twins = []
    for index in sorted(depths):
        if depths[index] >= 2:  # a stage of one block cannot skip (SwinTransformerADN gives it no twins)
            for block in range(num_mandatory_blocks(depths[index])):
                twins += [(f'features.{index}.{block}.{n}_skip', f'features.{index}.{block}.{n}')
                          for n in ('norm1', 'norm2')]
        if depths.get(index + 2, 0) >= 2:  # the merging feeding a stage that can skip
            twins.append((f'features.{index + 1}.norm_skip', f'features.{index + 1}.norm'))
    return twins


def _to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain -> released; a checkpoint without twins (torchvision's) gets copies of the shared norms, placed
    where the release puts them: at the end of their block / patch merging."""
    renamed = mmpretrain_to_released(state_dict)
    if has_twins(renamed):
        return renamed
    missing: Dict[str, List[Tuple[str, torch.Tensor]]] = {}  # module (block / merging) -> twin tensors to add
    for twin, shared in released_twin_modules(renamed):
        owner = twin.rpartition('.')[0] + '.'
        for key in [k for k in renamed if k.startswith(shared + '.')]:
            missing.setdefault(owner, []).append((twin + key[len(shared):], renamed[key].clone()))
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    items = list(renamed.items())
    for position, (key, value) in enumerate(items):
        out[key] = value
        for owner in [o for o in missing if key.startswith(o)]:
            following = items[position + 1][0] if position + 1 < len(items) else ''
            if not following.startswith(owner):  # the owner's last key: its twins go here
                out.update(missing.pop(owner))
    return out


# ---- released <-> mmpretrain ----------------------------------------------------------------------------------


def _last_stage(keys) -> int:
    stages = [int(m.group(1)) for k in keys for m in [re.match(r'features\.(\d+)\.', k)] if m]
    return max(stages) // 2


def _released_key_to_mm(key: str, last_stage: int) -> Tuple[str, str]:
    """(mmpretrain key, kind) for a released backbone key; kind tells which tensor transform applies."""
    if key.startswith('pre.0.'):
        return 'patch_embed.projection.' + key[len('pre.0.'):], ''
    if key.startswith('pre.2.'):
        return 'patch_embed.norm.' + key[len('pre.2.'):], ''
    if key.startswith('norm.'):
        return f'norm{last_stage}.' + key[len('norm.'):], ''
    m = re.match(r'features\.(\d+)\.(.*)$', key)
    if m is None:
        raise ValueError(f'Cannot place released key {key!r} in the mmpretrain layout; expected {RELEASED_LAYOUT}.')
    index, rest = int(m.group(1)), m.group(2)
    if index % 2 == 1:  # patch merging after stage index // 2
        if not rest.startswith(_MERGING):
            raise ValueError(f'Unexpected patch-merging key {key!r}; expected {RELEASED_LAYOUT}.')
        return f'stages.{index // 2}.downsample.{rest}', 'merging'
    block, _, name = rest.partition('.')
    for old, new in _BLOCK_RENAMES:
        if name.startswith(old):
            kind = 'index' if 'relative_position_index' in old else ''
            return f'stages.{index // 2}.blocks.{block}.{new}{name[len(old):]}', kind
    if name.startswith(_NORMS):
        return f'stages.{index // 2}.blocks.{block}.{name}', ''
    raise ValueError(f'Cannot place released key {key!r} in the mmpretrain layout; expected {RELEASED_LAYOUT}.')


def _mm_key_to_released(key: str, last_stage: int) -> Tuple[str, str]:
    if key.startswith('patch_embed.projection.'):
        return 'pre.0.' + key[len('patch_embed.projection.'):], ''
    if key.startswith('patch_embed.norm.'):
        return 'pre.2.' + key[len('patch_embed.norm.'):], ''
    if key.startswith(f'norm{last_stage}.'):
        return 'norm.' + key[len(f'norm{last_stage}.'):], ''
    m = re.match(r'stages\.(\d+)\.downsample\.(.*)$', key)
    if m:
        return f'features.{2 * int(m.group(1)) + 1}.{m.group(2)}', 'merging'
    m = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if m is None:
        raise ValueError(f'Cannot place mmpretrain backbone key {key!r} in the released layout (a classifier has '
                         f'one output norm, norm{last_stage}; detection out-norms have no released counterpart).')
    prefix, name = f'features.{2 * int(m.group(1))}.{m.group(2)}.', m.group(3)
    for old, new in _BLOCK_RENAMES:
        if name.startswith(new):
            kind = 'index' if 'relative_position_index' in new else ''
            return prefix + old + name[len(new):], kind
    if name.startswith(_NORMS):
        return prefix + name, ''
    raise ValueError(f'Cannot place mmpretrain backbone key {key!r} in the released layout.')


def released_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) Swin classifier -> mmpretrain ImageClassifier with a SwinTransformerADN. From
    torchvision there are no twins: SwinTransformerADN fills them from the shared norms on load, with one line."""
    SWIN_LAYOUTS.expect(state_dict, 'released', 'torchvision')
    if SWIN_LAYOUTS.detect(state_dict) == 'torchvision':  # renamed only, no twins added
        state_dict = OrderedDict((_torchvision_key_to_released(k), v) for k, v in state_dict.items())
    last = _last_stage(state_dict)
    out = OrderedDict()
    for key, value in state_dict.items():  # key order kept, so a round trip gives back the same sequence
        if key.startswith('head.'):
            out['head.fc.' + key[len('head.'):]] = value
            continue
        new, kind = _released_key_to_mm(key, last)
        if kind == 'merging':
            value = _permute_merging(new, value, to_mmpretrain=True)
        elif kind == 'index':
            side = int(round(value.numel()**0.5))
            value = value.reshape(side, side)
        out['backbone.' + new] = value
    return out


def mmpretrain_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain ImageClassifier (SwinTransformerADN, linear head) -> the released layout."""
    SWIN_LAYOUTS.expect(state_dict, 'mmpretrain')
    last = max(int(m.group(1)) for k in state_dict for m in [re.match(r'backbone\.stages\.(\d+)\.', k)] if m)
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            out['head.' + key[len('head.fc.'):]] = value
            continue
        if not key.startswith('backbone.'):
            raise ValueError(f'Cannot place {key!r} in the released layout (only backbone.* and head.fc.*).')
        new, kind = _mm_key_to_released(key[len('backbone.'):], last)
        if kind == 'merging':
            value = _permute_merging(key, value, to_mmpretrain=False)
        elif kind == 'index':
            value = value.reshape(-1)
        out[new] = value
    return out


# keys that only this layout has (torchvision's MobileNetV2 also numbers features.N, so no bare features.N probes)
_MM_PROBE = 'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table'
SWIN_LAYOUTS = CheckpointLayouts('swin', 'Swin', hub='mmpretrain', layouts=(
    CheckpointLayout('released', ('features.0.0.attn.relative_position_bias_table', 'pre.0.weight'),
                     released_to_mmpretrain, _to_released),
    CheckpointLayout('torchvision', ('features.1.0.attn.relative_position_bias_table', 'features.0.0.weight'),
                     released_to_mmpretrain),
    CheckpointLayout('mmpretrain', (_MM_PROBE, 'head.fc.weight')),
    # from mmdet: refused (a detector has no classifier and its out-norms no released counterpart); to mmdet:
    # the classifier's backbone.* (the out-norms norm0..2 keep their init)
    CheckpointLayout('mmdet', (_MM_PROBE, ), from_hub=classifier_backbone_state),
))
detect_layout, convert = SWIN_LAYOUTS.detect, SWIN_LAYOUTS.convert
