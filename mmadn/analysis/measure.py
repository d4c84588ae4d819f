"""What one sub-network costs: parameters and weight bytes on its path, FLOPs; and which depths are worth it.

Latency and peak memory are measured by ``mmadn.utils.timing``."""
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from mmadn.models import adaptive_backbones
from mmadn.models.utils.feature_recorder import FeatureRecorder


def _called_modules(model: nn.Module, forward: Callable[[], object]) -> List[nn.Module]:
    recorder = FeatureRecorder(model, keep_outputs=False)
    with torch.no_grad(), recorder.record():
        forward()
    return recorder.called()


def active_parameters(model: nn.Module, forward: Callable[[], object]) -> int:
    """Parameters of the modules that ``forward`` actually runs (a skipped block's do not count)."""
    params = {id(p): p for module in _called_modules(model, forward) for p in module.parameters(recurse=False)}
    return sum(p.numel() for p in params.values())


def active_weight_bytes(model: nn.Module, forward: Callable[[], object]) -> int:
    """Bytes of the parameters and buffers (norm statistics) the active sub-network keeps once deployed alone
    (exported), whatever else the adaptive model holds: every module's, except the modules of the adaptive-depth
    backbones that ``forward`` does not run (skipped blocks, the other depth's norm twins). Modules outside the
    backbones count whether ``forward`` reached them or not: a mask head that found nothing to segment in this
    batch is still part of the deployed model."""
    called = {id(m) for m in _called_modules(model, forward)}
    adaptive = {id(m) for backbone in adaptive_backbones(model) for m in backbone.modules()}
    tensors = {id(t): t for module in model.modules() if id(module) in called or id(module) not in adaptive
               for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))}
    return sum(t.numel() * t.element_size() for t in tensors.values())


class _Call(nn.Module):
    """Lets mmengine's FlopAnalyzer (a jit trace of ``forward(*inputs)``) trace any callable of a model."""

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, inputs):
        return self.fn(inputs)


def count_flops(model: nn.Module, fn: Callable[[torch.Tensor], object], inputs: torch.Tensor,
                op_handles: Optional[Dict[str, Callable]] = None, by_module: bool = False) -> Union[int, Counter]:
    """FLOPs (multiply-adds, mmengine's convention) of ``fn(inputs)`` on the active sub-network.

    Fused attention (``F.scaled_dot_product_attention``, which mmengine's counter has no handle for and skips)
    is counted as its two products, ``q @ k^T`` and ``attn @ v``: ``batch * Lq * Lk * (E + Ev)`` multiply-adds
    for q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev), the figure mmengine gives the same products unfused.
    Softmax and scaling are not counted, as mmengine counts no elementwise op.

    ``op_handles`` override mmengine's per-operator counters (another paper's convention); ``by_module`` returns
    the count of every sub-module of ``model`` by name (``''``: the whole call) instead of the total.
    """

    def sdpa_flop_jit(op_inputs, op_outputs) -> int:
        from mmengine.analysis.jit_handles import get_shape
        q, k, out = get_shape(op_inputs[0]), get_shape(op_inputs[1]), get_shape(op_outputs[0])
        return math.prod(q[:-1]) * k[-2] * q[-1] + math.prod(out[:-1]) * k[-2] * out[-1]

    analyzer = FlopAnalyzer(_Call(model, fn), (inputs, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit, **(op_handles or {}))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    total = int(analyzer.total())
    if not by_module:
        return total
    return Counter({'': total, **{n[6:]: int(c) for n, c in analyzer.by_module().items() if n.startswith('model.')}})


def pareto_front(points: Sequence[Tuple[float, float]]) -> List[int]:
    """Indices of the (cost, quality) points no other point beats: cheaper-or-equal and better-or-equal."""
    front = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(c <= cost and q >= quality and (c < cost or q > quality)
                        for j, (c, q) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def runs_blocks_of(larger: str, smaller: str) -> bool:
    """Whether sub-network ``larger`` runs every block that ``smaller`` runs, and more: it keeps (``F``) the
    skippable blocks of every stage that ``smaller`` keeps, and of at least one more."""
    if len(larger) != len(smaller):
        raise ValueError(f'skips {larger!r} and {smaller!r} are of different backbones')
    return larger != smaller and all(a == 'F' for a, b in zip(larger, smaller) if b == 'F')


# quality columns in percent (mmpretrain's Accuracy): a tolerance on a 0-1 scale is scaled by 100 for them
PERCENT_QUALITY = ('top1', 'top5')


@dataclass
class DepthCheck:
    """Which depths are worth running (``check_depths``): the cost-quality Pareto front, and the pairs where a
    sub-network that runs more blocks scores lower than one running a subset of them (the more blocks are then
    never worth their cost: the smaller one is cheaper and better)."""
    quality_key: str
    cost_key: str
    tolerance: float
    num_rows: int
    front: List[str]
    pairs: List[Tuple[str, str, float]] = field(default_factory=list)  # (more blocks, subset, deficit), worst first

    def beaten_by(self) -> Dict[str, List[Tuple[str, float]]]:
        """Each flagged sub-network -> the ones running a subset of its blocks that beat it, by how much."""
        beaten: Dict[str, List[Tuple[str, float]]] = {}
        for larger, smaller, deficit in self.pairs:
            beaten.setdefault(larger, []).append((smaller, deficit))
        return beaten

    def summary(self) -> str:
        cost = self.cost_key.split('_')[0] if self.cost_key.endswith('_ms') else self.cost_key
        line = (f'{len(self.front)} of {self.num_rows} on the {cost} Pareto front ({", ".join(self.front)}); '
                f'{len(self.pairs)} pairs where more blocks score > {self.tolerance:g} lower ({self.quality_key})')
        if self.pairs:
            larger, smaller, deficit = self.pairs[0]
            line += f' (worst: {larger} {deficit:.4g} below {smaller})'
        return line

    def to_dict(self) -> Dict:
        return dict(quality_key=self.quality_key, cost_key=self.cost_key, tolerance=self.tolerance,
                    front=self.front, pairs=[list(p) for p in self.pairs], summary=self.summary())


def check_depths(rows: Sequence[Dict], quality_key: str, cost_key: str = 'latency_ms',
                 tolerance: float = 0.005) -> DepthCheck:
    """The Pareto front of ``rows`` (cost ``cost_key`` against ``quality_key``) and every pair (A, B) where A runs
    a superset of B's blocks (``runs_blocks_of``) and scores more than ``tolerance`` below it.

    ``tolerance`` is on a 0-1 scale (COCO AP); for percent columns (``PERCENT_QUALITY``) it is scaled by 100.
    Rows without the quality or the cost (not measured) are left out of both. The deficit is rounded to 9 decimals
    first, so that 0.691 - 0.686 is not above 0.005 by a float's last bit."""
    rows = [r for r in rows if r.get(quality_key) is not None and r.get(cost_key) is not None]
    if quality_key in PERCENT_QUALITY:
        tolerance = tolerance * 100
    front = [rows[i]['skip'] for i in pareto_front([(r[cost_key], r[quality_key]) for r in rows])]
    pairs = [(a['skip'], b['skip'], b[quality_key] - a[quality_key]) for a in rows for b in rows
             if runs_blocks_of(a['skip'], b['skip']) and round(b[quality_key] - a[quality_key], 9) > tolerance]
    pairs.sort(key=lambda p: -p[2])
    return DepthCheck(quality_key, cost_key, tolerance, len(rows), front, pairs)
