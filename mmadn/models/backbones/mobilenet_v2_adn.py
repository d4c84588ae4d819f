"""MobileNetV2 with skippable sub-paths and skip-aware normalization (ADN spec sections 3-4).

``MobileNetV2ADN`` is mmpretrain's ``MobileNetV2`` with one flag per stage of at least two inverted-residual
blocks (5 flags at every width): the first ``ceil(n / 2)`` blocks of such a stage always run, the rest are
skipped when its flag is ``T``. As in the authors' release, every conv-norm-act unit that is not skippable has a
twin norm (``bn_skip`` beside ConvModule's ``bn``) used while its flag is ``T``: the mandatory blocks of each
skippable stage, plus the stem conv and the 16-channel block (they follow flag 0) and the 320-channel block and
the last 1x1 conv (they follow the last flag). Parameter names are mmpretrain's, so a plain mmpretrain
MobileNetV2 checkpoint loads; the twins it lacks are filled from the shared norms. See
``mobilenet_v2_adn_layouts`` for the released (torchvision-based) checkpoint layout.
"""
from typing import List, Sequence, Tuple

from mmcv.cnn import ConvModule
from mmpretrain.models.backbones import MobileNetV2
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import AdaptiveDepthMixin, SkipType
from ..utils.skippable import SkippableStage, num_mandatory_blocks, switchable_norms
from ..utils.twin_norm_loading import TwinNormLoadHook
from .mobilenet_v2_adn_layouts import MOBILENET_V2_LAYOUTS


def _unit_norms(part: nn.Module) -> List[Tuple[nn.Module, str]]:
    """The switchable norms of a block or conv: mmcv's ConvModule reads its norm through ``norm_name``."""
    return [(unit, 'norm_name') for unit in part.modules() if isinstance(unit, ConvModule) and unit.with_norm]


class ADNInvertedResidualStage(SkippableStage, nn.Sequential):
    """A stage of inverted-residual blocks as a ``SkippableStage`` (a single block cannot be split: such a stage
    is not skippable). A plain ``nn.Sequential`` in the state dict (``layerS.B.*``), so checkpoint names do not
    change."""

    def __init__(self, *blocks: nn.Module, num_mandatory: int, block_names: Sequence[str]) -> None:
        super().__init__(*blocks)
        self.setup_skippable(num_mandatory, block_names, _unit_norms)


@register_model
class MobileNetV2ADN(AdaptiveDepthMixin, MobileNetV2):
    """MobileNetV2 backbone of an adaptive depth network: 2^5 sub-networks in one set of weights.

    Args:
        skip (str | Sequence[bool]): the active sub-network: a T/F string with one flag per skippable stage
            (the 24-, 32-, 64-, 96- and 160-channel stages, e.g. ``'TTFFF'``), a sequence of bools,
            ``'super'`` (default) or ``'base'``. The authors' release runs the base-net when it is given no
            flags; here the default is the super-net, as for every mmadn backbone. Change it at any time with
            ``backbone.skip = ...`` or temporarily with ``with backbone.switch(...)``.
        **kwargs: every argument of mmpretrain's ``MobileNetV2`` (``widen_factor``, ``out_indices``, ...).
    """

    checkpoint_layouts = MOBILENET_V2_LAYOUTS
    load_hook = TwinNormLoadHook(probe='layer2.0.conv.0.conv.weight', family='MobileNetV2')

    def __init__(self, skip: SkipType = 'super', **kwargs) -> None:
        num_flags = sum(1 for _, _, num_blocks, _ in self.arch_settings if num_blocks >= 2)  # stages that split
        flags = self._begin_adaptive_depth(skip, num_flags, kwargs)
        super().__init__(**kwargs)
        # the stages, and the norms outside a skippable stage (each follows the flag of a neighbouring stage)
        stages, followers = [], []
        for name, flag in self._stage_flags():
            module = getattr(self, name)
            if isinstance(module, ADNInvertedResidualStage):
                stages.append((module, flag))
            if not getattr(module, 'is_skippable', False):
                followers += [(slot, flag) for slot in switchable_norms([module], _unit_norms)]
        self._setup_adaptive_depth(flags, stages, followers)

    def make_layer(self, out_channels, num_blocks, stride, expand_ratio) -> nn.Sequential:
        stage = super().make_layer(out_channels, num_blocks, stride, expand_ratio)
        name = f'layer{len(self.layers) + 1}'  # mmpretrain names the stage after it is made
        return ADNInvertedResidualStage(*stage, num_mandatory=num_mandatory_blocks(num_blocks),
                                        block_names=[f'{name}.{i}' for i in range(num_blocks)])

    def _stage_flags(self) -> List[Tuple[str, int]]:
        """``(name, flag)`` for the stem, every stage and the last conv, in order. A stage that cannot skip follows
        the flag of the nearest skippable stage before it (flag 0 for those before the first), as released."""
        out, flag, seen_skippable = [('conv1', 0)], 0, False
        for name in self.layers[:-1]:  # layer1 .. layer7
            if getattr(self, name).is_skippable:
                flag += seen_skippable
                seen_skippable = True
            out.append((name, flag))
        out.append((self.layers[-1], flag))  # conv2
        return out

    def stage_module_names(self) -> List[str]:
        """The skippable stages (one per flag); the last is covered by the logits in distillation."""
        return [name for name in self.layers[:-1] if getattr(self, name).is_skippable]

    def static_config(self, blocks_per_stage: Sequence[int]) -> dict:
        return dict(type='StaticMobileNetV2', **{**self._upstream_args, 'init_cfg': None},
                    stage_blocks=tuple(blocks_per_stage))
