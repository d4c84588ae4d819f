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
``early_exit.json`` to DIR (``mmadn.imta.early_exit_timing``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.apis import add_model_arguments, at_least, check_device  # noqa: E402
from mmadn.imta.early_exit_timing import benchmark_early_exit, write_early_exit_report  # noqa: E402
from mmadn.imta.loading import load_for_budgets  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, device=True)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--qs', type=float, nargs='+', default=[0.5, 1.0, 2.0], help='budget parameters q')
    parser.add_argument('--batch-size', type=at_least(1), default=300, help='test images per call (default 300)')
    parser.add_argument('--repeats', type=at_least(1), default=5, help='timed runs of each mode per q (default 5)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: unchanged)')
    args = parser.parse_args()
    check_device(parser, args.device)
    return args


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, model = load_for_budgets(args.config, args.checkpoint, args.device, args.cfg_options)
    result = benchmark_early_exit(model, cfg, args.qs, args.batch_size, args.repeats, args.device)
    table = write_early_exit_report(args.out_dir, result, dict(
        batch_size=args.batch_size, repeats=args.repeats, device=str(args.device), threads=torch.get_num_threads()))
    flops, segments = result['exit_flops'], result['exit_seconds_all_images']
    print(f'{result["num_images"]} test images in batches of {args.batch_size}, {args.repeats} timed runs per mode, '
          f'{torch.get_num_threads()} threads on {args.device}; all exits: {flops[-1] / 1e6:.3f} MFLOPs per image\n')
    time_share = ' / '.join(f'{t / segments[-1]:.3f}' for t in segments)
    flop_share = ' / '.join(f'{f / flops[-1]:.3f}' for f in flops)
    print(f'cumulative share per exit, all images running: of the time {time_share}; of the FLOPs {flop_share}\n')
    print(table)
    if not all(r['predictions_match_simulation'] for r in result['rows']):
        print('early exit disagrees with the simulated evaluation on some images (see "same as simulated"): with '
              'float32, a confidence within rounding of its threshold can fall on either side')


if __name__ == '__main__':
    main()
