"""Turn one sub-network of an ADN model into a static model for deployment.

The exported backbone is a ``StaticResNet`` holding only the blocks that sub-network runs, with each norm taken
from the set it used (a twin becomes the block's ordinary ``bnK``); optionally the norms are folded into the
convolutions. Its outputs equal the adaptive model's in that configuration.
"""
import copy
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmcv.cnn import fuse_conv_bn
from mmengine.config import Config
from torch import nn

from mmadn.models.backbones.resnet_adn import ResNetADN
from mmadn.models.utils.adaptive_depth import TWIN_SUFFIX
from mmadn.models.backbones.static_resnet import StaticResNet
from mmadn.models.utils import adaptive_backbones

# arguments the exported StaticResNet (mmdet's ResNet) does not take; drop path only acts in training
_ADN_ONLY_ARGS = ('type', 'skip', 'mandatory_blocks', 'train_twin_stats', 'drop_path_rate', 'init_cfg', 'pretrained')


def _static_state_dict(backbone: ResNetADN) -> 'OrderedDict[str, torch.Tensor]':
    """The active sub-network's tensors under a plain ResNet's names."""
    out = OrderedDict()
    active = set(backbone.active_blocks())
    twins_in_use = {}
    for layer_name, stage in zip(backbone.res_layers, backbone.stages):
        if stage.skip:
            for twin, shared in stage.twin_norm_names():
                twins_in_use[f'{layer_name}.{shared}.'] = f'{layer_name}.{twin}.'
    state = backbone.state_dict()
    for key, value in state.items():
        parts = key.split('.')
        if parts[0] in backbone.res_layers:
            if f'{parts[0]}.{parts[1]}' not in active or parts[2].endswith(TWIN_SUFFIX):
                continue
            prefix = '.'.join(parts[:3]) + '.'
            if prefix in twins_in_use:
                value = state[twins_in_use[prefix] + '.'.join(parts[3:])]
        out[key] = value
    return out


def export_backbone(backbone: ResNetADN, fuse: bool = False) -> Tuple[dict, StaticResNet]:
    """The active sub-network of ``backbone`` as a ``StaticResNet`` (and the config that builds it)."""
    if not isinstance(backbone, ResNetADN):
        raise TypeError(f'Only ResNetADN backbones can be exported for now, got {type(backbone).__name__}.')
    stage_blocks = tuple(sum(1 for name in backbone.active_blocks() if name.startswith(f'{layer}.'))
                         for layer in backbone.res_layers)
    cfg = dict(type='StaticResNet', depth=backbone.depth, stage_blocks=stage_blocks, num_stages=backbone.num_stages,
               strides=backbone.strides, dilations=backbone.dilations, out_indices=backbone.out_indices,
               style=backbone.style, deep_stem=backbone.deep_stem, avg_down=backbone.avg_down,
               frozen_stages=backbone.frozen_stages, conv_cfg=backbone.conv_cfg, norm_cfg=backbone.norm_cfg,
               norm_eval=backbone.norm_eval, in_channels=backbone.conv1.in_channels if not backbone.deep_stem
               else backbone.stem[0].in_channels, stem_channels=backbone.stem_channels,
               base_channels=backbone.base_channels)
    static = StaticResNet(**{k: v for k, v in cfg.items() if k != 'type'})
    static.load_state_dict(_static_state_dict(backbone), strict=True)
    static.train(backbone.training)
    if fuse:
        static.eval()
        fuse_conv_bn(static)
        static.fused = True
        cfg['fused'] = True
    return cfg, static


def export_model(model: nn.Module, cfg: Config, fuse: bool = False) -> Tuple[Config, Dict[str, torch.Tensor]]:
    """Export the active sub-network of a whole detector / classifier: a config and a state dict for it."""
    backbones = adaptive_backbones(model)
    if len(backbones) != 1 or getattr(model, 'backbone', None) is not backbones[0]:
        raise TypeError('export_model expects a model whose backbone (and only it) is adaptive.')
    backbone_cfg, static = export_backbone(model.backbone, fuse=fuse)
    cfg = copy.deepcopy(cfg)
    kept = {k: v for k, v in cfg.model.backbone.items() if k not in _ADN_ONLY_ARGS and k not in backbone_cfg}
    cfg.model.backbone = Config(dict(**kept, **backbone_cfg)).to_dict()
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ADNDistillHook']
    state = OrderedDict(('backbone.' + k, v) for k, v in static.state_dict().items())
    for key, value in model.state_dict().items():
        if not key.startswith('backbone.'):
            state[key] = value
    return cfg, state
