"""Checkpoint layouts of ViT(-ADN) and pure functions between them.

Layouts (what a state dict looks like):
- ``released``: the ADN authors' release, built on torchvision's ``vit_b_16`` / ``vit_b_32``: ``conv_proj``,
  ``class_token``, ``encoder.pos_embedding``, ``encoder.layers.encoder_layer_{i}.{ln_1, self_attention, ln_2,
  mlp.0, mlp.3}``, ``encoder.ln``, ``heads.head``, and twins ``ln_1_skip`` / ``ln_2_skip`` in the mandatory
  blocks (all but the last of each group of 3: 0, 1, 3, 4, 6, 7, 9, 10), after each block's other keys. A plain
  torchvision ViT is the same layout without twins (``torchvision``); converting it to ``released`` adds them
  as copies. Checkpoints of torchvision < 0.13 name the MLP ``mlp.linear_1`` / ``mlp.linear_2``; they are read too.
- ``mmpretrain``: an ``ImageClassifier`` with a ``VisionTransformerADN`` backbone (or a plain
  ``VisionTransformer``) and a ``VisionTransformerClsHead``.

Every conversion is a renaming (torchvision's packed ``in_proj_weight`` is ordered q, k, v with heads
contiguous, exactly like mmpretrain's ``attn.qkv``), so a round trip is exact to the bit.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

from ..utils.backbone_handoff import classifier_backbone_state
from ..utils.checkpoint_layout import CheckpointLayout, CheckpointLayouts, has_twins

_BLOCK = r'encoder\.layers\.encoder_layer_(\d+)\.'

# One name in both layouts per row: (released, mmpretrain[, older released names read too]). ``{i}`` is the block,
# ``{p}`` weight / bias, ``{n}`` 1 / 2, ``{twin}`` the twin suffix or nothing, ``{head}`` head / pre_logits.
_NAMES: List[Tuple[str, ...]] = [
    ('conv_proj.{p}', 'backbone.patch_embed.projection.{p}'),
    ('class_token', 'backbone.cls_token'),
    ('encoder.pos_embedding', 'backbone.pos_embed'),
    ('encoder.ln.{p}', 'backbone.ln1.{p}'),
    ('encoder.layers.encoder_layer_{i}.ln_{n}{twin}.{p}', 'backbone.layers.{i}.ln{n}{twin}.{p}'),
    ('encoder.layers.encoder_layer_{i}.self_attention.in_proj_{p}', 'backbone.layers.{i}.attn.qkv.{p}'),
    ('encoder.layers.encoder_layer_{i}.self_attention.out_proj.{p}', 'backbone.layers.{i}.attn.proj.{p}'),
    ('encoder.layers.encoder_layer_{i}.mlp.0.{p}', 'backbone.layers.{i}.ffn.layers.0.0.{p}',
     'encoder.layers.encoder_layer_{i}.mlp.linear_1.{p}'),
    ('encoder.layers.encoder_layer_{i}.mlp.3.{p}', 'backbone.layers.{i}.ffn.layers.1.{p}',
     'encoder.layers.encoder_layer_{i}.mlp.linear_2.{p}'),
    ('heads.{head}.{p}', 'head.layers.{head}.{p}'),
]
_FIELDS = {'i': r'\d+', 'p': 'weight|bias', 'n': '[12]', 'twin': '(?:_skip)?', 'head': 'head|pre_logits'}


def _rule(source: str, target: str) -> Tuple[re.Pattern, str]:
    """A name template as (pattern, replacement): ``{field}`` becomes a named group and its back-reference."""
    parts = re.split(r'\{(\w+)\}', source)  # literal, field, literal, ...
    pattern = ''.join(f'(?P<{part}>{_FIELDS[part]})' if k % 2 else re.escape(part) for k, part in enumerate(parts))
    return re.compile(pattern + r'\Z'), re.sub(r'\{(\w+)\}', r'\\g<\1>', target)


# the first match wins
_TO_MMPRETRAIN = [_rule(source, names[1]) for names in _NAMES for source in (names[0], *names[2:])]
_TO_RELEASED = [_rule(names[1], names[0]) for names in _NAMES]


def _rename(state_dict: Mapping[str, torch.Tensor], rules: List[Tuple[re.Pattern, str]],
            target: str) -> 'OrderedDict[str, torch.Tensor]':
    out: Dict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if pattern.match(key):
                new_key = pattern.sub(repl, key)
                break
        else:
            raise ValueError(f'Cannot place {key!r} in the {target} layout of ViT-ADN (a conv stem, layer scale '
                             'or another head has no counterpart there).')
        if new_key in out:
            raise ValueError(f'Two keys map to {new_key!r} (e.g. both mlp.0 and mlp.linear_1 present).')
        out[new_key] = value
    return out


def released_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Released (or torchvision) ViT classifier -> mmpretrain ImageClassifier with a VisionTransformerADN
    backbone (``out_type='cls_token'``, ``final_norm=True``) and a ``VisionTransformerClsHead``."""
    VIT_LAYOUTS.expect(state_dict, 'released', 'torchvision')
    return _rename(state_dict, _TO_MMPRETRAIN, 'mmpretrain')


def mmpretrain_to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain ImageClassifier (VisionTransformerADN backbone, ViT head) -> the released layout
    (torchvision >= 0.13 names: ``mlp.0`` / ``mlp.3``)."""
    VIT_LAYOUTS.expect(state_dict, 'mmpretrain')
    return _rename(state_dict, _TO_RELEASED, 'released')


def released_mandatory_blocks(num_layers: int, blocks_per_group: int = 3) -> List[int]:
    """The encoder blocks that have twins in the release: all but the last of each group of ``blocks_per_group``
    (a trailing group of one block has nothing to skip, as in VisionTransformerADN)."""
    groups = [range(g, min(g + blocks_per_group, num_layers)) for g in range(0, num_layers, blocks_per_group)]
    return [i for group in groups if len(group) >= 2 for i in group[:-1]]


def _to_released(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain -> released; a checkpoint without twins (torchvision's) gets ``ln_1_skip`` / ``ln_2_skip`` in
    every mandatory block as copies of its LayerNorms, after the block's last key (the release's order)."""
    released = mmpretrain_to_released(state_dict)
    if has_twins(released):
        return released
    blocks = {int(m.group(1)) for k in released for m in [re.match(_BLOCK, k)] if m}
    mandatory = set(released_mandatory_blocks(max(blocks) + 1)) if blocks else set()
    out, items = OrderedDict(), list(released.items())
    for position, (key, value) in enumerate(items):
        out[key] = value
        m = re.match(_BLOCK, key)
        following = items[position + 1][0] if position + 1 < len(items) else ''
        if m and int(m.group(1)) in mandatory and not following.startswith(m.group(0)):
            for norm in ('ln_1', 'ln_2'):
                for leaf in ('weight', 'bias'):
                    out[f'{m.group(0)}{norm}_skip.{leaf}'] = released[f'{m.group(0)}{norm}.{leaf}'].clone()
    return out


VIT_LAYOUTS = CheckpointLayouts('vit', 'ViT', hub='mmpretrain', layouts=(
    CheckpointLayout('released', ('conv_proj.weight', ), released_to_mmpretrain, _to_released, twins=True),
    CheckpointLayout('torchvision', ('conv_proj.weight', ), released_to_mmpretrain),
    # not the patch embedding, which an mmpretrain Swin has too
    CheckpointLayout('mmpretrain', ('backbone.layers.0.attn.qkv.weight', )),
    CheckpointLayout('mmdet', from_hub=classifier_backbone_state),  # a detector's backbone: a target only
))
detect_layout, convert = VIT_LAYOUTS.detect, VIT_LAYOUTS.convert
