"""Vision Transformer with skippable sub-paths and skip-aware LayerNorms (ADN spec sections 3-4, ViT-ADN).

ViT has no stages, so the release groups the encoder blocks: 12 blocks form 4 groups of 3, the last block of a
group is its skippable part, and the two LayerNorms (``ln1``, ``ln2``) of every other block of a skippable group
get a twin (``ln1_skip``, ``ln2_skip``) used while the group skips. The final encoder norm is shared.

``VisionTransformerADN`` is mmpretrain's ``VisionTransformer`` with those rules: parameter names are
mmpretrain's, so a plain mmpretrain ViT checkpoint loads (the twins it lacks are filled from the shared norms);
``vit_adn_layouts`` converts the authors' release (torchvision names) to this layout and back.
"""
import copy
import math
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import ModuleList
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import TWIN_SUFFIX, AdaptiveDepthMixin, SkipType, is_pretrained_init, parse_skip
from ..utils.twin_norm_loading import TwinNormLoadHook

_BLOCK_NORMS = ('ln1', 'ln2')


class ADNTransformerEncoderLayer(TransformerEncoderLayer):
    """mmpretrain's encoder block reading its two LayerNorms by name (``ln1_name``, ``ln2_name``, as mmdet's
    ResNet blocks read ``normK_name``), so selecting the twins is a string assignment.

    It adds no parameter and no init: ``VisionTransformerADN`` re-types the blocks mmpretrain built (its
    ``VisionTransformer`` hard-codes the block class and has no override point such as mmdet's
    ``make_res_layer``), which keeps every weight, initialisation and name exactly mmpretrain's.
    """

    ln1_name = 'ln1'
    ln2_name = 'ln2'

    @classmethod
    def adopt(cls, block: TransformerEncoderLayer) -> 'ADNTransformerEncoderLayer':
        if type(block) is not TransformerEncoderLayer:
            raise TypeError(f'Expected mmpretrain TransformerEncoderLayer blocks, got {type(block).__name__}')
        block.__class__ = cls
        return block

    @property
    def norm1(self):
        return getattr(self, self.ln1_name)

    @property
    def norm2(self):
        return getattr(self, self.ln2_name)

    def forward(self, x):
        # mmpretrain's TransformerEncoderLayer.forward with the norms looked up by name
        x = x + self.attn(getattr(self, self.ln1_name)(x))
        x = self.ffn(getattr(self, self.ln2_name)(x), identity=x)
        return x


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

    def __init__(self, arch='base', skip: SkipType = 'super', blocks_per_group: int = 3, **kwargs) -> None:
        num_layers = self._num_layers_of(arch)
        if blocks_per_group < 1:
            raise ValueError(f'blocks_per_group must be >= 1, got {blocks_per_group}')
        num_groups = math.ceil(num_layers / blocks_per_group)
        # Fail on a bad skip before any layer is built.
        flags = parse_skip(skip, num_groups, type(self).__name__)
        super().__init__(arch=arch, **kwargs)
        self.blocks_per_group = blocks_per_group
        self.num_skip_flags = num_groups
        self.groups: List[Tuple[int, ...]] = [
            tuple(range(g * blocks_per_group, min((g + 1) * blocks_per_group, num_layers)))
            for g in range(num_groups)
        ]
        self.group_outputs = ModuleList([nn.Identity() for _ in range(num_groups)])
        # layer index -> group index of the groups that end there (called after that layer, skipped or not)
        self._group_end = {group[-1]: g for g, group in enumerate(self.groups)}
        for block in self.layers:
            ADNTransformerEncoderLayer.adopt(block)
        # (block, group, 'lnK_name', shared name, twin name) for every switchable norm: a switch only rewrites these
        self._norm_slots: List[Tuple[nn.Module, int, str, str, str]] = []
        for g, group in enumerate(self.groups):
            if len(group) < 2:
                continue
            for index in group[:-1]:
                block = self.layers[index]
                for name in _BLOCK_NORMS:
                    block.add_module(name + TWIN_SUFFIX, copy.deepcopy(getattr(block, name)))
                    self._norm_slots.append((block, g, name + '_name', name, name + TWIN_SUFFIX))
        self._skipped_layers: Tuple[bool, ...] = (False, ) * num_layers
        self._skip_flags = flags
        self._apply_skip(flags)
        self.register_load_state_dict_pre_hook(
            TwinNormLoadHook(probe='patch_embed.projection.weight', family='ViT',
                             foreign_keys=('conv_proj.weight', 'encoder.pos_embedding')))

    @classmethod
    def _num_layers_of(cls, arch) -> int:
        if isinstance(arch, str):
            settings = cls.arch_zoo.get(arch.lower())
            if settings is None:
                raise ValueError(f'Arch {arch} is not in default archs {set(cls.arch_zoo)}')
            return settings['num_layers']
        if not isinstance(arch, dict) or 'num_layers' not in arch:
            raise ValueError(f'A custom arch must be a dict with num_layers (and embed_dims, num_heads, '
                             f'feedforward_channels), got {arch!r}')
        return arch['num_layers']

    # ---- which blocks run ----------------------------------------------------------------------------------

    def skippable_layers(self) -> List[int]:
        """Indices of the blocks that a group's ``T`` flag skips (the last block of each group of >= 2)."""
        return [group[-1] for group in self.groups if len(group) >= 2]

    def _apply_skip(self, flags: Tuple[bool, ...]) -> None:
        skipped = [False] * self.num_layers
        for flag, group in zip(flags, self.groups):
            if flag and len(group) >= 2:
                skipped[group[-1]] = True
        # Plain attributes set with object.__setattr__ (what nn.Module.__setattr__ ends in for them, minus its
        # bookkeeping): a switch stays in the microseconds and allocates no tensor.
        object.__setattr__(self, '_skipped_layers', tuple(skipped))
        for block, group, attr, shared, twin in self._norm_slots:
            object.__setattr__(block, attr, twin if flags[group] else shared)

    def active_blocks(self, skip: Optional[SkipType] = None) -> List[str]:
        """Names of the encoder blocks that run for ``skip`` (default: the active sub-network)."""
        flags = self._skip_flags if skip is None else parse_skip(skip, self.num_skip_flags, type(self).__name__)
        skipped = {group[-1] for flag, group in zip(flags, self.groups) if flag and len(group) >= 2}
        return [f'layers.{i}' for i in range(self.num_layers) if i not in skipped]

    def blocks_per_subnet(self) -> Dict[str, List[str]]:
        """Every sub-network and the encoder blocks it runs."""
        return {skip: self.active_blocks(skip) for skip in self.subnets()}

    def stage_module_names(self) -> List[str]:
        return [f'group_outputs.{g}' for g in range(self.num_skip_flags)]

    def distill_stage_features(self) -> Dict[str, dict]:
        """Every group output but the last (the logits cover it): tokens (N, L, C), averaged over the tokens
        (class token included), softmax over channels."""
        return {name: dict(mode='tokens') for name in self.stage_module_names()[:-1]}

    # ---- twins -----------------------------------------------------------------------------------------------

    def twin_norm_names(self) -> List[Tuple[str, str]]:
        """``(twin, shared)`` norm module names relative to the backbone, e.g. ``('layers.0.ln1_skip', ...)``."""
        index = {id(block): i for i, block in enumerate(self.layers)}
        return [(f'layers.{index[id(block)]}.{twin}', f'layers.{index[id(block)]}.{shared}')
                for block, _, _, shared, twin in self._norm_slots]

    def copy_shared_norms_to_twins(self) -> None:
        """Make every twin an exact copy of its shared norm."""
        modules = dict(self.named_modules())
        for twin, shared in self.twin_norm_names():
            modules[twin].load_state_dict(modules[shared].state_dict())

    def train(self, mode: bool = True) -> 'VisionTransformerADN':
        super().train(mode)
        return self  # mmpretrain's BaseBackbone.train returns None; nn.Module.train returns self, so eval() chains

    def init_weights(self) -> None:
        super().init_weights()
        # A random init starts the twins as copies; a Pretrained init brought its own (or the load hook
        # filled them from the shared norms), so it is left alone.
        if not is_pretrained_init(self.init_cfg):
            self.copy_shared_norms_to_twins()

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
        for i, layer in enumerate(self.layers):
            if not self._skipped_layers[i]:
                x = layer(x)
            group = self._group_end.get(i)
            if group is not None:
                x = self.group_outputs[group](x)
            if i == last and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)

