"""The public sub-network API shared by every ADN backbone: the ``skip`` grammar and instant switching.

A sub-network is named by one flag per stage, written as a string of ``T`` (skip the stage's skippable part)
and ``F`` (keep it): ``'FFFF'`` is the super-net, ``'TTTT'`` the base-net. T/F strings are the public form
because mmengine's ``--cfg-options`` would turn a 0/1 string such as ``0110`` into the integer 110.
"""
import itertools
from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence, Tuple, Union

SkipType = Union[str, Sequence[bool]]

SKIP_ALIASES = {'super': False, 'base': True}

# Suffix of a switchable norm's twin, the name used by the authors' release (``bn1_skip``, ``ln_1_skip``, ...).
TWIN_SUFFIX = '_skip'


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


class AdaptiveDepthMixin:
    """Gives a backbone ``skip`` (get/set), ``switch()`` and ``subnets()``.

    A backbone using it sets ``num_skip_flags`` and implements ``_apply_skip(flags)``, which must only flip
    Python attributes: switching depth never rebuilds, copies or allocates.
    """

    num_skip_flags: int
    _skip_flags: Tuple[bool, ...]

    def _apply_skip(self, flags: Tuple[bool, ...]) -> None:
        raise NotImplementedError

    @property
    def skip(self) -> str:
        """The active sub-network as a T/F string."""
        return skip_to_str(self._skip_flags)

    @skip.setter
    def skip(self, value: SkipType) -> None:
        flags = parse_skip(value, self.num_skip_flags, type(self).__name__)
        self._skip_flags = flags
        self._apply_skip(flags)

    @property
    def skip_flags(self) -> Tuple[bool, ...]:
        return self._skip_flags

    @contextmanager
    def switch(self, skip: SkipType) -> Iterator['AdaptiveDepthMixin']:
        """Run a block of code with another sub-network active; the previous one is restored after."""
        previous = self._skip_flags
        self.skip = skip
        try:
            yield self
        finally:
            self.skip = previous

    def stage_module_names(self) -> List[str]:
        """Names (relative to the backbone) of the modules producing each stage's output, in order."""
        raise NotImplementedError

    def distill_stage_features(self) -> Dict[str, dict]:
        """Stage outputs distilled by default in classification (module name relative to the backbone -> spec):
        every stage but the last (the logits cover it), pooled over positions, softmax over channels. A backbone
        whose stages emit tokens returns ``mode='tokens'`` here."""
        return {name: dict(mode='pooled') for name in self.stage_module_names()[:-1]}

    def subnets(self) -> List[str]:
        """Every selectable sub-network, super-net first, base-net last."""
        return all_skips(self.num_skip_flags)
