"""The public sub-network API shared by every ADN backbone: the ``skip`` grammar and instant switching.

A sub-network is named by one flag per stage, written as a string of ``T`` (skip the stage's skippable part)
and ``F`` (keep it): ``'FFFF'`` is the super-net, ``'TTTT'`` the base-net. T/F strings are the public form
because mmengine's ``--cfg-options`` would turn a 0/1 string such as ``0110`` into the integer 110.
"""
import copy
import functools
import itertools
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from torch import nn

from .skippable import TWIN_SUFFIX, SkippableStage, SwitchableNorm, norm_plan, select_norms
from .static_export import build_static_backbone

__all__ = ['AdaptiveDepthMixin', 'FAMILY_DUTIES', 'SkipType', 'TWIN_SUFFIX', 'parse_skip', 'skip_to_str', 'all_skips',
           'trains_every_path', 'is_pretrained_init']

SkipType = Union[str, Sequence[bool]]

SKIP_ALIASES = {'super': False, 'base': True}


def is_pretrained_init(init_cfg) -> bool:
    """Whether ``init_cfg`` loads a checkpoint: then the twins come from it (or the load hook), not copies."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs)


def _skip_error(skip, num_flags: int, owner: str, why: str) -> ValueError:
    example = 'T' * (num_flags // 2) + 'F' * (num_flags - num_flags // 2)
    return ValueError(
        f'Invalid skip {skip!r} for {owner} with {num_flags} skippable stages: {why}. '
        f"Valid forms: a string of {num_flags} 'T' (skip) / 'F' (keep) characters such as "
        f"'{example}', a sequence of {num_flags} bools, or 'super' / 'base'.")


def parse_skip(skip: SkipType, num_flags: int, owner: str = 'the backbone') -> Tuple[bool, ...]:
    """Turn any accepted form of ``skip`` into a tuple of ``num_flags`` bools, or raise a ValueError."""
    if isinstance(skip, bool) or skip is None:
        raise _skip_error(skip, num_flags, owner, f'got {type(skip).__name__}')
    if isinstance(skip, int):
        raise _skip_error(
            skip, num_flags, owner,
            'got an integer (mmengine --cfg-options parses 0/1 strings such as 0110 as integers)')
    if isinstance(skip, str):
        key = skip.strip()
        if key.lower() in SKIP_ALIASES:
            return (SKIP_ALIASES[key.lower()], ) * num_flags
        bad = sorted({c for c in key.upper() if c not in 'TF'})
        if bad:
            raise _skip_error(skip, num_flags, owner, f'unexpected character(s) {bad}')
        if len(key) != num_flags:
            raise _skip_error(skip, num_flags, owner, f'{len(key)} flags given')
        return tuple(c == 'T' for c in key.upper())
    try:
        flags = tuple(skip)
    except TypeError:
        raise _skip_error(skip, num_flags, owner, f'got {type(skip).__name__}') from None
    if len(flags) != num_flags:
        raise _skip_error(skip, num_flags, owner, f'{len(flags)} flags given')
    if not all(isinstance(f, bool) or (isinstance(f, int) and f in (0, 1)) for f in flags):
        raise _skip_error(skip, num_flags, owner, 'a sequence must hold bools')
    return tuple(bool(f) for f in flags)


@functools.lru_cache(maxsize=1024)
def _parse_skip_str(skip: str, num_flags: int, owner: str) -> Tuple[bool, ...]:
    """``parse_skip`` of a string, remembered: a run-time controller switching among a few depths parses each once
    (an invalid string raises, and is not remembered)."""
    return parse_skip(skip, num_flags, owner)


def skip_to_str(flags: Sequence[bool]) -> str:
    return ''.join('T' if f else 'F' for f in flags)


def all_skips(num_flags: int) -> List[str]:
    """All 2^num_flags skip strings, from the super-net ('FF..F') to the base-net ('TT..T')."""
    return [''.join(p) for p in itertools.product('FT', repeat=num_flags)]


def trains_every_path(skips: Sequence[SkipType]) -> bool:
    """Whether training all of ``skips`` in a step gives every ADN parameter a gradient.

    A stage's skippable blocks (and the shared norms of its mandatory ones) are used only by a sub-network that
    keeps them (``F``), its twins only by one that skips (``T``): every flag needs both among ``skips``. A stage
    with nothing to skip would not, which this cannot see from the strings: the answer errs towards ``False``.
    """
    flags = []
    for skip in skips:
        key = skip.strip().lower() if isinstance(skip, str) else None
        if key in SKIP_ALIASES:
            flags.append(SKIP_ALIASES[key])  # one value for every flag, however many there are
            continue
        try:
            flags.append(parse_skip(skip, len(skip)))
        except (TypeError, ValueError):
            return False  # not a valid skip: the backbone will say why; nothing to promise here
    lengths = {len(f) for f in flags if isinstance(f, tuple)}
    if len(lengths) > 1:
        return False
    num_flags = lengths.pop() if lengths else 1
    per_flag = [f if isinstance(f, tuple) else (f, ) * num_flags for f in flags]
    return all(len({f[i] for f in per_flag}) == 2 for i in range(num_flags))


# What a backbone family must declare itself, and how: checked when its class statement runs.
FAMILY_DUTIES = {
    'load_hook': ("a class attribute: TwinNormLoadHook(probe=<a key every checkpoint of the family has>, "
                  "family=<the plain network's name>), which fills a plain checkpoint's twins on load and refuses "
                  'a foreign layout'),
    'checkpoint_layouts': ('a class attribute: CheckpointLayouts(arch, family, hub, layouts) declared in '
                           '<family>_layouts.py, by which the converter detects and converts checkpoints'),
    'static_config': ('def static_config(self, blocks_per_stage) -> dict: the config of the upstream network that '
                      'holds blocks_per_stage blocks, what to_static() builds and loads'),
    'stage_module_names': ("def stage_module_names(self) -> List[str]: the modules producing each stage's output, "
                           'which distillation and the depth analyses record'),
}


class AdaptiveDepthMixin:
    """What every ADN backbone has, written once: ``skip`` (get/set), ``switch()``, ``subnets()``, the names of
    the blocks each sub-network runs and of the twins, twin init, ``train`` and export (``to_static``).

    A family subclasses it before its upstream class (``class ResNetADN(AdaptiveDepthMixin, ResNet)``) and
    declares ``FAMILY_DUTIES``, which is checked when the class is created (``abstract=True`` in the class
    statement defers the check to the subclasses of a partial base). Its ``__init__`` calls
    ``_begin_adaptive_depth`` before the upstream one (a bad ``skip`` fails before any layer is built; the upstream
    arguments are kept for export) and ``_setup_adaptive_depth`` at its end, with where its parts are: its
    ``SkippableStage`` s with the flag each follows, and any ``SwitchableNorm`` outside a stage with its flag
    (e.g. a norm that feeds a stage). Switching only flips Python attributes: it never rebuilds, copies or
    allocates.
    """

    num_skip_flags: int
    _skip_flags: Tuple[bool, ...]
    _upstream_args: Dict[str, Any]  # the upstream constructor's arguments, passed on by static_config
    norms_fold = True  # BatchNorms, foldable into the convolutions on export; LayerNorms are not

    def __init_subclass__(cls, abstract: bool = False, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if nn.Module in cls.__mro__ and cls.__mro__.index(nn.Module) < cls.__mro__.index(AdaptiveDepthMixin):
            raise TypeError(f'{cls.__name__} lists its upstream network before AdaptiveDepthMixin, whose '
                            '__init__-time checks, init_weights, train and export would then be shadowed: write '
                            f'class {cls.__name__}(AdaptiveDepthMixin, <upstream network>).')
        missing = [name for name in FAMILY_DUTIES if getattr(cls, name, None) is None]
        if missing and not abstract:
            duties = ''.join(f'\n  - {name}: {FAMILY_DUTIES[name]}' for name in missing)
            raise TypeError(
                f'{cls.__name__} is an ADN backbone family (an AdaptiveDepthMixin) but does not declare '
                f'{", ".join(missing)}. Add to the class:{duties}\nSee docs/adn.md, "Adding a backbone family" '
                '(or write abstract=True in the class statement of a base that its subclasses complete).')

    @classmethod
    def _arch_setting(cls, arch: Union[str, dict], key: str) -> Any:
        """``key`` of an mmpretrain ``arch`` (a name in the upstream's ``arch_zoo``, or a dict), read before the
        upstream is built to count the skip flags; a bad arch is refused with the choices."""
        keys = sorted(next(iter(cls.arch_zoo.values())))
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'Unknown {cls.__name__} arch {arch!r}; choose from {sorted(set(cls.arch_zoo))} '
                                 f'or give a dict with {keys}.')
            return cls.arch_zoo[arch.lower()][key]
        if not isinstance(arch, dict) or key not in arch:
            raise ValueError(f'A custom {cls.__name__} arch is a dict with {keys}; got {arch!r}')
        return arch[key]

    def _begin_adaptive_depth(self, skip: SkipType, num_flags: int,
                              upstream_args: Mapping[str, Any]) -> Tuple[bool, ...]:
        """First step of a family's ``__init__``, before the upstream one: check ``skip`` (a bad one fails before
        any layer is built) and keep the upstream arguments for ``static_config``. Returns the flags that
        ``_setup_adaptive_depth`` applies."""
        flags = parse_skip(skip, num_flags, type(self).__name__)
        self._upstream_args = dict(upstream_args)
        return flags

    def _setup_adaptive_depth(self, flags: Tuple[bool, ...], stages: Sequence[Tuple[SkippableStage, int]],
                              follower_norms: Sequence[Tuple[SwitchableNorm, int]] = ()) -> None:
        self.num_skip_flags = len(flags)
        self._adn_stages = [(stage, flag) for stage, flag in stages]  # plain lists: modules stay registered once
        self._follower_norms = list(follower_norms)
        for stage, _ in self._adn_stages:
            stage.checkpoint_norms(self.norm_slots())
        # what a switch touches, flattened once: the stages that can skip, the outside norms by the flag they follow
        followers: Dict[int, List[SwitchableNorm]] = {}
        for slot, index in self._follower_norms:
            followers.setdefault(index, []).append(slot)
        self._switch_plan = ([(stage, index) for stage, index in self._adn_stages if stage.is_skippable],
                             [(index, norm_plan(slots)) for index, slots in followers.items()])
        self._skip_flags = flags
        self._apply_skip(flags)
        # torch < 2.2 has this hook only in its private form (the same call with with_module=True)
        if hasattr(self, 'register_load_state_dict_pre_hook'):
            self.register_load_state_dict_pre_hook(self.load_hook)
        else:
            self._register_load_state_dict_pre_hook(self.load_hook, with_module=True)

    def _apply_skip(self, flags: Tuple[bool, ...]) -> None:
        stages, followers = self._switch_plan
        for stage, index in stages:
            stage.set_skip(flags[index])
        for index, plan in followers:
            select_norms(plan, flags[index])

    @property
    def skip(self) -> str:
        """The active sub-network as a T/F string."""
        return skip_to_str(self._skip_flags)

    @skip.setter
    def skip(self, value: SkipType) -> None:
        flags = (_parse_skip_str(value, self.num_skip_flags, type(self).__name__) if isinstance(value, str) else
                 parse_skip(value, self.num_skip_flags, type(self).__name__))
        self._skip_flags = flags
        self._apply_skip(flags)

    @contextmanager
    def switch(self, skip: SkipType) -> Iterator['AdaptiveDepthMixin']:
        """Run a block of code with another sub-network active; the previous one is restored after."""
        previous = self._skip_flags
        self.skip = skip
        try:
            yield self
        finally:
            self.skip = previous

    def subnets(self) -> List[str]:
        """Every selectable sub-network, super-net first, base-net last."""
        return all_skips(self.num_skip_flags)

    # ---- what runs ------------------------------------------------------------------------------------------
    def active_blocks(self, skip: Optional[SkipType] = None) -> List[str]:
        """Names of the blocks that run for ``skip`` (default: the active sub-network), in order."""
        flags = self._skip_flags if skip is None else parse_skip(skip, self.num_skip_flags, type(self).__name__)
        return [name for stage, index in self._adn_stages for name in stage.active_block_names(flags[index])]

    def blocks_per_subnet(self) -> Dict[str, List[str]]:
        """Every sub-network and the blocks it runs."""
        return {skip: self.active_blocks(skip) for skip in self.subnets()}

    def distill_stage_features(self) -> Dict[str, dict]:
        """Stage outputs distilled by default in classification (module name relative to the backbone -> spec):
        every stage but the last (the logits cover it), pooled over positions, softmax over channels. A backbone
        whose stages emit tokens returns ``mode='tokens'`` here."""
        return {name: dict(mode='pooled') for name in self.stage_module_names()[:-1]}

    # ---- twins ----------------------------------------------------------------------------------------------
    def norm_slots(self) -> List[SwitchableNorm]:
        return [slot for stage, _ in self._adn_stages for slot in stage.norm_slots] + \
            [slot for slot, _ in self._follower_norms]

    def twin_norm_names(self) -> List[Tuple[str, str]]:
        """``(twin, shared)`` norm module names relative to the backbone, in module order, e.g.
        ``('layer3.0.bn1_skip', 'layer3.0.bn1')``."""
        by_owner: Dict[int, List[SwitchableNorm]] = {}
        for slot in self.norm_slots():
            by_owner.setdefault(id(slot.owner), []).append(slot)
        return [(f'{name}.{slot.twin}', f'{name}.{slot.shared}') for name, module in self.named_modules()
                for slot in by_owner.get(id(module), ())]

    def copy_shared_norms_to_twins(self) -> None:
        """Make every twin an exact copy of its shared norm (parameters and statistics)."""
        for slot in self.norm_slots():
            slot.copy_shared_to_twin()

    def init_weights(self) -> None:
        # As the super-net: an upstream init reaching a norm by its name (mmdet's zero_init_residual) must reach
        # the shared one. A random init then starts the twins as copies; a Pretrained init brought its own (or the
        # load hook filled them from the shared norms), so it is left alone.
        with self.switch('super'):
            super().init_weights()
        if not is_pretrained_init(self.init_cfg):
            self.copy_shared_norms_to_twins()

    def train(self, mode: bool = True) -> 'AdaptiveDepthMixin':
        super().train(mode)  # the upstream's frozen_stages / norm_eval apply to both norm sets
        return self  # mmdet's / mmpretrain's return None; nn.Module.train returns self, so model.eval() chains

    # ---- export ---------------------------------------------------------------------------------------------
    def to_static(self, fuse: bool = False) -> Tuple[dict, nn.Module]:
        """The active sub-network as an upstream backbone (mmdet / mmpretrain, no switching code) and its config:
        skipped blocks gone, each norm the one this sub-network uses, under the shared names. With ``fuse``,
        BatchNorms are folded into their convolutions. Its outputs equal this backbone's."""
        if fuse and not self.norms_fold:
            raise ValueError(f'{type(self).__name__} has LayerNorms, which depend on their input and cannot be '
                             'folded into a layer: export it with fuse=False.')
        static_form = copy.deepcopy(self)
        for stage, _ in static_form._adn_stages:
            stage.to_static()
        for slot, _ in static_form._follower_norms:
            slot.to_static()
        cfg = self.static_config([stage.num_active for stage, _ in static_form._adn_stages])
        if fuse:
            cfg['fused'] = True
        static = build_static_backbone(cfg, static_form.static_state_dict())
        static.train(self.training)
        return cfg, static

    def static_state_dict(self) -> Dict:
        """The state dict of the static form (called on it): upstream names, by default this module's."""
        return self.state_dict()
