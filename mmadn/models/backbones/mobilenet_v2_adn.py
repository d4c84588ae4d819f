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
import copy
from typing import Dict, List, Optional, Tuple

from mmcv.cnn import ConvModule
from mmpretrain.models.backbones import MobileNetV2
from torch import nn

from mmadn.registry import register_model
from ..utils.adaptive_depth import TWIN_SUFFIX, AdaptiveDepthMixin, SkipType, is_pretrained_init, parse_skip
from ..utils.norm_checkpoint import disable_block_checkpointing, run_active_blocks
from ..utils.twin_norm_loading import TwinNormLoadHook
from .resnet_adn import num_mandatory_blocks

# (ConvModule, shared norm name, twin norm name, ConvModule name relative to the backbone)
_NormSlot = Tuple[ConvModule, str, str, str]


class _InvertedResidualStage(nn.Sequential):
    """A stage of inverted-residual blocks that does their checkpointing (``with_cp``) itself, with the norm
    selection of the forward (see ``norm_checkpoint``): its blocks' norms follow a skip flag, and a block
    checkpointing itself would re-read them in backward. A plain ``nn.Sequential`` in the state dict."""

    with_cp = False

    def num_active(self) -> int:
        return len(self)

    def forward(self, x):
        return run_active_blocks(self, self.num_active(), x)


class ADNInvertedResidualStage(_InvertedResidualStage):
    """A stage of inverted-residual blocks whose blocks after the first ``num_mandatory`` can be skipped.

    A plain ``nn.Sequential`` in the state dict (``layerS.B.*``), so checkpoint names do not change.
    """

    def __init__(self, *blocks: nn.Module, num_mandatory: int) -> None:
        super().__init__(*blocks)
        if not 1 <= num_mandatory <= len(self):
            raise ValueError(f'num_mandatory must be in [1, {len(self)}] for a stage of {len(self)} blocks, '
                             f'got {num_mandatory}')
        self.num_mandatory = num_mandatory
        self.skip = False

    @property
    def is_skippable(self) -> bool:
        return self.num_mandatory < len(self)

    def num_active(self) -> int:
        return self.num_mandatory if self.skip else len(self)


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

    def __init__(self, skip: SkipType = 'super', **kwargs) -> None:
        # Fail on a bad skip before any layer is built.
        num_flags = sum(1 for _, _, num_blocks, _ in self.arch_settings if num_blocks >= 2)
        flags = parse_skip(skip, num_flags, type(self).__name__)
        super().__init__(**kwargs)
        self.num_skip_flags = num_flags
        self._flag_stages, self._flag_slots = self._add_twin_norms()
        self._setup_checkpointing()
        self._applied: List[Optional[bool]] = [None] * num_flags  # what each flag's modules are set to now
        self._skip_flags = flags
        self._apply_skip(flags)
        self.register_load_state_dict_pre_hook(
            TwinNormLoadHook(probe='layer2.0.conv.0.conv.weight', family='MobileNetV2'))

    def make_layer(self, out_channels, num_blocks, stride, expand_ratio) -> nn.Sequential:
        stage = super().make_layer(out_channels, num_blocks, stride, expand_ratio)
        if num_blocks < 2:  # a single block cannot be split: a plain stage whose norms follow a neighbour's flag
            return _InvertedResidualStage(*stage)
        return ADNInvertedResidualStage(*stage, num_mandatory=num_mandatory_blocks(num_blocks))

    def _stage_flags(self) -> List[Tuple[str, int]]:
        """``(name, flag)`` for the stem, every stage and the last conv, in order. A stage that cannot skip follows
        the flag of the nearest skippable stage before it (flag 0 for those before the first), as released."""
        out, flag, seen_skippable = [('conv1', 0)], 0, False
        for name in self.layers[:-1]:  # layer1 .. layer7
            if isinstance(getattr(self, name), ADNInvertedResidualStage):
                flag += seen_skippable
                seen_skippable = True
            out.append((name, flag))
        out.append((self.layers[-1], flag))  # conv2
        return out

    def _add_twin_norms(self) -> Tuple[List[List[nn.Module]], List[List[_NormSlot]]]:
        """Add a twin to every norm of a non-skippable conv-norm-act unit; group the switches by flag."""
        stages: List[List[nn.Module]] = [[] for _ in range(self.num_skip_flags)]
        slots: List[List[_NormSlot]] = [[] for _ in range(self.num_skip_flags)]
        for name, flag in self._stage_flags():
            module = getattr(self, name)
            if isinstance(module, ADNInvertedResidualStage):
                stages[flag].append(module)
                switchable = [(f'{name}.{i}', block) for i, block in enumerate(module) if i < module.num_mandatory]
            else:
                switchable = [(name, module)]
            for prefix, part in switchable:
                units = [(n, m) for n, m in part.named_modules(prefix=prefix)
                         if isinstance(m, ConvModule) and m.with_norm]
                for sub_name, unit in units:
                    shared = unit.norm_name
                    unit.add_module(shared + TWIN_SUFFIX, copy.deepcopy(unit.norm))
                    slots[flag].append((unit, shared, shared + TWIN_SUFFIX, sub_name))
        return stages, slots

    def _setup_checkpointing(self) -> None:
        """Move ``with_cp`` from the blocks to their stages, which know each block's switchable norm units."""
        switchable = {id(unit) for flag_slots in self._flag_slots for unit, *_ in flag_slots}
        for name in self.layers:
            stage = getattr(self, name)
            if isinstance(stage, _InvertedResidualStage):
                stage.with_cp = disable_block_checkpointing(stage)
                stage._cp_slots = [[(unit, 'norm_name') for unit in block.modules() if id(unit) in switchable]
                                   for block in stage]

    def _apply_skip(self, flags: Tuple[bool, ...]) -> None:
        for index, flag in enumerate(flags):
            if self._applied[index] == flag:
                continue
            # Plain attributes: object.__setattr__ is where nn.Module.__setattr__ ends for them, minus its
            # bookkeeping, which keeps a switch in the microseconds. ConvModule reads its norm via norm_name.
            for stage in self._flag_stages[index]:
                object.__setattr__(stage, 'skip', flag)
            for unit, shared, twin, _ in self._flag_slots[index]:
                object.__setattr__(unit, 'norm_name', twin if flag else shared)
            self._applied[index] = flag

    def stage_module_names(self) -> List[str]:
        """The skippable stages (one per flag); the last is covered by the logits in distillation."""
        return [name for name, _ in self._stage_flags()
                if isinstance(getattr(self, name), ADNInvertedResidualStage)]

    def active_blocks(self, skip: Optional[SkipType] = None) -> List[str]:
        """Names of the inverted-residual blocks that run for ``skip`` (default: the active sub-network); the
        stem ``conv1`` and the last ``conv2`` always run."""
        flags = self._skip_flags if skip is None else parse_skip(skip, self.num_skip_flags, type(self).__name__)
        names = []
        for name, flag in self._stage_flags()[1:-1]:
            stage = getattr(self, name)
            skips = flags[flag] and isinstance(stage, ADNInvertedResidualStage)
            names.extend(f'{name}.{i}' for i in range(stage.num_mandatory if skips else len(stage)))
        return names

    def blocks_per_subnet(self) -> Dict[str, List[str]]:
        """Every sub-network and the inverted-residual blocks it runs."""
        return {skip: self.active_blocks(skip) for skip in self.subnets()}

    def twin_norm_names(self) -> List[Tuple[str, str]]:
        """``(twin, shared)`` norm module names relative to the backbone, e.g. ``('layer2.0.conv.0.bn_skip',
        'layer2.0.conv.0.bn')``, in module order."""
        return [(f'{name}.{twin}', f'{name}.{shared}')
                for flag_slots in self._flag_slots for _, shared, twin, name in flag_slots]

    def copy_shared_norms_to_twins(self) -> None:
        """Make every twin an exact copy of its shared norm (parameters and statistics)."""
        for flag_slots in self._flag_slots:
            for unit, shared, twin, _ in flag_slots:
                getattr(unit, twin).load_state_dict(getattr(unit, shared).state_dict())

    def train(self, mode: bool = True) -> 'MobileNetV2ADN':
        super().train(mode)  # mmpretrain's applies frozen_stages / norm_eval to both norm sets
        return self  # mmpretrain's returns None; nn.Module.train returns self, so model.eval() chains again

    def init_weights(self) -> None:
        super().init_weights()
        # A random init starts the twins as copies; a Pretrained init brought its own (or the load hook
        # filled them from the shared norms), so it is left alone.
        if not is_pretrained_init(self.init_cfg):
            self.copy_shared_norms_to_twins()

