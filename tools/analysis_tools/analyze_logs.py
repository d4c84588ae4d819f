"""Training curves and training time from mmengine's scalar logs (mmdet's tools/analysis_tools/analyze_logs.py).

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...] [--keys loss loss_kl_neck ...]
        [--legend NAME ...] [--out curves.png] [--title TITLE]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG [LOG ...]

LOG is a ``vis_data/scalars.json`` that mmengine's LocalVisBackend writes (one JSON dict per logged step), or a
work dir / run dir holding one (its latest run is taken). By default every loss of the training lines is drawn,
the KL terms of Algorithm 1 (``loss_kl_*``) included, one panel per key, against the iteration; a key of the
validation lines (e.g. ``accuracy/top1``, ``coco/bbox_mAP``) is drawn at the steps it was evaluated. Several logs
are drawn into the same panels (``--legend`` names them). mmdet's version reads epoch-based logs only; this one
reads iteration- and epoch-based logs alike.
"""
import argparse
import glob
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np


def find_scalars(path: str) -> str:
    """``path`` itself if it is a file, else the newest ``**/vis_data/scalars.json`` under it."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such log file or directory')
    found = glob.glob(osp.join(path, 'vis_data', 'scalars.json')) + \
        glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'), recursive=True)
    if not found:
        raise FileNotFoundError(f'{path} holds no vis_data/scalars.json (mmengine writes it with the default '
                                "visualizer's LocalVisBackend); give the file itself")
    return max(set(found), key=osp.getmtime)


def load_log(path: str) -> Tuple[Dict[str, List[Tuple[float, float]]], Dict[str, List[Tuple[float, float]]]]:
    """Per key, the (step, value) points of the training lines and of the other (validation) lines."""
    train, val = defaultdict(list), defaultdict(list)
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}, line {number}: not a JSON line ({err}); is this an mmengine '
                                 'scalars.json?') from None
            step = record.get('iter', record.get('step'))
            if step is None:
                continue
            into = train if 'lr' in record else val  # mmengine logs the learning rate with every training line
            for key, value in record.items():
                if key not in ('iter', 'step', 'epoch') and isinstance(value, (int, float)):
                    into[key].append((float(step), float(value)))
    if not train and not val:
        raise ValueError(f'{path} holds no logged step')
    return dict(train), dict(val)


def default_keys(logs) -> List[str]:
    keys = dict.fromkeys(k for train, _ in logs for k in train if k.startswith('loss'))
    return sorted(keys, key=lambda k: (k != 'loss', k))  # the total first


def plot_curve(args) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    paths = [find_scalars(p) for p in args.logs]
    logs = [load_log(p) for p in paths]
    keys = args.keys or default_keys(logs)
    if not keys:
        raise ValueError('no loss key in the training lines; name the keys to draw with --keys')
    legend = args.legend or [osp.relpath(p) for p in paths]
    if len(legend) != len(paths):
        raise ValueError(f'--legend has {len(legend)} names for {len(paths)} logs')
    missing = [k for k in keys if not any(k in train or k in val for train, val in logs)]
    if missing:
        known = sorted({k for train, val in logs for k in list(train) + list(val)})
        raise ValueError(f'--keys {" ".join(missing)}: not in the logs; they hold {", ".join(known)}')
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for (train, val), name in zip(logs, legend):
            points = train.get(key) or val.get(key)
            if not points:
                continue
            steps, values = np.array(points).T
            ax.plot(steps, values, marker='o' if key not in train else None, markersize=3, label=name)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if len(paths) > 1:
            ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    return args.out


def cal_train_time(args) -> None:
    for path in (find_scalars(p) for p in args.logs):
        train, _ = load_log(path)
        if 'time' not in train:
            raise ValueError(f'{path}: the training lines have no "time" key')
        steps, times = np.array(train['time']).T
        print(f'{"-" * 5}Analyze train time of {path}{"-" * 5}')
        print(f'logged steps: {len(times)} (iterations {int(steps[0])}-{int(steps[-1])})')
        print(f'slowest logged step: iteration {int(steps[times.argmax()])}, {times.max():.4f} s / iter')
        print(f'fastest logged step: iteration {int(steps[times.argmin()])}, {times.min():.4f} s / iter')
        print(f'time std over logged steps: {times.std():.4f}')
        print(f'average time per iteration: {times.mean():.4f} s')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyze mmengine training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='draw training curves (PNG)')
    plot.add_argument('logs', nargs='+', help='scalars.json files or work dirs')
    plot.add_argument('--keys', nargs='+', help='keys to draw (default: every loss, the KL terms included)')
    plot.add_argument('--legend', nargs='+', help='a name per log')
    plot.add_argument('--title', help='title of the figure')
    plot.add_argument('--out', default='curves.png', help='PNG file to write (default: curves.png)')
    timing = sub.add_parser('cal_train_time', help='time per training iteration')
    timing.add_argument('logs', nargs='+', help='scalars.json files or work dirs')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.task == 'plot_curve':
            print(f'written: {plot_curve(args)}')
        else:
            cal_train_time(args)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'analyze_logs.py: {err}') from None


if __name__ == '__main__':
    main()
