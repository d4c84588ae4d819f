"""The deployable form of one ResNetADN sub-network: a plain ResNet with the blocks that sub-network runs."""
from typing import Sequence

from mmcv.cnn import fuse_conv_bn
from mmdet.models.backbones.resnet import ResNet

from mmadn.registry import register_model


@register_model
class StaticResNet(ResNet):
    """mmdet's ResNet with explicit blocks per stage (``stage_blocks``), e.g. ``(2, 2, 3, 2)`` for the base-net
    of ResNet-50-ADN. Nothing is switchable: skipped blocks are gone and each norm is the one the exported
    sub-network used. With ``fused=True`` every norm is folded into its convolution (convs gain a bias, norms
    become identities), the layout of a checkpoint exported with ``fuse=True``.
    """

    def __init__(self, depth: int, stage_blocks: Sequence[int], fused: bool = False, **kwargs) -> None:
        block = self.arch_settings[depth][0]
        if len(stage_blocks) != kwargs.get('num_stages', 4):
            raise ValueError(f'stage_blocks needs one entry per stage, got {tuple(stage_blocks)}')
        self.arch_settings = {depth: (block, tuple(stage_blocks))}  # this instance's own architecture table
        super().__init__(depth, **kwargs)
        self.fused = fused
        if fused:
            fuse_conv_bn(self)

    def train(self, mode: bool = True) -> 'StaticResNet':
        super().train(mode)
        return self  # mmdet's ResNet.train returns None; nn.Module.train returns self
