"""What one sub-network costs: parameters on its path, FLOPs, latency, peak memory; and which ones are worth it."""
import math
import statistics
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

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
    from mmadn.models import adaptive_backbones
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


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one ``fn()`` in ms, CUDA synchronised around it."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1e3


def latency_stats(times: Sequence[float]) -> Dict:
    """Median, nearest-rank p90 and the timed runs themselves (in the order they ran), all in ms: the runs let a
    budget be checked later against any percentile (``mmadn.deploy.select_subnet``)."""
    ordered = sorted(times)
    return dict(median_ms=statistics.median(ordered),
                p90_ms=ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], samples_ms=list(times))


@torch.no_grad()
def measure_latency(fn: Callable[[], object], device: torch.device, warmup: int = 3,
                    runs: int = 10) -> Dict:
    """Median, p90 and every timed run's wall time of ``fn()`` in ms, after ``warmup`` calls; CUDA is synchronised around each."""
    for _ in range(warmup):
        fn()
    return latency_stats([time_once(fn, device) for _ in range(runs)])


def peak_memory(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory (MiB) allocated while ``fn()`` runs, above what was allocated before (so neither the weights
    nor the inputs): CUDA's allocator statistics on a GPU; on CPU, the running sum of every allocation and free
    torch's profiler records (tensors and operators' scratch buffers, no allocator overhead), in time order.

    Not the operators' own memory summed in the order they start, as before: that nets each allocation against
    the frees inside the same operator and hides the transient peaks within one (the demo Mask R-CNN's predict
    read 6.3 MiB that way against 13.9 MiB in the allocation record). For inference this is the peak of the live
    activations, which depends on the input and the heads' work more than on depth (a skipped block changes no
    shape): ``memory_mib`` of benchmark_subnets.py adds the weights the sub-network runs. Grad mode is the
    caller's: wrap inference in ``torch.no_grad()``, measure a training step as it is."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    results = getattr(prof.profiler, 'kineto_results', None)
    if results is None:
        raise RuntimeError(f'torch {torch.__version__}\'s profiler keeps no allocation record (kineto_results) to '
                           'measure CPU memory from')
    changes = sorted((e.start_ns(), e.nbytes()) for e in results.events() if e.name() == '[memory]')
    live = peak = 0
    for _, change in changes:
        live += change
        peak = max(peak, live)
    return peak / 2**20


def pareto_front(points: Sequence[Tuple[float, float]]) -> List[int]:
    """Indices of the (cost, quality) points no other point beats: cheaper-or-equal and better-or-equal."""
    front = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(c <= cost and q >= quality and (c < cost or q > quality)
                        for j, (c, q) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])

