"""Checkpoint layouts of Swin-T(-ADN) and pure functions between them.

Layouts:
- ``released``: the ADN authors' release, built on torchvision's ``swin_t``: ``features.0.{0,2}`` patch embedding,
  ``features.{1,3,5,7}.j.*`` blocks (twins ``norm1_skip`` / ``norm2_skip``), ``features.{2,4,6}.{norm,reduction}``
  patch merging (twin ``norm_skip``), ``norm``, ``head``. Without twins it is a plain torchvision Swin
  (``torchvision``).
- ``mmpretrain``: an ``ImageClassifier`` with a ``SwinTransformerADN`` backbone (``backbone.*``, ``head.fc.*``).
- ``mmdet``: a detector's ``backbone.*`` (no classifier head).

Two differences beyond renaming, both exactly invertible:
- torchvision stores ``relative_position_index`` flat (Wh*Ww*Wh*Ww,), mmpretrain as (Wh*Ww, Wh*Ww): a reshape.
- torchvision's patch merging concatenates the 2x2 sub-patches as [(0,0), (1,0), (0,1), (1,1)] blocks of C channels,
  mmpretrain's ``nn.Unfold`` interleaves them per channel (c * 4 + 2 * row + col): the merging norm's parameters and
  the reduction's input columns are permuted (a gather, so the round trip is bit-exact).
"""
import re
from collections import OrderedDict
from typing import Mapping, Tuple

import torch

from .resnet_adn_layouts import unwrap_state_dict  # noqa: F401  (same checkpoint unwrapping for every arch)

_RELEASED_PROBE = 'features.1.0.attn.relative_position_bias_table'
_MM_PROBE = 'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table'
LAYOUTS = ('released', 'torchvision', 'mmpretrain', 'mmdet')

# inside a block: torchvision name -> mmpretrain name
_BLOCK_RENAMES = (
    ('attn.relative_position_bias_table', 'attn.w_msa.relative_position_bias_table'),
    ('attn.relative_position_index', 'attn.w_msa.relative_position_index'),
    ('attn.qkv.', 'attn.w_msa.qkv.'),
    ('attn.proj.', 'attn.w_msa.proj.'),
    ('mlp.0.', 'ffn.layers.0.0.'),
    ('mlp.3.', 'ffn.layers.1.'),
)
_NORMS = ('norm1.', 'norm1_skip.', 'norm2.', 'norm2_skip.')


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the layout of a Swin(-ADN) state dict, or raise a ValueError that shows what was found."""
    keys = set(state_dict)
    if _RELEASED_PROBE in keys:
        return 'released' if any('_skip.' in k for k in keys) else 'torchvision'
    if _MM_PROBE in keys:
        return 'mmpretrain' if 'head.fc.weight' in keys else 'mmdet'
    sample = ', '.join(sorted(keys)[:5])
    raise ValueError(
        f'Unknown checkpoint layout: expected a Swin state dict with {_RELEASED_PROBE!r} (torchvision / released '
        f'ADN) or {_MM_PROBE!r} (mmpretrain / mmdet); found {len(keys)} keys such as: {sample}')


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
    in4 = value.shape[-1]
    perm = merging_permutation(in4 // 4)
    if not to_mmpretrain:
        perm = _inverse(perm)
    return value[..., perm] if key.endswith('reduction.weight') else value[perm]


def _last_stage(keys) -> int:
    stages = [int(m.group(1)) for k in keys for m in [re.match(r'features\.(\d+)\.', k)] if m]
    return (max(stages) - 1) // 2


def _released_key_to_mm(key: str, last_stage: int) -> Tuple[str, str]:
    """(mmpretrain key, kind) for a released backbone key; kind tells which tensor transform applies."""
    if key.startswith('features.0.0.'):
        return 'patch_embed.projection.' + key[len('features.0.0.'):], ''
    if key.startswith('features.0.2.'):
        return 'patch_embed.norm.' + key[len('features.0.2.'):], ''
    if key.startswith('norm.'):
        return f'norm{last_stage}.' + key[len('norm.'):], ''
    m = re.match(r'features\.(\d+)\.(.*)$', key)
    if m is None:
        raise ValueError(f'Cannot place released key {key!r} in the mmpretrain layout.')
    index, rest = int(m.group(1)), m.group(2)
    if index % 2 == 0:  # patch merging feeding stage index // 2
        if not rest.startswith(('reduction.', 'norm.', 'norm_skip.')):
            raise ValueError(f'Unexpected patch-merging key {key!r}.')
        return f'stages.{index // 2 - 1}.downsample.{rest}', 'merging'
    block, _, name = rest.partition('.')
    for old, new in _BLOCK_RENAMES:
        if name.startswith(old):
            kind = 'index' if 'relative_position_index' in old else ''
            return f'stages.{(index - 1) // 2}.blocks.{block}.{new}{name[len(old):]}', kind
    if name.startswith(_NORMS):
        return f'stages.{(index - 1) // 2}.blocks.{block}.{name}', ''
    raise ValueError(f'Cannot place released key {key!r} in the mmpretrain layout.')


def _mm_key_to_released(key: str, last_stage: int) -> Tuple[str, str]:
    if key.startswith('patch_embed.projection.'):
        return 'features.0.0.' + key[len('patch_embed.projection.'):], ''
    if key.startswith('patch_embed.norm.'):
        return 'features.0.2.' + key[len('patch_embed.norm.'):], ''
    if key.startswith(f'norm{last_stage}.'):
        return 'norm.' + key[len(f'norm{last_stage}.'):], ''
    m = re.match(r'stages\.(\d+)\.downsample\.(.*)$', key)
    if m:
        return f'features.{2 * int(m.group(1)) + 2}.{m.group(2)}', 'merging'
    m = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if m is None:
        raise ValueError(f'Cannot place mmpretrain backbone key {key!r} in the released layout (a classifier has '
                         f'one output norm, norm{last_stage}; detection out-norms have no released counterpart).')
    prefix, name = f'features.{2 * int(m.group(1)) + 1}.{m.group(2)}.', m.group(3)
    for old, new in _BLOCK_RENAMES:
        if name.startswith(new):
            kind = 'index' if 'relative_position_index' in new else ''
            return prefix + old + name[len(new):], kind
    if name.startswith(_NORMS):
        return prefix + name, ''
    raise ValueError(f'Cannot place mmpretrain backbone key {key!r} in the released layout.')


def _released_to_mm(state_dict: Mapping[str, torch.Tensor], keep_head: bool) -> 'OrderedDict[str, torch.Tensor]':
    last = _last_stage(state_dict)
    out = OrderedDict()
    for key, value in state_dict.items():  # key order kept, so a round trip gives back the same sequence
        if key.startswith('head.'):
            if keep_head:
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


def released_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) Swin classifier -> mmpretrain ImageClassifier with a SwinTransformerADN."""
    _expect(state_dict, ('released', 'torchvision'))
    return _released_to_mm(state_dict, keep_head=True)


def mmpretrain_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain ImageClassifier (SwinTransformerADN, linear head) -> the released layout."""
    _expect(state_dict, ('mmpretrain', ))
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


def released_to_mmdet(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) classifier -> detector backbone weights; ``head`` is dropped. The detection
    out-norms of the other stages (``norm0..2``) are not in a classifier and start from their init."""
    _expect(state_dict, ('released', 'torchvision'))
    return _released_to_mm(state_dict, keep_head=False)


def convert(state_dict: Mapping[str, torch.Tensor], to: str) -> 'OrderedDict[str, torch.Tensor]':
    """Convert a Swin(-ADN) state dict of the released / torchvision / mmpretrain layout into layout ``to``
    ('released', 'mmpretrain' or 'mmdet')."""
    source = detect_layout(state_dict)
    if to not in ('released', 'mmpretrain', 'mmdet'):
        raise ValueError(f"Unknown target layout {to!r}; choose 'released', 'mmpretrain' or 'mmdet'.")
    if source == 'mmdet':
        raise ValueError('A detector checkpoint holds no classifier and carries detection out-norms; convert the '
                         'ImageNet classifier instead.')
    released = state_dict if source in ('released', 'torchvision') else mmpretrain_to_released(state_dict)
    if to == 'mmpretrain':
        return released_to_mmpretrain(released)
    if to == 'mmdet':
        return released_to_mmdet(released)
    return OrderedDict(released)


def _expect(state_dict, layouts) -> None:
    found = detect_layout(state_dict)
    if found not in layouts:
        raise ValueError(f'Expected a checkpoint in the {" or ".join(layouts)} layout, got {found}.')
