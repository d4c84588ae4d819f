"""Building the deployable form of a sub-network (``AdaptiveDepthMixin.to_static``) from its exported config.

The config names a registered upstream network (mmpretrain's ``SwinTransformer``, the backbones' ``StaticResNet``,
...): the registry resolves it, so this floor never imports the backbones that register those classes.
"""
from typing import Dict

from mmcv.cnn import fuse_conv_bn
from mmpretrain.registry import MODELS
from torch import nn


class FoldableNorms:
    """Mixin of a static network whose BatchNorms fold into their convolutions: ``fused=True`` (convs gain a bias,
    norms become identities) is the layout of a checkpoint exported with ``fuse=True``."""

    def fold_norms(self, fused: bool) -> None:
        self.fused = fused
        if fused:
            fuse_conv_bn(self)

    def train(self, mode: bool = True):
        super().train(mode)
        return self  # the upstream's returns None; nn.Module.train returns self


def build_static_backbone(cfg: dict, state_dict: Dict) -> nn.Module:
    """Build ``cfg`` (unfused) and load ``state_dict`` into it strictly, then fold its norms if ``cfg['fused']``:
    the exported config is proven to rebuild the exported weights."""
    cfg = dict(cfg)
    fused = cfg.pop('fused', False)
    static = MODELS.build(cfg)
    static.load_state_dict(state_dict, strict=True)
    if fused:
        if not isinstance(static, FoldableNorms):
            raise ValueError(f'{type(static).__name__} cannot fold its norms: export it with fuse=False, or give '
                             'its static class the FoldableNorms mixin.')
        static.eval()
        static.fold_norms(True)
    return static
