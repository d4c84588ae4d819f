"""The deployable form of one ADN sub-network (``AdaptiveDepthMixin.to_static``): the upstream network with the
blocks that sub-network runs. Nothing is switchable: skipped blocks are gone and each norm is the one the exported
sub-network used. Swin and ViT export to mmpretrain's own classes (their arch takes per-stage depths); ResNet and
MobileNetV2 take their blocks per stage from a table, hence the two classes here.
"""
from typing import Sequence

from mmdet.models.backbones.resnet import ResNet
from mmpretrain.models.backbones import MobileNetV2

from mmadn.registry import register_model
from ..utils.static_export import FoldableNorms


@register_model
class StaticResNet(FoldableNorms, ResNet):
    """mmdet's ResNet with explicit blocks per stage (``stage_blocks``), e.g. ``(2, 2, 3, 2)`` for the base-net
    of ResNet-50-ADN."""

    def __init__(self, depth: int, stage_blocks: Sequence[int], fused: bool = False, **kwargs) -> None:
        if len(stage_blocks) != kwargs.get('num_stages', 4):
            raise ValueError(f'stage_blocks needs one entry per stage, got {tuple(stage_blocks)}')
        self.arch_settings = {depth: (self.arch_settings[depth][0], tuple(stage_blocks))}  # this instance's table
        super().__init__(depth, **kwargs)
        self.fold_norms(fused)


@register_model
class StaticMobileNetV2(FoldableNorms, MobileNetV2):
    """mmpretrain's MobileNetV2 with explicit inverted-residual blocks per stage (``stage_blocks``, 7 entries)."""

    def __init__(self, stage_blocks: Sequence[int], fused: bool = False, **kwargs) -> None:
        if len(stage_blocks) != len(self.arch_settings):
            raise ValueError(f'stage_blocks needs {len(self.arch_settings)} entries, got {tuple(stage_blocks)}')
        self.arch_settings = [[t, c, n, s] for (t, c, _, s), n in zip(self.arch_settings, stage_blocks)]
        super().__init__(**kwargs)
        self.fold_norms(fused)

