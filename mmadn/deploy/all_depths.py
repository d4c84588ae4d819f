"""Every depth of an ADN backbone in one exported graph: a ``skip`` input picks the sub-network per call.

Each skippable stage becomes ``torch.cond(skip[i], skipping, full)`` (ONNX ``If``): ``full`` runs all of the
stage's blocks with the shared norms, ``skipping`` its mandatory blocks with the twins. The two branches are two
views of the stage that hold the same parameter and buffer tensors (a copy of its modules, not of its weights),
so the exported model stores every weight once, as the adaptive model does. The norms stay unfolded: folding would
give each mandatory block two sets of convolution weights (one per norm).
"""
import copy
import itertools
import os.path as osp
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from mmadn.models.utils import adaptive_backbones
from mmadn.utils.timing import time_once
from .runtime import require_dynamo_exporter


def _shared_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module``'s modules holding the very same parameter and buffer tensors."""
    memo = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


class _Flags:
    """The ``skip`` tensor of the current call, read by every stage (a plain object: not a module or buffer)."""
    value = None


class _CondStage(nn.Module):
    """A skippable stage as ``torch.cond(flags[index], skipping, full)``."""

    def __init__(self, stage: nn.Module, index: int, flags: _Flags) -> None:
        super().__init__()
        self.full, self.skipping = _shared_copy(stage), _shared_copy(stage)
        self.full.set_skip(False)
        self.skipping.set_skip(True)
        self.index, self._flags = index, flags

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(self._flags.value[self.index], self.skipping, self.full, (x, ))


class AllDepthsFeatures(nn.Module):
    """``forward(x, skip)``: the backbone + neck of ``model`` at the depth ``skip`` (a bool tensor, one flag per
    stage, True = skip its skippable blocks), every depth in one graph. Built from a copy of the backbone's modules
    sharing its weights; the neck is the model's."""

    def __init__(self, model: nn.Module) -> None:
        require_dynamo_exporter('The all-depths model (every depth in one graph: torch.cond -> ONNX If)',
                                'Upgrade torch, or export and run one depth per model.', cond=True)
        super().__init__()
        backbones = adaptive_backbones(model)
        if not backbones or getattr(model, 'backbone', None) is not backbones[0]:
            raise TypeError(f'{type(model).__name__} has no adaptive backbone')
        source = model.backbone
        if source._follower_norms:
            raise TypeError(f'{type(source).__name__} has norms outside its stages that follow a flag: the '
                            'all-depths export covers backbones whose stages hold all their switching')
        self.num_flags = source.num_skip_flags
        backbone = _shared_copy(source).eval()
        self._flags = _Flags()
        names = backbone.stage_module_names()
        stages = {id(stage): index for stage, index in backbone._adn_stages}
        for name in names:
            stage = getattr(backbone, name)
            if id(stage) not in stages:
                raise TypeError(f'{name} of {type(source).__name__} is not one of its skippable stages')
            if stage.is_skippable:
                setattr(backbone, name, _CondStage(stage, stages[id(stage)], self._flags))
            else:
                stage.set_skip(False)
        self.backbone = backbone
        self.neck = model.neck if getattr(model, 'with_neck', False) else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self._flags.value = skip
        try:
            feats = self.backbone(x)
        finally:
            self._flags.value = None
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def skip_tensor(skip: str) -> torch.Tensor:
    """The ``skip`` input for a T/F string: ``'TTFF'`` -> ``tensor([True, True, False, False])``."""
    return torch.tensor([c == 'T' for c in skip.upper()])


_FOOTPRINT_SCRIPT = r'''
import json, sys
import numpy as np
import onnxruntime as ort

def rss_mib():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024

paths, sessions_of_runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
arrays = np.load(sys.argv[3])
runs = [(i, {key.split('/', 1)[1]: arrays[key] for key in arrays.files if key.startswith(f'{r}/')})
        for r, i in enumerate(sessions_of_runs)]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
before = rss_mib()
sessions = [ort.InferenceSession(p, options, providers=['CPUExecutionProvider']) for p in paths]
loaded = rss_mib()
for i, feed in runs:
    sessions[i].run(None, feed)
ran = rss_mib()
for _ in range(2):
    for i, feed in runs:
        sessions[i].run(None, feed)
print(json.dumps(dict(loaded_mib=loaded - before, ran_mib=ran - before, again_mib=rss_mib() - before)))
'''


def session_footprint(paths: List[str], runs: List[Tuple[int, dict]]) -> dict:
    """Resident memory (MiB of /proc's VmRSS) that ONNX Runtime sessions of ``paths`` add to a fresh process:
    once loaded (``loaded_mib``), after ``runs`` (``(session index, feed)``: activations, arenas; ``ran_mib``)
    and after all of ``runs`` twice more (``again_mib``: a depth switch must not allocate weights). Measured in a
    subprocess that imports only onnxruntime and numpy, one intra-op thread."""
    import json
    import subprocess
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        feeds = osp.join(tmp, 'feeds.npz')
        np.savez(feeds, **{f'{r}/{k}': np.asarray(v) for r, (_, feed) in enumerate(runs) for k, v in feed.items()})
        out = subprocess.run([sys.executable, '-c', _FOOTPRINT_SCRIPT, json.dumps(list(paths)),
                              json.dumps([i for i, _ in runs]), feeds], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def switch_cost(run, feeds: List[tuple], runs: int = 20, rounds: int = 5) -> dict:
    """Call times (ms) of ``run(*feed)`` per feed (one per depth): the median with the feed repeated, and with
    the feeds taken in turn (every call at another depth than the last). ``switch_ms``: the mean over feeds of
    the second minus the first, what a switch adds to a call. The two orders are interleaved in ``rounds`` blocks
    of ``runs`` calls per feed, so that a slow spell of a shared machine falls on both. The runtime runs on the
    CPU: each call is timed by ``mmadn.utils.timing`` with nothing to synchronise."""
    for feed in feeds:
        run(*feed)
    repeated, alternating = [[] for _ in feeds], [[] for _ in feeds]

    def timed(order, into):
        for index in order:
            into[index].append(time_once(lambda: run(*feeds[index]), 'cpu'))

    for _ in range(rounds):
        for index in range(len(feeds)):
            timed([index] * runs, repeated)
        timed([i % len(feeds) for i in range(runs * len(feeds))], alternating)
    repeated = [float(np.median(t)) for t in repeated]
    alternating = [float(np.median(t)) for t in alternating]
    return dict(repeated_ms=repeated, alternating_ms=alternating,
                switch_ms=float(np.mean(np.subtract(alternating, repeated))))
