"""The measuring loop of ``tools/analysis_tools/benchmark_subnets.py``: one model, loaded once, every depth."""
import itertools
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch

from mmadn.models import adaptive_backbones, recalibrated, subnet
from mmadn.models.utils.adaptive_depth import parse_skip, skip_to_str
from .measure import active_parameters, count_flops, latency_stats, measure_latency, peak_memory, time_once

QUALITY_KEYS = {'detection': ('coco/bbox_mAP', 'coco/segm_mAP'), 'classification': ('accuracy/top1', 'accuracy/top5')}


def canonical_skips(skips: Sequence, num_flags: int, owner: str = 'the backbone') -> List[str]:
    """The T/F form of every skip (``'ttff'`` -> ``'TTFF'``, ``'super'`` -> ``'FFFF'``), duplicates dropped;
    raises the backbone's ValueError for an invalid one."""
    return list(dict.fromkeys(skip_to_str(parse_skip(s, num_flags, owner)) for s in skips))


def first_batch(runner, batch_size: int) -> dict:
    batch = next(iter(runner.test_dataloader))
    batch = {k: v[:batch_size] for k, v in batch.items()}
    return runner.model.data_preprocessor(batch, False)


def recalibration_batches(runner, num: int) -> List:
    """``num`` training batches (fewer if the loader has fewer), taken once so that every row uses the same."""
    return list(itertools.islice(iter(runner.train_dataloader), num))


def measure_subnets(runner,
                    skips: Sequence[str],
                    task: str,
                    device: torch.device,
                    batch_size: int = 1,
                    warmup: int = 3,
                    runs: int = 10,
                    batches: Optional[List] = None) -> Iterator[Dict]:
    """Yield one row of measurements per sub-network of ``runner.model``.

    The checkpoint (``runner``'s ``load_from``) is loaded once, before the first row: loading it inside a row's
    recalibration would let that row run on the checkpoint's statistics, and the context's exit would then
    restore the statistics from before the load for every later row. While the caller handles a row, its
    sub-network is active (with its recalibrated statistics when ``batches`` is given), e.g. to export it.

    Once every row is out, the latencies of the rows already yielded are measured again, interleaved (each round
    times every sub-network once): a machine whose speed drifts during the run then slows every depth alike, so
    the latencies of one run can be compared (the rows are updated in place; the caller writes its report again).
    """
    model = runner.model
    runner.call_hook('before_run')
    runner.load_or_resume()
    model.to(device).eval()
    backbone = adaptive_backbones(model)[0]
    data = first_batch(runner, batch_size)
    inputs, samples = data['inputs'].to(device), data['data_samples']

    def predict():
        return model(inputs, samples, mode='predict')

    rows = []
    try:
        for skip in skips:
            context = recalibrated(model, batches, skip) if batches else subnet(model, skip)
            with context:
                metrics = runner.test_loop.run()
                model.to(device).eval()
                row = dict(skip=skip, blocks=len(backbone.active_blocks()))
                for key in QUALITY_KEYS[task]:
                    if key in metrics:
                        row[key.split('/')[-1]] = float(metrics[key])
                row['params_m'] = active_parameters(model, predict) / 1e6
                row['gflops'] = count_flops(model, lambda x: model(x, samples, mode='tensor'), inputs) / 1e9
                row['backbone_gflops'] = count_flops(model, model.backbone, inputs) / 1e9
                row.update({f'latency_{k}': v for k, v in measure_latency(predict, device, warmup, runs).items()})
                row['latency_ms'] = row.pop('latency_median_ms')
                row['backbone_latency_ms'] = measure_latency(lambda: model.backbone(inputs), device, warmup,
                                                             runs)['median_ms']
                with torch.no_grad():
                    row['peak_mem_mib'] = peak_memory(predict, device)
                yield row
                rows.append(row)
        if len(rows) > 1:
            interleave_latencies(rows, model, {'latency': predict, 'backbone_latency': lambda: model.backbone(inputs)},
                                 device, warmup, runs)
    finally:
        runner.call_hook('after_run')


@torch.no_grad()
def interleave_latencies(rows: List[Dict], model, fns: Dict[str, Callable], device: torch.device, warmup: int,
                         runs: int) -> None:
    """Set ``<key>_ms`` (and ``latency_p90_ms``, ``latency_samples_ms``) of every row from ``runs`` rounds that
    time each sub-network once."""
    for key, fn in fns.items():
        times = {row['skip']: [] for row in rows}
        for round_index in range(warmup + runs):
            for row in rows:
                with subnet(model, row['skip']):
                    elapsed = time_once(fn, device)
                if round_index >= warmup:
                    times[row['skip']].append(elapsed)
        for row in rows:
            stats = latency_stats(times[row['skip']])
            row[f'{key}_ms'] = stats['median_ms']
            if key == 'latency':
                row['latency_p90_ms'] = stats['p90_ms']
                row['latency_samples_ms'] = stats['samples_ms']
