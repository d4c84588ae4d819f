"""The one clock of the project: wall time, latency statistics and peak memory of a call.

Every figure is CUDA-synchronised where the device is a GPU: kernels run asynchronously, so the host's clock alone
would time their launch, not their work. Analysis, deployment, the benchmarks and the IMTA tools all time through
this module, so their numbers mean the same thing. Ground floor: it imports no other mmadn package.
"""
import contextlib
import statistics
import time
from typing import Callable, ContextManager, Dict, Hashable, List, Optional, Sequence, Tuple, TypeVar, Union

import torch
from torch.profiler import ProfilerActivity, profile

Device = Union[str, torch.device]
Key = TypeVar('Key', bound=Hashable)
Result = TypeVar('Result')


def synchronize(device: Device) -> None:
    """Wait for the work queued on ``device`` (CUDA only; nothing to wait for elsewhere)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Result], device: Device) -> Tuple[float, Result]:
    """Wall time of one ``fn()`` in ms, the device synchronised before and after it, and what it returned."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3, result


def time_once(fn: Callable[[], object], device: Device) -> float:
    """Wall time of one ``fn()`` in ms, CUDA synchronised around it."""
    return timed_call(fn, device)[0]


def latency_stats(times: Sequence[float]) -> Dict:
    """Median, nearest-rank p90 and the timed runs themselves (in the order they ran), all in ms: the runs let a
    budget be checked later against any percentile (``mmadn.deploy.select_subnet``)."""
    ordered = sorted(times)
    return dict(median_ms=statistics.median(ordered),
                p90_ms=ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], samples_ms=list(times))


@torch.no_grad()
def measure_latency(fn: Callable[[], object], device: Device, warmup: int = 3, runs: int = 10) -> Dict:
    """Median, p90 and every timed run's wall time of ``fn()`` in ms (``latency_stats``) from ``runs`` calls after
    ``warmup`` untimed ones, without autograd; CUDA is synchronised around each."""
    for _ in range(warmup):
        fn()
    return latency_stats([time_once(fn, device) for _ in range(runs)])


def interleaved_latency(fns: Dict[Key, Callable[[], object]],
                        device: Device,
                        warmup: int = 1,
                        runs: int = 10,
                        around: Optional[Callable[[Key], ContextManager]] = None) -> Dict[Key, Dict]:
    """``latency_stats`` of each callable from ``warmup + runs`` rounds that time every one once, in the order of
    ``fns``; the first ``warmup`` rounds are dropped. Interleaved so that a machine whose speed drifts during the
    measurement (a shared one, a GPU warming up) slows every callable alike: their times stay comparable.

    ``around(key)``, when given, is a context entered for each call and left after it, outside the timed part
    (switching a model to the key's depth, a memory format). Grad mode is the caller's: a training step is timed
    as it runs."""
    times: Dict[Key, List[float]] = {key: [] for key in fns}
    for round_index in range(warmup + runs):
        for key, fn in fns.items():
            with around(key) if around is not None else contextlib.nullcontext():
                elapsed = time_once(fn, device)
            if round_index >= warmup:
                times[key].append(elapsed)
    return {key: latency_stats(t) for key, t in times.items()}


def peak_memory(fn: Callable[[], object], device: Device) -> float:
    """Peak memory (MiB) allocated while ``fn()`` runs, above what was allocated before (so neither the weights
    nor the inputs): CUDA's allocator statistics on a GPU; on CPU, the running sum of every allocation and free
    torch's profiler records (tensors and operators' scratch buffers, no allocator overhead), in time order.

    Not the operators' own memory summed in the order they start: that nets each allocation against the frees
    inside the same operator and hides the transient peaks within one (the demo Mask R-CNN's predict read 6.3 MiB
    that way against 13.9 MiB in the allocation record). For inference this is the peak of the live activations,
    which depends on the input and the heads' work more than on depth (a skipped block changes no shape):
    ``memory_columns`` of ``mmadn.analysis.benchmark`` adds the weights the sub-network runs. Grad mode is the
    caller's: wrap inference in ``torch.no_grad()``, measure a training step as it is."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    results = getattr(prof.profiler, 'kineto_results', None)
    if results is None:
        raise RuntimeError(f'torch {torch.__version__}\'s profiler keeps no allocation record (kineto_results) to '
                           'measure CPU memory from')
    # torch < 2.2's events give their start in microseconds only (start_us); the order is what counts here
    ns = hasattr(torch._C._autograd._KinetoEvent, 'start_ns')
    start = (lambda e: e.start_ns()) if ns else (lambda e: e.start_us())
    changes = sorted((start(e), e.nbytes()) for e in results.events() if e.name() == '[memory]')
    live = peak = 0
    for _, change in changes:
        live += change
        peak = max(peak, live)
    return peak / 2**20
