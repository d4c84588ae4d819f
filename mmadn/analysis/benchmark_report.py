"""The report of a sub-network benchmark while it is measured (``tools/analysis_tools/benchmark_subnets.py``).

The report is rewritten after every sub-network, so that a run stopped midway (Ctrl-C, an error) keeps what it
measured, with a title that says where it stopped; its title says how everything was measured (device, batch,
recalibration, backend, memory format), and once every row is in and their latencies were timed again in rounds
(``measure_subnets``), it is written a last time.
"""
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.utils import ProgressBar

from mmadn.deploy.runtime_detector import whole_detector_refusal
from .benchmark import QUALITY_KEYS, measure_subnets
from .report import write_report


def quality_column(task: str) -> str:
    """The report's column of the task's main quality figure (``bbox_mAP``, ``top1``)."""
    return QUALITY_KEYS[task][0].split('/')[-1]


def benchmark_title(config: str, device, batch_size: int, recalibrated: int, backend: str, task: str,
                    model) -> str:
    """How the run measures: the config, device and batch, the recalibration, and where the model runs."""
    title = (f'{osp.basename(config)} on {device}, batch {batch_size}'
             + (f', norms recalibrated on {recalibrated} batches' if recalibrated else ''))
    if backend == 'pytorch':
        return title
    if task == 'detection' and whole_detector_refusal(model) is None:
        return title + (f', whole detector in {backend} (quality and latency: {backend}\'s, from its own '
                        'detections; PyTorch\'s in pytorch_*)')
    return title + f', backbone + neck in {backend} (quality: PyTorch\'s)'


def _format_note(row: Dict) -> str:
    times = row.get('memory_format_ms')
    if not times:
        return f'; PyTorch backbone + neck {row["memory_format"]}'
    timed = ' vs '.join(f'{name} {ms:.3g} ms' for name, ms in times.items())
    return f'; PyTorch backbone + neck {row["memory_format"]} (auto: {timed} at {row["skip"]})'


def _write(rows: List[Dict], out_dir: str, quality: str, title: str) -> Dict[str, str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return write_report([{k: r.get(k) for k in keys} for r in rows], out_dir, quality, title)


def measure_and_report(runner,
                       skips: Sequence[str],
                       task: str,
                       device,
                       out_dir: str,
                       title: str,
                       on_row: Optional[Callable[[Dict], Dict]] = None,
                       **measure_options) -> Tuple[List[Dict], Dict[str, str]]:
    """Measure every sub-network of ``skips`` (``measure_subnets`` with ``measure_options``) and write the report
    to ``out_dir`` after each: ``(rows, paths written)``. ``on_row(row)``, called while the row's sub-network is
    active (with the statistics it was measured with), returns columns to add, e.g. its export's latency."""
    quality = quality_column(task)
    rows, progress, stopped = [], ProgressBar(len(skips)), None
    try:
        for row in measure_subnets(runner, skips, task, device, **measure_options):
            if on_row is not None:
                row.update(on_row(row))
            rows.append(row)
            paths = _write(rows, out_dir, quality, title)  # as it goes: what was measured survives a failure
            progress.update()
    except BaseException as err:
        stopped = f'{type(err).__name__}: {err}'.strip().rstrip(':')
        raise
    finally:
        if rows and stopped:
            paths = _write(rows, out_dir, quality,
                           f'{title}; stopped after {len(rows)} of {len(skips)} sub-networks ({stopped})')
            print(f'\nwritten what was measured: {", ".join(paths.values())}', file=sys.stderr)
    title += _format_note(rows[0])
    if rows[0].get('runtime_model'):
        title += f'; the whole detector\'s ONNX model: {rows[0]["runtime_model"]}'
    if len(rows) > 1:  # measure_subnets has re-timed every row, interleaved
        paths = _write(rows, out_dir, quality, f'{title}; latencies timed in rounds over all sub-networks')
    return rows, paths
