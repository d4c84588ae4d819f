"""The deployable form of one ADN sub-network (``AdaptiveDepthMixin.to_static``): the upstream network with the
blocks that sub-network runs. Nothing is switchable: skipped blocks are gone and each norm is the one the exported
sub-network used. Swin and ViT export to mmpretrain's own classes (their arch takes per-stage depths); ResNet and
MobileNetV2 take their blocks per stage from a table, hence the two classes here.
"""
from typing import Dict, Sequence

from mmcv.cnn import fuse_conv_bn
from mmdet.models.backbones.resnet import ResNet
from mmpretrain.models.backbones import MobileNetV2
from mmpretrain.registry import MODELS
from torch import nn

from mmadn.registry import register_model


class _Foldable:
    """``fused=True``: every BatchNorm folded into its convolution (convs gain a bias, norms become identities),
    the layout of a checkpoint exported with ``fuse=True``."""

    def _fold_norms(self, fused: bool) -> None:
        self.fused = fused
        if fused:
            fuse_conv_bn(self)

    def train(self, mode: bool = True):
        super().train(mode)
        return self  # the upstream's returns None; nn.Module.train returns self


@register_model
class StaticResNet(_Foldable, ResNet):
    """mmdet's ResNet with explicit blocks per stage (``stage_blocks``), e.g. ``(2, 2, 3, 2)`` for the base-net
    of ResNet-50-ADN."""

    def __init__(self, depth: int, stage_blocks: Sequence[int], fused: bool = False, **kwargs) -> None:
        if len(stage_blocks) != kwargs.get('num_stages', 4):
            raise ValueError(f'stage_blocks needs one entry per stage, got {tuple(stage_blocks)}')
        self.arch_settings = {depth: (self.arch_settings[depth][0], tuple(stage_blocks))}  # this instance's table
        super().__init__(depth, **kwargs)
        self._fold_norms(fused)


@register_model
class StaticMobileNetV2(_Foldable, MobileNetV2):
    """mmpretrain's MobileNetV2 with explicit inverted-residual blocks per stage (``stage_blocks``, 7 entries)."""

    def __init__(self, stage_blocks: Sequence[int], fused: bool = False, **kwargs) -> None:
        if len(stage_blocks) != len(self.arch_settings):
            raise ValueError(f'stage_blocks needs {len(self.arch_settings)} entries, got {tuple(stage_blocks)}')
        self.arch_settings = [[t, c, n, s] for (t, c, _, s), n in zip(self.arch_settings, stage_blocks)]
        super().__init__(**kwargs)
        self._fold_norms(fused)


def build_static_backbone(cfg: dict, state_dict: Dict) -> nn.Module:
    """Build ``cfg`` (unfused) and load ``state_dict`` into it strictly, then fold its norms if ``cfg['fused']``:
    the exported config is proven to rebuild the exported weights."""
    cfg = dict(cfg)
    fused = cfg.pop('fused', False)
    static = MODELS.build(cfg)
    static.load_state_dict(state_dict, strict=True)
    if fused:
        static.eval()
        static._fold_norms(True)
    return static
