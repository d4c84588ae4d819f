"""Run a model's backbone and neck channels-last (NHWC) where that measures faster, the heads as they are.

On this project's CPUs oneDNN's NHWC convolution kernels make the stem of a ResNet 3-4x faster (BENCHMARKS.md),
but not every model gains, so ``'auto'`` times the backbone + neck both ways and keeps the faster. Only the
backbone and neck are converted, and their outputs are handed on contiguous: mmcv's CPU RoIAlign indexes its
input as NCHW without checking the strides, so channels-last FPN levels give wrong boxes and masks, not an error.
"""
import contextlib
from typing import Dict, Iterator, List, Tuple

import torch
from torch import nn

from mmadn.utils.timing import interleaved_latency

MEMORY_FORMATS = ('auto', 'channels_last', 'contiguous')


def _feature_modules(model: nn.Module) -> List[nn.Module]:
    if not hasattr(model, 'backbone'):
        raise TypeError(f'{type(model).__name__} has no backbone to run channels-last')
    return [model.backbone] + ([model.neck] if getattr(model, 'with_neck', False) else [])


def _contiguous(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.contiguous()
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_contiguous(o) for o in outputs)
    return outputs


@contextlib.contextmanager
def channels_last(model: nn.Module) -> Iterator[nn.Module]:
    """Within the context, ``model.backbone`` (and ``model.neck``) hold NHWC weights and see NHWC images; what
    they give the heads is contiguous. The weights are contiguous again on exit (the same parameters: an optimizer
    or a checkpoint keeps pointing at them)."""
    modules = _feature_modules(model)
    for module in modules:
        module.to(memory_format=torch.channels_last)

    def to_nhwc(module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            return (args[0].contiguous(memory_format=torch.channels_last), ) + tuple(args[1:])
        return None

    handles = [modules[0].register_forward_pre_hook(to_nhwc),
               modules[-1].register_forward_hook(lambda module, args, outputs: _contiguous(outputs))]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
        for module in modules:
            module.to(memory_format=torch.contiguous_format)


def memory_format(model: nn.Module, name: str):
    """The context that runs ``model`` in the memory format ``name`` (``'channels_last'`` or ``'contiguous'``)."""
    if name == 'channels_last':
        return channels_last(model)
    if name == 'contiguous':
        return contextlib.nullcontext(model)
    raise ValueError(f'unknown memory format {name!r}: use one of {", ".join(MEMORY_FORMATS)}')


@torch.no_grad()
def choose_memory_format(model: nn.Module, inputs: torch.Tensor, device: torch.device, warmup: int = 2,
                         runs: int = 5) -> Tuple[str, Dict[str, float]]:
    """The faster memory format for ``model.extract_feat(inputs)`` (backbone + neck at the active depth) and the
    median ms of each, from ``runs`` rounds that time both formats once (after ``warmup`` untimed rounds)."""

    @contextlib.contextmanager
    def prepared(name: str) -> Iterator[None]:
        with memory_format(model, name):
            model.extract_feat(inputs)  # the format's kernels are chosen and cached before the timed call
            yield

    latency = interleaved_latency({name: lambda: model.extract_feat(inputs) for name in MEMORY_FORMATS[1:]}, device,
                                  warmup, runs, around=prepared)
    medians = {name: stats['median_ms'] for name, stats in latency.items()}
    return min(medians, key=medians.get), medians
