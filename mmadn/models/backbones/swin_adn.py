"""Swin Transformer with skippable sub-paths and skip-aware normalization (ADN spec section 3, Swin-T-ADN).

``SwinTransformerADN`` is mmpretrain's ``SwinTransformer`` with the ADN split rule per stage: the first
``mandatory_depths[s]`` blocks always run ([1, 1, 3, 1] for Swin-T, the ResNet rule ``min(n - 1, ceil(n / 2))``
gives the same), the rest are skipped when the stage's flag is ``T``. Switchable norms, as released: norm1 / norm2 of
every mandatory block, and the patch-merging norm that feeds stage k (mmpretrain keeps it at the end of stage k-1,
``stages.{k-1}.downsample``), which follows flag k. The patch-embedding norm and the output norms are shared.
Parameter names are mmpretrain's, so a plain mmpretrain Swin checkpoint loads (twins filled from the shared norms).
"""
import copy
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

from mmcv.cnn.bricks.transformer import PatchMerging
from mmpretrain.models.backbones.swin_transformer import SwinBlock, SwinBlockSequence, SwinTransformer
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import TWIN_SUFFIX, AdaptiveDepthMixin, SkipType, is_pretrained_init, parse_skip
from ..utils.norm_checkpoint import checkpoint_with_norms, disable_block_checkpointing
from ..utils.twin_norm_loading import TwinNormLoadHook
from .resnet_adn import num_mandatory_blocks


class _SwitchableNorms:
    """Reads the norms named in ``_switchable`` through ``<norm>_name``, as mmdet's ResNet blocks do.

    The inherited forward keeps calling ``self.norm1(x)``; the class-level property makes that the shared norm or
    its twin depending on a string attribute, so a switch rewrites strings and never touches a module.
    """

    _switchable: Tuple[str, ...] = ()

    def _add_twins(self) -> None:
        for name in self._switchable:
            # copy of the shared norm: same type, shape and (for a fresh model) values
            self.add_module(name + TWIN_SUFFIX, copy.deepcopy(self._modules[name]))
            object.__setattr__(self, name + '_name', name)

    def set_norms(self, use_twins: bool) -> None:
        for name in self._switchable:
            object.__setattr__(self, name + '_name', name + TWIN_SUFFIX if use_twins else name)

    def twin_norm_names(self) -> List[Tuple[str, str]]:
        return [(name + TWIN_SUFFIX, name) for name in self._switchable if name + TWIN_SUFFIX in self._modules]


def _norm_property(name: str) -> property:
    return property(lambda self: self._modules[getattr(self, name + '_name', name)],
                    doc=f'The active {name}: the shared norm, or its twin ``{name}{TWIN_SUFFIX}`` while skipping.')


class ADNSwinBlock(_SwitchableNorms, SwinBlock):
    """A mandatory Swin block: ``norm1`` / ``norm2`` resolve to the twins while its stage skips."""

    _switchable = ('norm1', 'norm2')
    norm1 = _norm_property('norm1')
    norm2 = _norm_property('norm2')


class ADNPatchMerging(_SwitchableNorms, PatchMerging):
    """Patch merging whose ``norm`` resolves to its twin while the stage it feeds skips."""

    _switchable = ('norm', )
    norm = _norm_property('norm')


class ADNSwinBlockSequence(SwinBlockSequence):
    """A Swin stage whose blocks after the first ``num_mandatory`` can be skipped."""

    def _setup_adn(self, num_mandatory: int) -> None:
        self.num_mandatory = num_mandatory
        self.skip = False
        # the blocks whose norms a switch flips (plain list: not registered twice)
        self._switchable_blocks: List[ADNSwinBlock] = []
        if self.is_skippable:
            for block in itertools.islice(self.blocks, num_mandatory):
                _promote(block, ADNSwinBlock)
                self._switchable_blocks.append(block)
        # The stage checkpoints its blocks (with_cp) with the norm selection of the forward (norm_checkpoint).
        self.with_cp = disable_block_checkpointing(self.blocks)
        self._cp_slots = [[(block, name + '_name') for name in block._switchable]
                          if isinstance(block, ADNSwinBlock) else [] for block in self.blocks]

    @property
    def is_skippable(self) -> bool:
        return self.num_mandatory < len(self.blocks)

    def mandatory_blocks(self) -> List[nn.Module]:
        return list(self.blocks)[:self.num_mandatory]

    def set_skip(self, skip: bool) -> None:
        skip = bool(skip) and self.is_skippable
        if skip == self.skip:
            return
        object.__setattr__(self, 'skip', skip)  # plain attribute: skips nn.Module's bookkeeping, microseconds
        for block in self._switchable_blocks:
            block.set_norms(skip)

    def forward(self, x, in_shape, do_downsample=True):
        num_active = self.num_mandatory if self.skip else len(self.blocks)
        for index, block in enumerate(self.blocks):
            if index == num_active:
                break
            if self.with_cp and x.requires_grad:  # mmpretrain's condition for checkpointing a block
                x = checkpoint_with_norms(block, self._cp_slots[index], x, in_shape)
            else:
                x = block(x, in_shape)
        if self.downsample is not None and do_downsample:
            x, out_shape = self.downsample(x, in_shape)
        else:
            out_shape = in_shape
        return x, out_shape


def _promote(module: nn.Module, cls: type) -> None:
    """Give an mmpretrain-built module its ADN subclass in place (same parameters, nothing rebuilt) and add twins.

    mmpretrain's SwinTransformer builds its stages, blocks and patch merging inline, with no override point such
    as mmdet's ``make_res_layer``; promoting them keeps mmpretrain's construction (and names) untouched.
    """
    module.__class__ = cls
    if issubclass(cls, _SwitchableNorms):
        module._add_twins()


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

    def __init__(self,
                 arch='tiny',
                 skip: SkipType = 'super',
                 mandatory_depths: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        depths = self._arch_depths(arch)
        # Fail on a bad skip or split before any layer is built.
        flags = parse_skip(skip, len(depths), type(self).__name__)
        if mandatory_depths is None:
            mandatory_depths = [num_mandatory_blocks(n) for n in depths]
        mandatory_depths = tuple(int(m) for m in mandatory_depths)
        if len(mandatory_depths) != len(depths) or not all(1 <= m <= n for m, n in zip(mandatory_depths, depths)):
            raise ValueError(f'mandatory_depths needs one entry per stage, each in [1, depth]; got '
                             f'{mandatory_depths} for depths {tuple(depths)}')
        super().__init__(arch=arch, **kwargs)
        self.mandatory_depths = mandatory_depths
        self.num_skip_flags = self.num_layers
        for stage, num_mandatory in zip(self.stages, mandatory_depths):
            _promote(stage, ADNSwinBlockSequence)
            stage._setup_adn(num_mandatory)
        # (merging, index of the stage it feeds): its norm follows that stage's flag
        self._merging_slots: List[Tuple[ADNPatchMerging, int]] = []
        for index, stage in enumerate(self.stages[:-1]):
            merging = stage.downsample
            if (self.stages[index + 1].is_skippable and isinstance(merging, PatchMerging)
                    and isinstance(merging._modules.get('norm'), nn.Module)):
                _promote(merging, ADNPatchMerging)
                self._merging_slots.append((merging, index + 1))
        self._skip_flags = flags
        self._apply_skip(flags)
        self.register_load_state_dict_pre_hook(
            _SwinTwinNormLoadHook(probe='patch_embed.projection.weight', family='Swin',
                                  foreign_keys=('features.0.0.attn.relative_position_bias_table',  # released
                                                'features.1.0.attn.relative_position_bias_table')))  # torchvision

    @classmethod
    def _arch_depths(cls, arch) -> List[int]:
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'Unknown Swin arch {arch!r}; choose from {sorted(set(cls.arch_zoo))} or give a '
                                 "dict with 'embed_dims', 'depths', 'num_heads'.")
            return list(cls.arch_zoo[arch.lower()]['depths'])
        if not isinstance(arch, dict) or 'depths' not in arch:
            raise ValueError(f"A custom Swin arch is a dict with 'embed_dims', 'depths', 'num_heads'; got {arch!r}")
        return list(arch['depths'])

    # ---- sub-networks -------------------------------------------------------------------------------------
    def _apply_skip(self, flags: Tuple[bool, ...]) -> None:
        for stage, flag in zip(self.stages, flags):
            stage.set_skip(flag)
        for merging, stage_index in self._merging_slots:
            merging.set_norms(flags[stage_index])

    def stage_module_names(self) -> List[str]:
        return [f'stages.{i}' for i in range(len(self.stages))]

    def distill_stage_features(self) -> Dict[str, dict]:
        """A stage returns ``(tokens (N, L, C), hw_shape)``: the same L in super- and base-net (the skippable
        blocks keep the resolution), so the KL is taken on the mean token, softmax over channels."""
        return {name: dict(mode='tokens') for name in self.stage_module_names()[:-1]}

    def active_blocks(self, skip: Optional[SkipType] = None) -> List[str]:
        """Names of the Swin blocks that run for ``skip`` (default: the active sub-network)."""
        flags = self._skip_flags if skip is None else parse_skip(skip, self.num_skip_flags, type(self).__name__)
        names = []
        for index, (stage, flag) in enumerate(zip(self.stages, flags)):
            num_active = stage.num_mandatory if flag and stage.is_skippable else len(stage.blocks)
            names.extend(f'stages.{index}.blocks.{j}' for j in range(num_active))
        return names

    def blocks_per_subnet(self) -> Dict[str, List[str]]:
        """Every sub-network and the blocks it runs."""
        return {skip: self.active_blocks(skip) for skip in self.subnets()}

    def twin_norm_names(self) -> List[Tuple[str, str]]:
        """``(twin, shared)`` norm module names relative to the backbone, e.g.
        ``('stages.2.blocks.0.norm1_skip', 'stages.2.blocks.0.norm1')``, ``('stages.0.downsample.norm_skip', ...)``."""
        names = []
        for index, stage in enumerate(self.stages):
            for j, block in enumerate(stage.blocks):
                if isinstance(block, ADNSwinBlock):
                    names += [(f'stages.{index}.blocks.{j}.{t}', f'stages.{index}.blocks.{j}.{s}')
                              for t, s in block.twin_norm_names()]
            if isinstance(stage.downsample, ADNPatchMerging):
                names += [(f'stages.{index}.downsample.{t}', f'stages.{index}.downsample.{s}')
                          for t, s in stage.downsample.twin_norm_names()]
        return names

    def copy_shared_norms_to_twins(self) -> None:
        """Make every twin an exact copy of its shared norm."""
        modules = dict(self.named_modules())
        for twin, shared in self.twin_norm_names():
            modules[twin].load_state_dict(modules[shared].state_dict())

    # ---- mmpretrain plumbing --------------------------------------------------------------------------------
    def init_weights(self) -> None:
        super().init_weights()
        # A random init starts the twins as copies; a Pretrained init brought its own (or the load hook filled them).
        if not is_pretrained_init(self.init_cfg):
            self.copy_shared_norms_to_twins()

    def train(self, mode: bool = True) -> 'SwinTransformerADN':
        super().train(mode)  # frozen_stages freezes a stage with its twins and its patch merging
        return self  # mmpretrain's returns None; nn.Module.train returns self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer-wise LR decay: a merging norm's twin sits at the depth of the merging norm."""
        return super().get_layer_depth(param_name.replace('.norm' + TWIN_SUFFIX + '.', '.norm.'), prefix)


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
