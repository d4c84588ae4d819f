"""Swin Transformer with skippable sub-paths and skip-aware normalization (ADN spec section 3, Swin-T-ADN).

``SwinTransformerADN`` is mmpretrain's ``SwinTransformer`` with the ADN split rule per stage: the first
``mandatory_depths[s]`` blocks always run ([1, 1, 3, 1] for Swin-T, the ResNet rule ``min(n - 1, ceil(n / 2))``
gives the same), the rest are skipped when the stage's flag is ``T``. Switchable norms, as released: norm1 / norm2 of
every mandatory block, and the patch-merging norm that feeds stage k (mmpretrain keeps it at the end of stage k-1,
``stages.{k-1}.downsample``), which follows flag k. The patch-embedding norm and the output norms are shared.
Parameter names are mmpretrain's, so a plain mmpretrain Swin checkpoint loads (twins filled from the shared norms).
"""
from typing import Dict, List, Optional, Sequence, Tuple

from mmcv.cnn.bricks.transformer import PatchMerging
from mmpretrain.models.backbones.swin_transformer import SwinBlock, SwinBlockSequence, SwinTransformer
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import AdaptiveDepthMixin, SkipType
from ..utils.skippable import TWIN_SUFFIX, SkippableStage, SwitchableNorm, norm_by_name, num_mandatory_blocks, retype
from ..utils.twin_norm_loading import TwinNormLoadHook
from .swin_adn_layouts import SWIN_LAYOUTS


class ADNSwinBlock(SwinBlock):
    """A mandatory Swin block reading ``norm1`` / ``norm2`` through ``normK_name``, as mmdet's ResNet blocks do:
    mmpretrain's forward keeps calling ``self.norm1(x)``, and a switch rewrites a string."""

    norm1_name, norm2_name = 'norm1', 'norm2'
    norm1 = norm_by_name('norm1')
    norm2 = norm_by_name('norm2')


class ADNPatchMerging(PatchMerging):
    """Patch merging reading its ``norm`` through ``norm_name``: it follows the flag of the stage it feeds."""

    norm_name = 'norm'
    norm = norm_by_name('norm')


def _block_norms(block: nn.Module) -> List[Tuple[nn.Module, str]]:
    retype(block, ADNSwinBlock)
    return [(block, 'norm1_name'), (block, 'norm2_name')]


class ADNSwinBlockSequence(SkippableStage, SwinBlockSequence):
    """A Swin stage as a ``SkippableStage`` over its ``blocks``; the patch merging after it is run as upstream."""

    blocks_attr = 'blocks'

    def forward(self, x, in_shape, do_downsample=True):
        x = self.run_blocks(x, in_shape)
        if self.downsample is not None and do_downsample:
            x, out_shape = self.downsample(x, in_shape)
        else:
            out_shape = in_shape
        return x, out_shape


class _SwinTwinNormLoadHook(TwinNormLoadHook):
    """Also applies mmpretrain's conversions of old Swin checkpoints (v1 ``norm.``, v2 ``attn_mask``), which
    mmpretrain applies only to its exact class."""

    def upgrade(self, module, state_dict, prefix, local_metadata) -> None:
        version = local_metadata.get('version', None)
        if version is None or version < 2:
            last = f'norm{len(module.stages) - 1}.'
            for key in [k for k in state_dict if k.startswith(prefix + 'norm.')]:
                state_dict[prefix + last + key[len(prefix + 'norm.'):]] = state_dict.pop(key)
        if version is None or version < 3:
            for key in [k for k in state_dict if k.startswith(prefix) and 'attn_mask' in k]:
                del state_dict[key]


@register_model
class SwinTransformerADN(AdaptiveDepthMixin, SwinTransformer):
    """Swin Transformer backbone of an adaptive depth network: 2^num_stages sub-networks in one set of weights.

    Args:
        arch (str | dict): mmpretrain's Swin arch ('tiny', 'small', ... or a dict). Default 'tiny' (Swin-T-ADN).
        skip (str | Sequence[bool]): the active sub-network: a T/F string with one flag per stage (``'TTFF'``),
            a sequence of bools, ``'super'`` (default, as for every mmadn backbone) or ``'base'``. Change it any
            time with ``backbone.skip = ...`` or temporarily with ``with backbone.switch(...)``.
        mandatory_depths (Sequence[int], optional): blocks that always run, per stage. Defaults to the ADN rule
            ``min(n - 1, ceil(n / 2))``, which is the released [1, 1, 3, 1] for Swin-T.
        **kwargs: every argument of mmpretrain's ``SwinTransformer``. For detection use ``out_indices=(0, 1, 2,
            3)`` and ``pad_small_map=True`` (mmpretrain's setting for dense prediction).
    """

    checkpoint_layouts = SWIN_LAYOUTS
    load_hook = _SwinTwinNormLoadHook(probe='patch_embed.projection.weight', family='Swin',
                                      foreign_keys=('features.0.0.attn.relative_position_bias_table',  # released
                                                    'features.1.0.attn.relative_position_bias_table'))  # torchvision
    norms_fold = False  # LayerNorms: nothing to fold on export

    def __init__(self,
                 arch='tiny',
                 skip: SkipType = 'super',
                 mandatory_depths: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        depths = self._arch_setting(arch, 'depths')
        flags = self._begin_adaptive_depth(skip, len(depths), kwargs)
        # a bad split, too, fails before any layer is built
        if mandatory_depths is None:
            mandatory_depths = [num_mandatory_blocks(n) for n in depths]
        mandatory_depths = tuple(int(m) for m in mandatory_depths)
        if len(mandatory_depths) != len(depths) or not all(1 <= m <= n for m, n in zip(mandatory_depths, depths)):
            raise ValueError(f'mandatory_depths needs one entry per stage, each in [1, depth]; got '
                             f'{mandatory_depths} for depths {tuple(depths)}')
        super().__init__(arch=arch, **kwargs)
        self.mandatory_depths = mandatory_depths
        for index, (stage, num_mandatory) in enumerate(zip(self.stages, mandatory_depths)):
            retype(stage, ADNSwinBlockSequence).setup_skippable(
                num_mandatory, [f'stages.{index}.blocks.{j}' for j in range(len(stage.blocks))], _block_norms)
        # a patch merging's norm follows the flag of the stage it feeds (mmpretrain keeps it in the stage before)
        followers = [(SwitchableNorm(retype(stage.downsample, ADNPatchMerging), 'norm_name'), index + 1)
                     for index, stage in enumerate(self.stages[:-1])
                     if self.stages[index + 1].is_skippable and isinstance(stage.downsample, PatchMerging)
                     and isinstance(stage.downsample._modules.get('norm'), nn.Module)]
        self._setup_adaptive_depth(flags, [(stage, index) for index, stage in enumerate(self.stages)], followers)

    def stage_module_names(self) -> List[str]:
        return [f'stages.{i}' for i in range(len(self.stages))]

    def distill_stage_features(self) -> Dict[str, dict]:
        """A stage returns ``(tokens (N, L, C), hw_shape)``: the same L in super- and base-net (the skippable
        blocks keep the resolution), so the KL is taken on the mean token, softmax over channels."""
        return {name: dict(mode='tokens') for name in self.stage_module_names()[:-1]}

    def static_config(self, blocks_per_stage: Sequence[int]) -> dict:
        arch = dict(embed_dims=self.embed_dims, depths=list(blocks_per_stage), num_heads=list(self.num_heads))
        return dict(type='mmpretrain.SwinTransformer', arch=arch, **{**self._upstream_args, 'init_cfg': None})

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer-wise LR decay: a merging norm's twin sits at the depth of the merging norm."""
        return super().get_layer_depth(param_name.replace('.norm' + TWIN_SUFFIX + '.', '.norm.'), prefix)
