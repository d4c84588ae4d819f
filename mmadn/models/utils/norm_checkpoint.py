"""Activation checkpointing (``with_cp``) for blocks whose norms are selected by name.

mmdet's and mmpretrain's blocks checkpoint themselves: in backward they re-run their forward and read
``self.norm1`` (through ``norm1_name``) at that moment. ADN switches those names between forwards (Algorithm 1
runs the teacher, then the student, then one backward), so the recomputation of the student's blocks would
normalise with the teacher's norms: wrong gradients, and no gradient at all for the twins. ADN backbones
therefore switch the blocks' own checkpointing off and checkpoint each block here, remembering the names the
block's norm slots held in forward and putting them back for the recomputation. Capturing a few strings per
block keeps a depth switch what it is: a handful of attribute assignments, no tensor, no rebuild.
"""
from typing import Callable, Sequence, Tuple

import torch.utils.checkpoint as cp
from torch import nn

# (module, attribute): a string attribute naming the norm the module uses now, e.g. (block, 'norm1_name')
NormSlot = Tuple[nn.Module, str]


def checkpoint_with_norms(function: Callable, slots: Sequence[NormSlot], *args):
    """``function(*args)`` under activation checkpointing, recomputed in backward with the norm selection of now.

    Non-reentrant checkpointing: it accepts non-tensor arguments (Swin's ``hw_shape``), works with DDP without
    ``static_graph`` and preserves the RNG state, so drop-path masks are the forward's in the recomputation.
    """
    selection = tuple(getattr(module, attr) for module, attr in slots)
    return cp.checkpoint(_run_with_selection, function, slots, selection, *args, use_reentrant=False)


def _run_with_selection(function: Callable, slots: Sequence[NormSlot], selection: Tuple[str, ...], *args):
    current = tuple(getattr(module, attr) for module, attr in slots)
    if current == selection:  # the forward itself, or a recomputation with nothing switched since
        return function(*args)
    _assign(slots, selection)
    try:
        return function(*args)
    finally:  # also on the early stop of a non-reentrant recomputation (raised from inside function)
        _assign(slots, current)


def _assign(slots: Sequence[NormSlot], values: Sequence[str]) -> None:
    # plain string attributes: object.__setattr__ is what nn.Module.__setattr__ ends in for them
    for (module, attr), value in zip(slots, values):
        object.__setattr__(module, attr, value)


def disable_block_checkpointing(blocks) -> bool:
    """Turn the blocks' own ``with_cp`` off (their recomputation would read the names of the moment) and return
    whether any had it on: then the owner checkpoints them with ``checkpoint_with_norms``."""
    with_cp = False
    for block in blocks:
        with_cp |= bool(getattr(block, 'with_cp', False))
        if hasattr(block, 'with_cp'):
            block.with_cp = False
    return with_cp
