"""Capture the outputs of named sub-modules with forward hooks, so the model's code is never edited."""
from contextlib import contextmanager
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence

from torch import nn


class FeatureRecorder:
    """Records every call's output of each module in ``names`` (e.g. ``'neck'``, ``'backbone.layer3'``).

    As MMRazor's ``ModuleOutputsRecorder``: hooks are registered by ``named_modules()`` name and removed after
    :meth:`record`. ``names=None`` watches every module; ``keep_outputs=False`` records that a module ran
    (``None`` per call) without holding its activations.
    """

    def __init__(self, model: nn.Module, names: Optional[Sequence[str]] = None, keep_outputs: bool = True) -> None:
        modules = dict(model.named_modules())
        names = list(modules) if names is None else names
        missing = [n for n in names if n not in modules]
        if missing:
            top = sorted({n.split('.')[0] for n in modules if n})
            raise KeyError(f'{type(model).__name__} has no module(s) {missing} to record features from; '
                           f'its top-level modules are {top}.')
        self.modules = {n: modules[n] for n in names}
        self.keep_outputs = keep_outputs
        self.outputs: Dict[str, List[object]] = {}

    @contextmanager
    def record(self) -> Iterator['FeatureRecorder']:
        """Within the block, ``outputs[name]`` lists that module's outputs in call order (a module that has not
        run has no entry, so ``outputs`` is ordered as first calls return)."""
        self.outputs = {}
        handles = [m.register_forward_hook(partial(self._hook, n)) for n, m in self.modules.items()]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def last(self, name: str) -> object:
        """The output of ``name``'s latest call."""
        return self.outputs[name][-1]

    def called(self) -> List[nn.Module]:
        """The modules that ran, in the order their first call returned."""
        return [self.modules[n] for n in self.outputs]

    def _hook(self, name: str, module: nn.Module, inputs, output) -> None:  # None: keeps the module's output
        self.outputs.setdefault(name, []).append(output if self.keep_outputs else None)
