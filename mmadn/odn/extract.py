"""Extract the optimal network (stem, blocks 1..d, head d) as a standalone mmpretrain classifier.

The public code only evaluates the full model at depth d; here the deeper blocks and the other heads are
dropped, so what is shipped is an ordinary ``ImageClassifier`` (``ODNResNet(num_levels=d)``, global pooling,
the level-d head) whose config and state dict are pure functions of the trained ones.
"""
import copy
import re
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import nn

from mmadn.analysis import count_flops
from .resnet_cifar import blocks_up_to

_BLOCK_KEY = re.compile(r'^backbone\.layer(\d+)\.(\d+)\.')
_HEAD_KEY = re.compile(r'^head\.heads\.(\d+)\.(.*)$')


def _plain(cfg) -> dict:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else copy.deepcopy(dict(cfg))


def extracted_model_cfg(model_cfg: dict, level: int) -> dict:
    """The config of the standalone classifier of depth ``level`` built from an ``ODNClassifier`` config."""
    cfg = _plain(model_cfg)
    if cfg.get('type') != 'ODNClassifier':
        raise ValueError(f'expected the config of an ODNClassifier (model.type), got {cfg.get("type")!r}')
    backbone = dict(cfg['backbone'])
    if backbone.get('type') != 'ODNResNet':
        raise ValueError(f'extraction supports an ODNResNet backbone, got {backbone.get("type")!r}')
    backbone['num_levels'] = level
    width = MODELS.build(backbone).level_channels[-1]
    head = dict(cfg['head'].get('head', dict(type='LinearClsHead')))
    head['in_channels'] = width
    extracted = dict(type='ImageClassifier', backbone=backbone, neck=cfg.get('neck', dict(type='GlobalAveragePooling')),
                     head=head)
    for key in ('data_preprocessor', 'train_cfg'):
        if cfg.get(key) is not None:
            extracted[key] = cfg[key]
    return extracted


def extract_state_dict(state_dict: Dict[str, torch.Tensor], stage_blocks: Sequence[int],
                       level: int) -> 'OrderedDict[str, torch.Tensor]':
    """Keep the stem, blocks 1..level and head ``level`` (renamed to ``head.*``) of an ODNClassifier state dict.

    ``stage_blocks`` is the architecture's blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    """
    kept = blocks_up_to(stage_blocks, level)
    out = OrderedDict()
    found_head = False
    for key, value in state_dict.items():
        block = _BLOCK_KEY.match(key)
        head = _HEAD_KEY.match(key)
        if block:
            stage, index = int(block.group(1)) - 1, int(block.group(2))
            if stage < len(kept) and index < kept[stage]:
                out[key] = value
        elif head:
            if int(head.group(1)) == level - 1:
                out[f'head.{head.group(2)}'] = value
                found_head = True
        else:
            out[key] = value
    if not found_head:
        raise KeyError(f'no head.heads.{level - 1}.* in the state dict: is it an ODNClassifier checkpoint?')
    return out


def extract(model_cfg: dict, state_dict: Dict[str, torch.Tensor], level: int) -> Tuple[dict, OrderedDict]:
    """Config and state dict of the depth-``level`` classifier of a trained ODNClassifier."""
    cfg = extracted_model_cfg(model_cfg, level)
    stage_blocks = MODELS.get(cfg['backbone']['type']).arch_settings[cfg['backbone']['depth']][1]
    return cfg, extract_state_dict(state_dict, stage_blocks, level)


def model_stats(model: nn.Module, input_shape: Sequence[int]) -> dict:
    """Parameters, FLOPs (mmengine's count: one per multiply-accumulate) and weight memory of ``model``."""
    params = sum(p.numel() for p in model.parameters())
    memory = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        flops = count_flops(model, model, torch.zeros(1, *input_shape))
    model.train(was_training)
    return dict(params=params, flops=flops, memory_bytes=memory)
