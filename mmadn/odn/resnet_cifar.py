"""CIFAR-style ResNet whose forward can stop after any residual block (ODN spec, "Model").

One *depth level* is one residual block, counted across stages: ResNet-18 has 8 levels, ResNet-34 and ResNet-50
16. ``num_levels`` builds only the first blocks, which is how an extracted ODN model is stored: the blocks after
it do not exist. Module names are mmpretrain's ``ResNet_CIFAR`` (``conv1``, ``bn1``, ``layerS.B.*``), so weights
line up with it in both directions.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck, ResLayer, get_expansion
from torch import nn

from mmadn.models.utils.norm_eval import batch_norms_to_eval
from mmadn.registry import register_model


def blocks_up_to(stage_blocks: Sequence[int], level: int) -> Tuple[int, ...]:
    """Blocks kept in each stage when only the first ``level`` blocks run, e.g. ``(3, 4, 6, 3), 5 -> (3, 2)``."""
    total = sum(stage_blocks)
    if not 1 <= level <= total:
        raise ValueError(f'depth level must be in [1, {total}] (one level per residual block), got {level}')
    kept = []
    for num_blocks in stage_blocks:
        if level <= 0:
            break
        kept.append(min(num_blocks, level))
        level -= num_blocks
    return tuple(kept)


@register_model
class ODNResNet(BaseModule):
    """ResNet for small images (3x3 stride-1 stem, no max-pool) that can stop after any residual block.

    Args:
        depth (int): ResNet architecture: 18, 34 or 50.
        num_levels (int, optional): Build only the first ``num_levels`` residual blocks (an extracted model).
            Defaults to all blocks of the architecture.
        in_channels (int): Input image channels (1 for MNIST). Defaults to 3.
        stem_channels (int): Output channels of the stem. Defaults to 64.
        base_channels (int): Middle channels of the first stage; the stages double it. Defaults to 64.
        strides (Sequence[int]): Stride of the first block of each stage. Defaults to ``(1, 2, 2, 2)``.
        norm_eval (bool): Keep BN layers in eval mode while training. Defaults to False.
        zero_init_residual (bool): Zero-init the last norm of every block, so a new block starts as the
            identity. Defaults to False (the public code does not).
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
    }

    def __init__(self,
                 depth: int,
                 num_levels: Optional[int] = None,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 base_channels: int = 64,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 init_cfg=[
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'ODNResNet depth must be one of {sorted(self.arch_settings)}, got {depth}')
        self.depth = depth
        self.block, self.arch_stage_blocks = self.arch_settings[depth]
        if len(strides) != len(self.arch_stage_blocks):
            raise ValueError(f'strides needs one entry per stage ({len(self.arch_stage_blocks)}), got {strides}')
        self.arch_levels = sum(self.arch_stage_blocks)
        if num_levels is None:
            num_levels = self.arch_levels
        self.stage_blocks = blocks_up_to(self.arch_stage_blocks, num_levels)
        self.num_levels = num_levels
        self.expansion = get_expansion(self.block)
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual

        self._make_stem_layer(in_channels, stem_channels)
        self.res_layers = []
        level_channels = []
        _in_channels = stem_channels
        _out_channels = base_channels * self.expansion
        for i, num_blocks in enumerate(self.stage_blocks):
            res_layer = self.make_res_layer(
                block=self.block,
                num_blocks=num_blocks,
                in_channels=_in_channels,
                out_channels=_out_channels,
                expansion=self.expansion,
                stride=strides[i],
                with_cp=with_cp,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg)
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, res_layer)
            self.res_layers.append(layer_name)
            level_channels += [_out_channels] * num_blocks
            _in_channels = _out_channels
            _out_channels *= 2
        # output width of each level: the in_channels of that level's head
        self.level_channels = tuple(level_channels)

    def make_res_layer(self, **kwargs) -> nn.Module:
        return ResLayer(**kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        self.conv1 = build_conv_layer(
            self.conv_cfg, in_channels, stem_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def check_levels(self, levels) -> Tuple[int, ...]:
        """Sorted, de-duplicated levels, each in ``[1, num_levels]``; a clear error otherwise."""
        if isinstance(levels, int):
            levels = (levels, )
        levels = tuple(sorted(set(int(level) for level in levels)))
        if not levels or levels[0] < 1 or levels[-1] > self.num_levels:
            raise ValueError(f'depth levels must be in [1, {self.num_levels}] for this ResNet-{self.depth} '
                             f'with {self.num_levels} residual blocks, got {levels}')
        return levels

    def forward(self, x: torch.Tensor, levels=None) -> Tuple[torch.Tensor, ...]:
        """The feature map after each block of ``levels`` (default: the last built); stops at the deepest."""
        levels = self.check_levels(self.num_levels if levels is None else levels)
        x = self.relu(self.norm1(self.conv1(x)))
        outs = []
        level = 0
        for layer_name in self.res_layers:
            for block in getattr(self, layer_name):
                x = block(x)
                level += 1
                if level in levels:
                    outs.append(x)
                if level == levels[-1]:
                    return tuple(outs)
        raise AssertionError('unreachable: levels were checked against num_levels')

    def init_weights(self) -> None:
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            return
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    constant_init(m.norm3, 0)
                elif isinstance(m, BasicBlock):
                    constant_init(m.norm2, 0)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self
