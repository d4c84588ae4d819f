"""Measure real early exit against running every exit: wall-clock per image, expected FLOPs, and what they predict.

    python tools/imta/early_exit_benchmark.py CONFIG CHECKPOINT --out-dir DIR [--qs 0.5 1 2] [--batch-size 300]
        [--repeats 5] [--threads N] [--device cpu|cuda] [--cfg-options k=v ...]

For every budget parameter q the exit thresholds are fitted on the config's ``holdout_dataloader`` (as
``evaluate_budgets.py`` does), then the test set (preprocessed once, held in memory, re-batched to
``--batch-size``) is run twice, in alternation, ``--repeats`` times: with every exit (the simulated evaluation's
cost) and with real early exit (``mmadn.imta.early_exit_predict``: samples that leave stop flowing through later
blocks). Reported per q: the share of images per exit, expected FLOPs per image (shares x cumulative FLOPs of
mmengine's count), measured milliseconds per image (median of the repeats, and their min-max spread), the time the
FLOPs predict (all exits' time x expected FLOPs / all exits' FLOPs), measured / predicted (from the medians, and
from the fastest repeat of each mode, the least disturbed on a shared machine), the speed-up over all
exits, and whether every prediction and exit equals the simulated evaluation's. To tell the two causes of a gap
apart, it also times every block + exit with all images running and gives the prediction those times make (the
part of the gap that is not in it is the cost of splitting the batch). Writes ``early_exit.md`` and
``early_exit.json`` to DIR.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from itertools import accumulate

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.imta import (all_exit_scores, confidence_and_correct, early_exit_predict, exit_costs,  # noqa: E402
                        exit_fractions, exit_taken, fit_thresholds)
from mmadn.imta.loading import load_for_budgets  # noqa: E402
from mmadn.utils.timing import timed_call  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--qs', type=float, nargs='+', default=[0.5, 1.0, 2.0], help='budget parameters q')
    parser.add_argument('--batch-size', type=int, default=300, help='test images per call (default 300)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of each mode per q (default 5)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: unchanged)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, k=v')
    args = parser.parse_args()
    if args.batch_size < 1 or args.repeats < 1:
        parser.error('--batch-size and --repeats must be >= 1')
    return args


def preprocessed(model, loader):
    """The whole split through the model's data preprocessor: (inputs N x C x H x W, labels N)."""
    inputs, labels = [], []
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs.append(data['inputs'])
            labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(inputs), torch.cat(labels).cpu()


def timed(fn, batches, device):
    """Seconds to run ``fn`` over every batch (CUDA-synchronised), and its outputs."""
    ms, outputs = timed_call(lambda: [fn(b) for b in batches], device)
    return ms / 1e3, outputs


@torch.no_grad()
def segment_seconds(model, batches, device, repeats):
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


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, model = load_for_budgets(args.config, args.checkpoint, args.device, args.cfg_options)

    val_inputs, _ = preprocessed(model, Runner.build_dataloader(cfg.holdout_dataloader))
    test_inputs, test_labels = preprocessed(model, Runner.build_dataloader(cfg.test_dataloader))
    n = test_inputs.size(0)
    val_scores = torch.cat([all_exit_scores(model, b) for b in val_inputs.split(args.batch_size)])
    val_conf, _ = confidence_and_correct(val_scores.float().cpu().numpy(), np.zeros(len(val_scores)))
    flops = exit_costs(model, tuple(test_inputs.shape[1:]))[0]
    batches = test_inputs.split(args.batch_size)
    num_exits = len(flops)

    # warm-up, and the simulated evaluation's inputs: every exit's scores on the test set
    _, sim = timed(lambda b: all_exit_scores(model, b), batches, args.device)
    sim_scores = torch.cat(sim).float().cpu()
    test_conf, test_correct = confidence_and_correct(sim_scores.numpy(), test_labels.numpy())

    segments = list(accumulate(segment_seconds(model, batches, args.device, args.repeats)))  # cumulative, per exit
    rows = []
    for q in args.qs:
        thresholds = fit_thresholds(val_conf, exit_fractions(q, num_exits))
        timed(lambda b: early_exit_predict(model, b, thresholds), batches, args.device)  # warm-up
        all_s, early_s = [], []
        for _ in range(args.repeats):  # alternate, so that a drift of the machine's speed hits both alike
            all_s.append(timed(lambda b: all_exit_scores(model, b), batches, args.device)[0])
            seconds, outs = timed(lambda b: early_exit_predict(model, b, thresholds), batches, args.device)
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

    head = ['q', 'expected MFLOPs', 'share of FLOPs', 'ms / image (min-max)', 'all exits ms / image (min-max)',
            'predicted ms / image', 'measured / predicted (fastest runs)', 'measured / predicted from exit times',
            'speed-up',
            'top-1 (%)', 'same as simulated'] + \
        [f'exit {i + 1} share' for i in range(num_exits)]
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
    table = '\n'.join(md) + '\n'
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'early_exit.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out_dir, 'early_exit.json'), 'w') as f:
        json.dump(dict(num_images=n, batch_size=args.batch_size, repeats=args.repeats, device=str(args.device),
                       threads=torch.get_num_threads(), exit_flops=flops,
                       exit_seconds_all_images=segments, rows=rows), f, indent=1)
    print(f'{n} test images in batches of {args.batch_size}, {args.repeats} timed runs per mode, '
          f'{torch.get_num_threads()} threads on {args.device}; all exits: {flops[-1] / 1e6:.3f} MFLOPs per image\n')
    time_share = ' / '.join(f'{t / segments[-1]:.3f}' for t in segments)
    flop_share = ' / '.join(f'{f / flops[-1]:.3f}' for f in flops)
    print(f'cumulative share per exit, all images running: of the time {time_share}; of the FLOPs {flop_share}\n')
    print(table)
    if not all(r['predictions_match_simulation'] for r in rows):
        print('early exit disagrees with the simulated evaluation on some images (see "same as simulated"): with '
              'float32, a confidence within rounding of its threshold can fall on either side')


if __name__ == '__main__':
    main()
