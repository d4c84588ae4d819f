"""Real early exit against running every exit, measured (``tools/imta/early_exit_benchmark.py``): wall-clock per
image, expected FLOPs, and the time those FLOPs predict.

For every budget parameter q the exit thresholds are fitted on the config's ``holdout_dataloader`` (as the budgeted
evaluation does), then the test set (preprocessed once, held in memory, re-batched) is run with every exit (the
simulated evaluation's cost) and with real early exit (:func:`~mmadn.imta.early_exit_predict`: samples that leave
stop flowing through later blocks), the two in alternation, so that a drift of the machine's speed hits both
alike. To tell the two causes of a gap apart, every block + exit is also timed with all images running: the
prediction those times make leaves out only the cost of splitting the batch.
"""
import json
import os
import os.path as osp
import statistics
from itertools import accumulate
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.runner import Runner

from mmadn.utils.timing import timed_call
from .budgeted import confidence_and_correct, exit_fractions, exit_taken, fit_thresholds
from .complexity import exit_costs
from .early_exit import all_exit_scores, early_exit_predict


def preprocessed(model, loader) -> Tuple[torch.Tensor, torch.Tensor]:
    """The whole split through the model's data preprocessor: (inputs N x C x H x W, labels N)."""
    inputs, labels = [], []
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs.append(data['inputs'])
            labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(inputs), torch.cat(labels).cpu()


def timed(fn: Callable, batches: Sequence[torch.Tensor], device) -> Tuple[float, List]:
    """Seconds to run ``fn`` over every batch (CUDA-synchronised), and its outputs."""
    ms, outputs = timed_call(lambda: [fn(b) for b in batches], device)
    return ms / 1e3, outputs


@torch.no_grad()
def segment_seconds(model, batches, device, repeats: int) -> List[float]:
    """Seconds each block + its exit takes with every image running (median of ``repeats``): where the time of
    all exits goes, block by block, to compare with where the FLOPs go."""

    def block_and_exit(i, block, feats, previous):
        feats = block(feats)
        previous, _ = model.head.exit_forward(i, feats[-1], previous)
        torch.softmax(previous, dim=1).max(dim=1)
        return feats, previous

    runs = []
    for _ in range(repeats):
        seconds = [0.0] * len(model.head.exits)
        for inputs in batches:
            feats, previous = inputs, None
            for i, block in enumerate(model.backbone.blocks):
                ms, (feats, previous) = timed_call(lambda: block_and_exit(i, block, feats, previous), device)
                seconds[i] += ms / 1e3
        runs.append(seconds)
    return [statistics.median(r[i] for r in runs) for i in range(len(runs[0]))]


def benchmark_early_exit(model, cfg, qs: Sequence[float], batch_size: int = 300, repeats: int = 5,
                         device='cpu') -> Dict:
    """Every q's row (thresholds, exit shares, accuracy, expected FLOPs, measured and predicted ms per image, their
    ratios, the speed-up, agreement with the simulated evaluation), with the test set's size, every exit's
    cumulative FLOPs and seconds (all images running)."""
    val_inputs, _ = preprocessed(model, Runner.build_dataloader(cfg.holdout_dataloader))
    test_inputs, test_labels = preprocessed(model, Runner.build_dataloader(cfg.test_dataloader))
    n = test_inputs.size(0)
    val_scores = torch.cat([all_exit_scores(model, b) for b in val_inputs.split(batch_size)])
    val_conf, _ = confidence_and_correct(val_scores.float().cpu().numpy(), np.zeros(len(val_scores)))
    flops = exit_costs(model, tuple(test_inputs.shape[1:]))[0]
    batches = test_inputs.split(batch_size)
    num_exits = len(flops)

    # warm-up, and the simulated evaluation's inputs: every exit's scores on the test set
    _, sim = timed(lambda b: all_exit_scores(model, b), batches, device)
    sim_scores = torch.cat(sim).float().cpu()
    test_conf, test_correct = confidence_and_correct(sim_scores.numpy(), test_labels.numpy())

    segments = list(accumulate(segment_seconds(model, batches, device, repeats)))  # cumulative, per exit
    rows = []
    for q in qs:
        thresholds = fit_thresholds(val_conf, exit_fractions(q, num_exits))
        timed(lambda b: early_exit_predict(model, b, thresholds), batches, device)  # warm-up
        all_s, early_s = [], []
        for _ in range(repeats):  # alternate, so that a drift of the machine's speed hits both alike
            all_s.append(timed(lambda b: all_exit_scores(model, b), batches, device)[0])
            seconds, outs = timed(lambda b: early_exit_predict(model, b, thresholds), batches, device)
            early_s.append(seconds)
        exits = torch.cat([o['exits'] for o in outs]).cpu()
        preds = torch.cat([o['scores'].argmax(1) for o in outs]).cpu()
        sim_exit = torch.from_numpy(exit_taken(test_conf, thresholds))
        differ = int(((exits != sim_exit) | (preds != sim_scores[torch.arange(n), sim_exit].argmax(1))).sum())
        shares = (torch.bincount(exits, minlength=num_exits).double() / n).tolist()
        expected = float(np.dot(shares, flops))
        ms, ms_all = statistics.median(early_s) * 1e3 / n, statistics.median(all_s) * 1e3 / n
        predicted = ms_all * expected / flops[-1]
        # the same prediction with each exit's measured time (all images running) in place of its FLOPs
        by_time = float(np.dot(shares, segments)) * 1e3 / n
        rows.append(dict(
            q=q, thresholds=[float(t) for t in thresholds], exit_shares=shares,
            accuracy=float((preds == test_labels).double().mean() * 100),
            simulated_accuracy=float(test_correct[sim_exit.numpy(), np.arange(n)].mean() * 100),
            expected_flops=expected, ms_per_image=ms,
            ms_per_image_spread=[min(early_s) * 1e3 / n, max(early_s) * 1e3 / n],
            all_exits_ms_per_image=ms_all, all_exits_ms_per_image_spread=[min(all_s) * 1e3 / n, max(all_s) * 1e3 / n],
            predicted_ms_per_image=predicted, measured_over_predicted=ms / predicted, speedup=ms_all / ms,
            # the fastest repeat of each mode: the least disturbed by other processes on a shared machine
            measured_over_predicted_fastest=min(early_s) / (min(all_s) * expected / flops[-1]),
            predicted_from_exit_times_ms_per_image=by_time, measured_over_predicted_from_exit_times=ms / by_time,
            predictions_match_simulation=differ == 0, images_differing_from_simulation=differ))
    return dict(num_images=n, exit_flops=flops, exit_seconds_all_images=segments, rows=rows)


def early_exit_table(rows: List[Dict], flops: Sequence[float]) -> str:
    """The rows as a Markdown table."""
    head = ['q', 'expected MFLOPs', 'share of FLOPs', 'ms / image (min-max)', 'all exits ms / image (min-max)',
            'predicted ms / image', 'measured / predicted (fastest runs)', 'measured / predicted from exit times',
            'speed-up', 'top-1 (%)', 'same as simulated'] + [f'exit {i + 1} share' for i in range(len(flops))]
    md = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for r in rows:
        lo, hi = r['ms_per_image_spread']
        alo, ahi = r['all_exits_ms_per_image_spread']
        md.append('| ' + ' | '.join([
            f"{r['q']:.2f}", f"{r['expected_flops'] / 1e6:.3f}", f"{r['expected_flops'] / flops[-1]:.3f}",
            f"{r['ms_per_image']:.4f} ({lo:.4f}-{hi:.4f})", f"{r['all_exits_ms_per_image']:.4f} ({alo:.4f}-{ahi:.4f})",
            f"{r['predicted_ms_per_image']:.4f}",
            f"{r['measured_over_predicted']:.3f} ({r['measured_over_predicted_fastest']:.3f})",
            f"{r['measured_over_predicted_from_exit_times']:.3f}", f"{r['speedup']:.2f}",
            f"{r['accuracy']:.2f}",
            'yes' if r['predictions_match_simulation'] else f"NO ({r['images_differing_from_simulation']} images)"] +
            [f'{s:.3f}' for s in r['exit_shares']]) + ' |')
    return '\n'.join(md) + '\n'


def write_early_exit_report(out_dir: str, result: Dict, settings: Dict) -> str:
    """Write ``early_exit.md`` (the table) and ``early_exit.json`` (``result``'s figures after the run's
    ``settings``: batch size, repeats, device, threads) to ``out_dir``; returns the table."""
    table = early_exit_table(result['rows'], result['exit_flops'])
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'early_exit.md'), 'w') as f:
        f.write(table)
    with open(osp.join(out_dir, 'early_exit.json'), 'w') as f:
        json.dump(dict(num_images=result['num_images'], **settings, exit_flops=result['exit_flops'],
                       exit_seconds_all_images=result['exit_seconds_all_images'], rows=result['rows']), f, indent=1)
    return table
