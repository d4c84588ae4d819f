"""ADN's two structural ideas, each as one small type every ADN backbone uses (ADN spec sections 2-4).

``SwitchableNorm``: a norm with a twin. The owner reads its norm through a string attribute (mmdet's ResNet blocks
read ``norm1`` through ``norm1_name``, mmcv's ConvModule through ``norm_name``); selecting the twin rewrites that
string (``select_norms``, the one place that does), so a depth switch never rebuilds, copies or allocates. An
upstream module that reads its norm directly (``self.norm1(x)``) is given, in place, a subclass that reads it by
name (``retype``, ``norm_by_name``).

``SkippableStage``: a stage whose first ``num_mandatory`` blocks always run and whose other blocks are skipped while
``skip`` is set; its mandatory blocks' norms are ``SwitchableNorm`` s following the same flag. It runs only its active
blocks (checkpointing each, with ``with_cp``, under the norm selection of its forward) and becomes its static form
with ``to_static()`` (after MMRazor's ``to_static_op``): skipped blocks gone, the twins in use under the shared names.

A backbone declares where its stages and other switchable norms are (``AdaptiveDepthMixin``); switching, the names
of blocks and twins, twin init and export are written once, here and in the mixin.
"""
import copy
import itertools
import math
from typing import Callable, Iterable, List, Sequence, Tuple

from torch import nn

from .norm_checkpoint import checkpoint_with_norms, disable_block_checkpointing

# Suffix of a switchable norm's twin, the name used by the authors' release (``bn1_skip``, ``ln_1_skip``, ...).
TWIN_SUFFIX = '_skip'


def num_mandatory_blocks(num_blocks: int) -> int:
    """ADN's split rule: blocks of a stage that always run, ``min(n - 1, ceil(n / 2))``, never fewer than one."""
    return max(1, min(num_blocks - 1, math.ceil(num_blocks / 2)))


# What a switch writes, flattened once from the ``SwitchableNorm`` s: ``(owner, attr, name)`` per norm, the shared
# names first, then the twins' (indexed by ``use_twin``).
NormPlan = Tuple[List[Tuple[nn.Module, str, str]], List[Tuple[nn.Module, str, str]]]


class SwitchableNorm:
    """The norm ``owner`` reads through its string attribute ``attr``: the shared one, or its twin while skipping.

    Built on a fresh owner, it adds the twin (``<shared>_skip``) as a copy of the shared norm.
    """

    __slots__ = ('owner', 'attr', 'shared', 'twin')

    def __init__(self, owner: nn.Module, attr: str) -> None:
        self.owner, self.attr = owner, attr
        self.shared = getattr(owner, attr)
        self.twin = self.shared + TWIN_SUFFIX
        owner.add_module(self.twin, copy.deepcopy(owner._modules[self.shared]))

    def copy_shared_to_twin(self) -> None:
        self.owner._modules[self.twin].load_state_dict(self.owner._modules[self.shared].state_dict())

    def to_static(self) -> None:
        """Keep only the norm in use, under the shared name (in place: call it on a copy)."""
        in_use = self.owner._modules.pop(self.twin)
        if getattr(self.owner, self.attr) == self.twin:
            self.owner._modules[self.shared] = in_use  # same key, same place in the state dict
        object.__setattr__(self.owner, self.attr, self.shared)


def norm_plan(slots: Iterable[SwitchableNorm]) -> NormPlan:
    slots = list(slots)
    return [(s.owner, s.attr, s.shared) for s in slots], [(s.owner, s.attr, s.twin) for s in slots]


def select_norms(plan: NormPlan, use_twin: bool, _assign=object.__setattr__) -> None:
    """The switch of a set of norms: each owner's string attribute names the twin or the shared norm.

    A plain string attribute: ``object.__setattr__`` is what ``nn.Module.__setattr__`` ends in for it, minus its
    bookkeeping, which keeps a depth switch in the microseconds.
    """
    for owner, attr, name in plan[use_twin]:
        _assign(owner, attr, name)


def norm_by_name(name: str) -> property:
    """A property serving the norm registered as ``name``, or its twin, whichever ``<name>_name`` holds: upstream
    code calling ``self.<name>(x)`` then follows the switch (what mmdet's blocks do with ``normK_name``)."""
    attr = name + '_name'
    return property(lambda self: self._modules[getattr(self, attr)],
                    doc=f'The active {name}: the shared norm, or its twin ``{name}{TWIN_SUFFIX}`` while skipping.')


def retype(module: nn.Module, cls: type) -> nn.Module:
    """Give an upstream-built ``module`` its ADN subclass ``cls`` in place (one reading its norms by name): same
    parameters, names and init, nothing rebuilt. For upstream networks that build their blocks inline, with no
    override point such as mmdet's ``make_res_layer``. ``cls`` must extend the module's exact class: a subclass of
    it may have its own forward, which ``cls`` would silently replace."""
    if not issubclass(cls, type(module)):
        raise TypeError(f'{cls.__name__} cannot take over a {type(module).__name__}, a class it does not extend '
                        f'(a subclass of the upstream one?): give {type(module).__name__} its own ADN subclass.')
    module.__class__ = cls
    return module


def switchable_norms(blocks: Iterable[nn.Module], norm_attrs: Callable[[nn.Module], Sequence[Tuple[nn.Module, str]]]
                     ) -> List[SwitchableNorm]:
    """A twin for every ``(owner, attr)`` that ``norm_attrs(block)`` names in ``blocks``."""
    return [SwitchableNorm(owner, attr) for block in blocks for owner, attr in norm_attrs(block)]


class SkippableStage:
    """Mixin of a stage container (``nn.Sequential``, or a module keeping its blocks in ``blocks_attr``, or a plain
    list of blocks): its blocks after the first ``num_mandatory`` are skipped while ``skip`` is set.

    ``block_names`` are the blocks' names relative to the backbone (for ``active_blocks`` and reports).
    """

    blocks_attr = None  # where the container keeps its blocks; None: the container is the sequence of blocks

    def setup_skippable(self, num_mandatory: int, block_names: Sequence[str],
                        norm_attrs: Callable[[nn.Module], Sequence[Tuple[nn.Module, str]]]) -> None:
        """Split the stage and give its mandatory blocks' norms (``norm_attrs(block)``) twins; take over the
        blocks' own checkpointing (``norm_checkpoint`` says why)."""
        blocks = self.stage_blocks
        if not 1 <= num_mandatory <= len(blocks):
            raise ValueError(f'num_mandatory must be in [1, {len(blocks)}] for a stage of {len(blocks)} blocks, '
                             f'got {num_mandatory}')
        self.num_mandatory = num_mandatory
        self.block_names = tuple(block_names)
        self.skip = False
        mandatory = blocks[:num_mandatory] if self.is_skippable else []
        self.norm_slots = switchable_norms(mandatory, norm_attrs)
        self._switch_plan = norm_plan(self.norm_slots)  # what set_skip rewrites
        self.with_cp = disable_block_checkpointing(blocks)
        self.checkpoint_norms(self.norm_slots)

    def checkpoint_norms(self, slots: Sequence[SwitchableNorm]) -> None:
        """Per block, the norm selections a checkpointed recomputation must see as they were in forward: those of
        ``slots`` (the backbone passes all of its own, a norm in a block may follow another stage's flag)."""
        owners = [{id(m) for m in block.modules()} for block in self.stage_blocks]
        self._cp_slots = [[(s.owner, s.attr) for s in slots if id(s.owner) in mods] for mods in owners]

    @property
    def stage_blocks(self) -> list:
        container = self if self.blocks_attr is None else getattr(self, self.blocks_attr)
        return list(container)

    @property
    def is_skippable(self) -> bool:
        return self.num_mandatory < len(self.block_names)

    @property
    def num_active(self) -> int:
        return self.num_mandatory if self.skip else len(self.block_names)

    def set_skip(self, skip: bool) -> None:
        skip = bool(skip) and self.is_skippable
        if skip == self.skip:
            return
        object.__setattr__(self, 'skip', skip)  # plain attribute, no nn.Module bookkeeping: microseconds
        select_norms(self._switch_plan, skip)

    def active_block_names(self, skip: bool) -> Tuple[str, ...]:
        return self.block_names[:self.num_mandatory if skip and self.is_skippable else len(self.block_names)]

    def run_blocks(self, x, *args):
        """Run the active blocks, each checkpointed (``with_cp``, under mmdet's / mmpretrain's condition) with the
        norm selection of this forward."""
        container = self if self.blocks_attr is None else getattr(self, self.blocks_attr)
        for index, block in enumerate(itertools.islice(container, self.num_active)):
            if self.with_cp and x.requires_grad:
                x = checkpoint_with_norms(block, self._cp_slots[index], x, *args)
            else:
                x = block(x, *args)
        return x

    def forward(self, x, *args):
        return self.run_blocks(x, *args)

    def to_static(self) -> 'SkippableStage':
        """In place (on a copy): drop the skipped blocks and keep, under the shared names, the norms in use."""
        for slot in self.norm_slots:
            slot.to_static()
        num_active = self.num_active
        if self.blocks_attr is None and isinstance(self, nn.Sequential):
            for index in range(len(self) - 1, num_active - 1, -1):
                del self[index]
        elif self.blocks_attr is not None:
            blocks = getattr(self, self.blocks_attr)
            setattr(self, self.blocks_attr, type(blocks)(list(blocks)[:num_active]))
        self.norm_slots, self._switch_plan, self.num_mandatory, self.skip = [], norm_plan([]), num_active, False
        self.block_names = self.block_names[:num_active]
        self._cp_slots = self._cp_slots[:num_active]
        return self


class BlockGroup(SkippableStage):
    """A stage over blocks that sit in the backbone's own flat list (ViT's ``layers``): a plain object, so the
    state dict keeps the upstream names."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        self._blocks = list(blocks)

    @property
    def stage_blocks(self) -> list:
        return self._blocks

    def __iter__(self):
        return iter(self._blocks)

    def to_static(self) -> 'BlockGroup':
        super().to_static()
        self._blocks = self._blocks[:self.num_active]
        return self
