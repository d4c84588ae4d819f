"""Re-estimate the normalization statistics of one sub-network from a few training batches.

Needed when a sub-network's norms never saw its own feature statistics: twins copied from a plain checkpoint,
or mixed sub-networks that were never trained. Only the norms the sub-network runs are re-estimated, each as
the plain average over the batches (momentum None).
"""
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, List, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .adaptive_depth import SkipType
from .feature_recorder import FeatureRecorder
from .subnet import subnet


def _norms_run_by(model: nn.Module, forward: Callable[[], object]) -> List[_BatchNorm]:
    """The batch norms that ``forward`` calls (found with forward hooks, not by reading the model's code)."""
    recorder = FeatureRecorder(model, [n for n, m in model.named_modules() if isinstance(m, _BatchNorm)],
                               keep_outputs=False)
    with torch.no_grad(), recorder.record():
        forward()
    return recorder.called()


@torch.no_grad()
def recalibrate_norms(model: nn.Module,
                      batches: Iterable,
                      skip: Optional[SkipType] = None,
                      forward: Optional[Callable[[object], object]] = None) -> int:
    """Replace the running statistics of the norms used by sub-network ``skip`` by their average over ``batches``.

    Args:
        model: a detector or classifier (or a bare ADN backbone).
        batches: data batches as the model's data loader yields them (dicts with ``inputs``), or tensors.
        skip: the sub-network; default: the active one.
        forward: how to run a batch; default: ``model.data_preprocessor`` then ``model.extract_feat`` (the
            backbone and neck, where the norms are), or ``model(batch)`` for a bare backbone.

    Returns:
        The number of batches used.
    """
    forward = forward or _default_forward(model)
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise ValueError('recalibrate_norms needs at least one batch.')
    context = subnet(model, skip) if skip is not None else _nullcontext()
    was_training = model.training
    with context:
        model.eval()
        norms = _norms_run_by(model, lambda: forward(first))
        saved = {id(n): n.momentum for n in norms}
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches
            norm.train()
        count = 0
        try:
            for batch in _chain(first, batches):
                forward(batch)
                count += 1
        finally:
            for norm in norms:
                norm.momentum = saved[id(norm)]
            model.train(was_training)
    return count


@contextmanager
def recalibrated(model: nn.Module, batches: Iterable, skip: SkipType,
                 forward: Optional[Callable] = None) -> Iterator[nn.Module]:
    """Evaluate ``skip`` with recalibrated statistics, then put every norm's statistics back."""
    buffers = {k: v.clone() for k, v in model.state_dict().items() if 'running_' in k or 'num_batches' in k}
    try:
        recalibrate_norms(model, batches, skip, forward)
        with subnet(model, skip):
            yield model
    finally:
        model.load_state_dict(buffers, strict=False)


def _default_forward(model: nn.Module) -> Callable[[object], object]:
    if hasattr(model, 'extract_feat') and hasattr(model, 'data_preprocessor'):

        def run(batch):
            data = model.data_preprocessor(batch, False) if isinstance(batch, dict) else dict(inputs=batch)
            return model.extract_feat(data['inputs'])

        return run
    return model


def _chain(first, rest):
    yield first
    yield from rest


@contextmanager
def _nullcontext():
    yield
