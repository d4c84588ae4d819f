"""Vision Transformer with skippable sub-paths and skip-aware LayerNorms (ADN spec sections 3-4, ViT-ADN).

ViT has no stages, so the release groups the encoder blocks: 12 blocks form 4 groups of 3, the last block of a
group is its skippable part, and the two LayerNorms (``ln1``, ``ln2``) of every other block of a skippable group
get a twin (``ln1_skip``, ``ln2_skip``) used while the group skips. The final encoder norm is shared.

``VisionTransformerADN`` is mmpretrain's ``VisionTransformer`` with those rules: parameter names are
mmpretrain's, so a plain mmpretrain ViT checkpoint loads (the twins it lacks are filled from the shared norms);
``vit_adn_layouts`` converts the authors' release (torchvision names) to this layout and back.
"""
import math
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.model import ModuleList
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import AdaptiveDepthMixin, SkipType
from ..utils.skippable import BlockGroup, norm_by_name, retype
from ..utils.twin_norm_loading import TwinNormLoadHook
from .vit_adn_layouts import VIT_LAYOUTS


def _block_norms(block: nn.Module) -> List[Tuple[nn.Module, str]]:
    return [(block, 'ln1_name'), (block, 'ln2_name')]


class ADNTransformerEncoderLayer(TransformerEncoderLayer):
    """mmpretrain's encoder block reading its two LayerNorms by name (``ln1_name``, ``ln2_name``, as mmdet's
    ResNet blocks read ``normK_name``), so selecting the twins is a string assignment; mmpretrain's forward runs
    unchanged.

    It adds no parameter and no init: ``VisionTransformerADN`` re-types the blocks mmpretrain built (its
    ``VisionTransformer`` hard-codes the block class), which keeps every weight, initialisation and name exactly
    mmpretrain's.
    """

    ln1_name, ln2_name = 'ln1', 'ln2'
    ln1 = norm_by_name('ln1')
    ln2 = norm_by_name('ln2')


@register_model
class VisionTransformerADN(AdaptiveDepthMixin, VisionTransformer):
    """ViT backbone of an adaptive depth network: 2^num_groups sub-networks in one set of weights.

    Args:
        arch (str | dict): as mmpretrain's ``VisionTransformer`` ('b' for ViT-b/16 and ViT-b/32 with
            ``patch_size`` 16 / 32).
        skip (str | Sequence[bool]): the active sub-network: a T/F string with one flag per group (``'TTFF'``),
            a sequence of bools, ``'super'`` (default) or ``'base'``. Change it any time with
            ``backbone.skip = ...`` or temporarily with ``with backbone.switch(...)``.
        blocks_per_group (int): encoder blocks per group (3 in the release). The last block of a group of two
            or more blocks is skippable; a trailing group of one block has nothing to skip.
        **kwargs: every argument of mmpretrain's ``VisionTransformer``. To match torchvision's ``vit_b_16``
            (and the release), keep the defaults ``out_type='cls_token'``, ``final_norm=True``,
            ``pre_norm=False``, ``layer_scale_init_value=0`` and LN eps 1e-6.

    Stage outputs: ``group_outputs.i`` (parameter-free ``nn.Identity``) is called on each group's output. The
    last block of a group does not run in every sub-network, so no block's output is "the group's output" in
    both the super-net and the base-net; the identity is, which gives the distillation a module name whose
    recorded output means the same thing in every sub-network.
    """

    checkpoint_layouts = VIT_LAYOUTS
    load_hook = TwinNormLoadHook(probe='patch_embed.projection.weight', family='ViT',
                                 foreign_keys=('conv_proj.weight', 'encoder.pos_embedding'))
    norms_fold = False  # LayerNorms: nothing to fold on export

    def __init__(self, arch='base', skip: SkipType = 'super', blocks_per_group: int = 3, **kwargs) -> None:
        num_layers = self._arch_setting(arch, 'num_layers')
        if blocks_per_group < 1:
            raise ValueError(f'blocks_per_group must be >= 1, got {blocks_per_group}')
        num_groups = math.ceil(num_layers / blocks_per_group)
        flags = self._begin_adaptive_depth(skip, num_groups, kwargs)
        super().__init__(arch=arch, **kwargs)
        self.blocks_per_group = blocks_per_group
        self.groups: List[Tuple[int, ...]] = [
            tuple(range(g * blocks_per_group, min((g + 1) * blocks_per_group, num_layers)))
            for g in range(num_groups)
        ]
        self.group_outputs = ModuleList([nn.Identity() for _ in range(num_groups)])
        self._block_groups = []
        for g, group in enumerate(self.groups):
            stage = BlockGroup([retype(self.layers[i], ADNTransformerEncoderLayer) for i in group])
            # the last block of a group of two or more is its skippable part
            stage.setup_skippable(max(1, len(group) - 1), [f'layers.{i}' for i in group], _block_norms)
            self._block_groups.append(stage)
        self._setup_adaptive_depth(flags, [(stage, g) for g, stage in enumerate(self._block_groups)])

    # ---- which blocks run ----------------------------------------------------------------------------------

    def skippable_layers(self) -> List[int]:
        """Indices of the blocks that a group's ``T`` flag skips (the last block of each group of >= 2)."""
        return [group[-1] for group in self.groups if len(group) >= 2]

    def stage_module_names(self) -> List[str]:
        return [f'group_outputs.{g}' for g in range(self.num_skip_flags)]

    def distill_stage_features(self) -> Dict[str, dict]:
        """Every group output but the last (the logits cover it): tokens (N, L, C), averaged over the tokens
        (class token included), softmax over channels."""
        return {name: dict(mode='tokens') for name in self.stage_module_names()[:-1]}

    # ---- export ------------------------------------------------------------------------------------------

    def static_config(self, blocks_per_stage: Sequence[int]) -> dict:
        active = [int(name.split('.')[1]) for name in self.active_blocks()]
        # an output index keeps its meaning: the tokens after the last block that ran up to it
        out_indices = [sum(1 for i in active if i <= index) - 1 for index in self.out_indices]
        if len(set(out_indices)) < len(out_indices) or min(out_indices) < 0:
            raise ValueError(f'out_indices {tuple(self.out_indices)} do not map to distinct blocks of sub-network '
                             f'{self.skip} (blocks {active}): export it with out_indices at blocks it runs.')
        arch = dict(self.arch_settings, num_layers=sum(blocks_per_stage))
        return dict(type='mmpretrain.VisionTransformer', arch=arch,
                    **{**self._upstream_args, 'out_indices': out_indices, 'init_cfg': None})

    def static_state_dict(self) -> Dict:
        self.layers = ModuleList([block for group in self._block_groups for block in group])
        return {k: v for k, v in self.state_dict().items() if not k.startswith('group_outputs.')}

    # ---- forward ---------------------------------------------------------------------------------------------

    def forward(self, x):
        """mmpretrain's forward, with skipped blocks left out and each group's output passed through
        ``group_outputs``. ``out_indices`` keep their meaning (the tokens after layer i, or after the last block
        that ran before it), so every sub-network returns the same number of outputs; the final norm follows
        the last position whether the last block ran or not, as in the release."""
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)
        x = self.pre_norm(x)

        outs = []
        last = len(self.layers) - 1
        for g, group in enumerate(self._block_groups):
            for j, (i, layer) in enumerate(zip(self.groups[g], group)):
                if j < group.num_active:
                    x = layer(x)
                if i == self.groups[g][-1]:
                    x = self.group_outputs[g](x)
                if i == last and self.final_norm:
                    x = self.ln1(x)
                if i in self.out_indices:
                    outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)

