"""ResNet with skippable sub-paths and skip-aware normalization (ADN spec sections 2-4).

``ResNetADN`` is mmdet's ``ResNet`` with one more rule per stage: the first ``num_mandatory_blocks(n)`` blocks
always run, the rest are skipped when the stage's flag is ``T``. The norms of the mandatory blocks get a twin
(``bnK_skip``, the name used by the authors' release) that is used while the stage skips. Parameter names are
mmdet's (and torchvision's), so plain ResNet checkpoints line up; the twins they lack are filled from the shared
norms on load.
"""
import inspect
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn.bricks import DropPath
from mmdet.models.backbones.resnet import ResNet
from mmdet.models.layers import ResLayer
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import AdaptiveDepthMixin, SkipType
from ..utils.skippable import TWIN_SUFFIX, SkippableStage, num_mandatory_blocks
from ..utils.twin_norm_loading import TwinNormLoadHook
from .resnet_adn_layouts import RESNET_LAYOUTS, deep_stem_renames, pooled_shortcut_renames

__all__ = ['ResNetADN', 'ADNResLayer', 'num_mandatory_blocks']

_NORM_NAME_ATTRS = ('norm1_name', 'norm2_name', 'norm3_name')
_DROP_PATH_EPS = 1e-5  # mmpretrain's threshold below which a block gets no drop path


def _block_norms(block: nn.Module) -> List[Tuple[nn.Module, str]]:
    """A block's switchable norms: mmdet's blocks read them through ``normK_name``."""
    return [(block, attr) for attr in _NORM_NAME_ATTRS if hasattr(block, attr)]


class _ResidualDropPath:
    """Forward hook applying a block's ``drop_path`` to its last norm's output: mmdet's blocks have no place for
    it, and that output is exactly where mmpretrain's blocks apply it. An object, not a closure, so that a deep
    copy of the model hooks the copy's ``drop_path``."""

    def __init__(self, drop_path: nn.Module) -> None:
        self.drop_path = drop_path

    def __call__(self, module, inputs, output):
        return self.drop_path(output)


class ADNResLayer(SkippableStage, ResLayer):
    """mmdet's ResNet stage as a ``SkippableStage``: its blocks after the first ``num_mandatory`` can be skipped,
    and the norms of the others switch to their twins (``bnK_skip``) meanwhile."""

    def __init__(self,
                 *args,
                 num_mandatory: int,
                 block_names: Sequence[str],
                 drop_path_rates: Sequence[float] = (),
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setup_skippable(num_mandatory, block_names, _block_norms)
        for block, rate in zip(self, drop_path_rates):
            if rate > _DROP_PATH_EPS:
                self._add_drop_path(block, rate)

    @staticmethod
    def _add_drop_path(block: nn.Module, rate: float) -> None:
        """mmpretrain's stochastic depth: ``drop_path`` (parameter-free, as mmpretrain names it) on the output of
        the block's last norm, shared and twin, which is its residual branch just before the identity is added.
        """
        if getattr(block, 'after_conv3_plugin_names', None):
            raise ValueError('drop_path_rate cannot be combined with plugins after conv3: the residual branch '
                             'would be dropped before the plugin instead of at its end.')
        block.drop_path = DropPath(rate)
        hook = _ResidualDropPath(block.drop_path)
        last = getattr(block, 'norm3_name', None) or block.norm2_name
        for name in (last, last + TWIN_SUFFIX):
            if name in block._modules:
                block._modules[name].register_forward_hook(hook)


class _ResNetLoadHook(TwinNormLoadHook):
    """Also reads mmpretrain's ResNetV1c / V1d checkpoints, whose deep stem and pooled shortcuts are laid out
    differently from mmdet's."""

    def upgrade(self, module, state_dict, prefix, local_metadata) -> None:
        renames = deep_stem_renames(list(state_dict), prefix) if module.deep_stem else {}
        if module.avg_down:
            pooled = [f'{prefix}{layer}.{index}.' for layer, stage in zip(module.res_layers, module.stages)
                      for index, block in enumerate(stage)
                      if block.downsample is not None and isinstance(block.downsample[0], nn.AvgPool2d)]
            renames.update(pooled_shortcut_renames(list(state_dict), pooled))
        moved = {new: state_dict.pop(old) for old, new in renames.items()}  # all out first: targets overlap
        state_dict.update(moved)


@register_model
class ResNetADN(AdaptiveDepthMixin, ResNet):
    """ResNet backbone of an adaptive depth network: 2^num_stages sub-networks in one set of weights.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        skip (str | Sequence[bool]): the active sub-network: a T/F string with one flag per stage
            (``'TTFF'``), a sequence of bools, ``'super'`` (default) or ``'base'``. Can be changed at any
            time with ``backbone.skip = ...`` or temporarily with ``with backbone.switch(...)``.
        mandatory_blocks (Sequence[int], optional): blocks that always run, per stage. Defaults to the
            rule of the ADN paper, ``min(n - 1, ceil(n / 2))``.
        train_twin_stats (bool): with ``norm_eval=True``, keep updating the twins' running statistics (outside
            frozen stages) while the shared ones stay frozen. For detectors started from a plain ImageNet
            ResNet, whose twins start as copies of statistics the base-net does not have. Default False.
        drop_path_rate (float): stochastic depth of the blocks' residual branches, as in mmpretrain's ``ResNet``
            (rising linearly from 0 at the first block to this rate at the last). mmdet's ``ResNet`` has no such
            option. Default 0.
        *args, **kwargs: every argument of mmdet's ``ResNet``, in its order: ``ResNetADN(50, 3)`` is
            ``depth=50, in_channels=3``; the ADN arguments above are keyword-only.
    """

    checkpoint_layouts = RESNET_LAYOUTS
    load_hook = _ResNetLoadHook(probe='layer1.0.conv1.weight', family='ResNet')

    def __init__(self,
                 depth: int,
                 *args,
                 skip: SkipType = 'super',
                 mandatory_blocks: Optional[Sequence[int]] = None,
                 train_twin_stats: bool = False,
                 drop_path_rate: float = 0.0,
                 **kwargs) -> None:
        # mmdet's arguments, positional ones included, by name (a wrong one fails here as it would in mmdet)
        resnet_args = inspect.signature(ResNet.__init__).bind(self, depth, *args, **kwargs)
        resnet_args.apply_defaults()
        if not isinstance(resnet_args.arguments['in_channels'], int):
            raise TypeError(f'in_channels must be an int (the second positional argument, as in mmdet\'s ResNet), '
                            f'got {resnet_args.arguments["in_channels"]!r}; pass the sub-network as skip=...')
        num_stages = resnet_args.arguments['num_stages']
        flags = self._begin_adaptive_depth(skip, num_stages,
                                           {k: v for k, v in resnet_args.arguments.items() if k != 'self'})
        if mandatory_blocks is not None and len(mandatory_blocks) != num_stages:
            raise ValueError(f'mandatory_blocks needs one entry per stage ({num_stages}), '
                             f'got {tuple(mandatory_blocks)}')
        self._mandatory_override = None if mandatory_blocks is None else tuple(mandatory_blocks)
        self.train_twin_stats = train_twin_stats
        self.drop_path_rate = drop_path_rate
        super().__init__(depth, *args, **kwargs)
        self._setup_adaptive_depth(flags, [(stage, index) for index, stage in enumerate(self.stages)])

    def make_res_layer(self, **kwargs) -> ADNResLayer:
        stage = len(self.res_layers)  # make_res_layer is called once per stage, in order
        num_blocks = kwargs['num_blocks']
        num_mandatory = (num_mandatory_blocks(num_blocks)
                         if self._mandatory_override is None else self._mandatory_override[stage])
        # mmpretrain's decay rule: rates rise linearly over the blocks of the whole architecture
        first = sum(len(getattr(self, name)) for name in self.res_layers)
        rates = torch.linspace(0, self.drop_path_rate, sum(self.arch_settings[self.depth][1])).tolist()
        return ADNResLayer(num_mandatory=num_mandatory, block_names=[f'layer{stage + 1}.{i}' for i in range(num_blocks)],
                           drop_path_rates=rates[first:first + num_blocks], **kwargs)

    @property
    def stages(self) -> List[ADNResLayer]:
        return [getattr(self, name) for name in self.res_layers]

    def stage_module_names(self) -> List[str]:
        return list(self.res_layers)

    def static_config(self, blocks_per_stage: Sequence[int]) -> dict:
        return dict(type='StaticResNet', **{**self._upstream_args, 'init_cfg': None, 'pretrained': None},
                    stage_blocks=tuple(blocks_per_stage))

    def train(self, mode: bool = True) -> 'ResNetADN':
        super().train(mode)  # mmdet's ResNet.train applies frozen_stages / norm_eval to both norm sets
        if mode and self.norm_eval and self.train_twin_stats:
            for stage in self.stages[max(self.frozen_stages, 0):]:
                for slot in stage.norm_slots:
                    slot.owner._modules[slot.twin].train()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(layer id, number of layers)`` for layer-wise LR decay (mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor``), exactly as mmpretrain's ``ResNet``: its rule reads only the
        stage and block of a name, so a twin gets its block's depth and the deep stem depth 0."""
        try:
            return MMPretrainResNet.get_layer_depth(self, param_name, prefix)
        except NotImplementedError:
            raise NotImplementedError(
                f'Layer-wise LR decay is defined (by mmpretrain) for ResNet-34/50/101/152 stages, not for '
                f'stage_blocks {tuple(self.stage_blocks)}.') from None
