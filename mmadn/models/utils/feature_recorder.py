"""Capture the outputs of named sub-modules with forward hooks, so the model's code is never edited."""
from contextlib import contextmanager
from typing import Dict, Iterator, List

from torch import nn


class FeatureRecorder:
    """Records the output of each module in ``names`` (e.g. ``'neck'``, ``'backbone.layer3'``) while active."""

    def __init__(self, model: nn.Module, names: List[str]) -> None:
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            top = sorted({n.split('.')[0] for n in modules if n})
            raise KeyError(f'{type(model).__name__} has no module(s) {missing} to record features from; '
                           f'its top-level modules are {top}.')
        self._modules = {n: modules[n] for n in names}
        self.outputs: Dict[str, object] = {}

    @contextmanager
    def record(self) -> Iterator[Dict[str, object]]:
        """Within the block, ``outputs[name]`` holds the last output of that module; hooks are removed after."""
        self.outputs = {}
        handles = [m.register_forward_hook(self._hook(n)) for n, m in self._modules.items()]
        try:
            yield self.outputs
        finally:
            for h in handles:
                h.remove()

    def _hook(self, name: str):

        def hook(module, inputs, output):
            self.outputs[name] = output

        return hook
