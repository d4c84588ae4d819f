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
_MM_BLOCK = r'backbone\.layers\.(\d+)\.'

# (released pattern, mmpretrain replacement); the first match wins
_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'conv_proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    (r'class_token', r'backbone.cls_token'),
    (r'encoder\.pos_embedding', r'backbone.pos_embed'),
    (r'encoder\.ln\.(weight|bias)', r'backbone.ln1.\1'),
    (_BLOCK + r'ln_([12])(_skip)?\.(weight|bias)', r'backbone.layers.\1.ln\2\3.\4'),
    (_BLOCK + r'self_attention\.in_proj_(weight|bias)', r'backbone.layers.\1.attn.qkv.\2'),
    (_BLOCK + r'self_attention\.out_proj\.(weight|bias)', r'backbone.layers.\1.attn.proj.\2'),
    (_BLOCK + r'mlp\.(?:0|linear_1)\.(weight|bias)', r'backbone.layers.\1.ffn.layers.0.0.\2'),
    (_BLOCK + r'mlp\.(?:3|linear_2)\.(weight|bias)', r'backbone.layers.\1.ffn.layers.1.\2'),
    (r'heads\.(head|pre_logits)\.(weight|bias)', r'head.layers.\1.\2'),
]

_TO_RELEASED: List[Tuple[str, str]] = [
    (r'backbone\.patch_embed\.projection\.(weight|bias)', r'conv_proj.\1'),
    (r'backbone\.cls_token', r'class_token'),
    (r'backbone\.pos_embed', r'encoder.pos_embedding'),
    (r'backbone\.ln1\.(weight|bias)', r'encoder.ln.\1'),
    (_MM_BLOCK + r'ln([12])(_skip)?\.(weight|bias)', r'encoder.layers.encoder_layer_\1.ln_\2\3.\4'),
    (_MM_BLOCK + r'attn\.qkv\.(weight|bias)', r'encoder.layers.encoder_layer_\1.self_attention.in_proj_\2'),
    (_MM_BLOCK + r'attn\.proj\.(weight|bias)', r'encoder.layers.encoder_layer_\1.self_attention.out_proj.\2'),
    (_MM_BLOCK + r'ffn\.layers\.0\.0\.(weight|bias)', r'encoder.layers.encoder_layer_\1.mlp.0.\2'),
    (_MM_BLOCK + r'ffn\.layers\.1\.(weight|bias)', r'encoder.layers.encoder_layer_\1.mlp.3.\2'),
    (r'head\.layers\.(head|pre_logits)\.(weight|bias)', r'heads.\1.\2'),
]


def _rename(state_dict: Mapping[str, torch.Tensor], rules: List[Tuple[str, str]],
            target: str) -> 'OrderedDict[str, torch.Tensor]':
    compiled = [(re.compile(pattern + r'\Z'), repl) for pattern, repl in rules]
    out: Dict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in compiled:
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
