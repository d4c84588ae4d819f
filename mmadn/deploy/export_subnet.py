"""Turn one sub-network of an ADN model into a static model for deployment (``AdaptiveDepthMixin.to_static``).

The exported backbone is the upstream network (mmdet / mmpretrain) holding only the blocks that sub-network runs,
with each norm taken from the set it used (a twin becomes the block's ordinary norm); optionally the BatchNorms
are folded into the convolutions. Its outputs equal the adaptive model's in that configuration.
"""
import copy
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from torch import nn

from mmadn.engine import remove_distill_hook
from mmadn.models.utils import adaptive_backbones


def export_backbone(backbone: nn.Module, fuse: bool = False) -> Tuple[dict, nn.Module]:
    """The active sub-network of an ADN ``backbone`` as a static backbone, and the config that builds it."""
    if not hasattr(backbone, 'to_static'):
        raise TypeError(f'{type(backbone).__name__} is not an ADN backbone: nothing to export.')
    return backbone.to_static(fuse=fuse)


def export_model(model: nn.Module, cfg: Config, fuse: bool = False) -> Tuple[Config, Dict[str, torch.Tensor]]:
    """Export the active sub-network of a whole detector / classifier: a config and a state dict for it."""
    backbones = adaptive_backbones(model)
    if len(backbones) != 1 or getattr(model, 'backbone', None) is not backbones[0]:
        raise TypeError('export_model expects a model whose backbone (and only it) is adaptive.')
    backbone_cfg, static = export_backbone(model.backbone, fuse=fuse)
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone = Config(backbone_cfg).to_dict()
    remove_distill_hook(cfg)
    state = OrderedDict(('backbone.' + k, v) for k, v in static.state_dict().items())
    for key, value in model.state_dict().items():
        if not key.startswith('backbone.'):
            state[key] = value
    return cfg, state
