"""Where a new depth starts, measured: ``python tools/odn/compare_depth_init.py CONFIG [--seeds 0 1] [--work-dir DIR]``.

Trains CONFIG with ``tools/train.py`` once per seed and per way of starting a new depth (issue 18, item 6):
``warmup`` (``train_cfg.restart_from_warmup=True``: every new depth from the warm-up weights, as the authors'
notebooks) and ``continue`` (``False``: from the weights the previous depth ended with, "as the earlier blocks
converge" in the paper). Then writes DIR/compare.md (chosen depth, best accuracy, the epoch, the training compute
and the seconds at which ``target - tolerance`` was reached, the same in all, per run and the mean per mode;
compute counts every epoch as the forward FLOPs of the depth it trained, in epochs of the full network, the
warm-up as full depth: it does not depend on the machine's load as seconds do), DIR/compare.json
and DIR/compare.png (every run's decisions, drawn by mmadn.odn.report.plot_expansion).
Runs that finished before are reused (``--retrain`` trains them again).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from statistics import mean

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmadn.odn.report import RESULT_FILE, expansion_summary, load_result, plot_expansion  # noqa: E402


def level_costs(config, input_size):
    """Forward FLOPs of every depth level of CONFIG's model as a fraction of the full network's."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import mmadn  # noqa: F401 (registers the ODN modules)
    from mmadn.odn import extracted_model_cfg, model_stats

    cfg = Config.fromfile(config)
    DefaultScope.get_instance('odn_compare', scope_name='mmpretrain')
    channels = cfg.model.backbone.get('in_channels', 3)
    levels = MODELS.build(cfg.model).num_levels
    flops = {d: model_stats(MODELS.build(extracted_model_cfg(cfg.model, d)), (channels, *input_size))['flops']
             for d in range(1, levels + 1)}
    return {d: f / flops[levels] for d, f in flops.items()}


def compute_used(result, costs):
    """Training compute until the target was reached and in all, in epochs of the full network.

    Each epoch counts the forward FLOPs of the depth it trained (the warm-up: the full depth).
    """
    used, to_target = 0.0, None
    for h in result['history']:
        used += costs[h['level']]
        if h['action'] == 'finetune' and to_target is None:
            to_target = used
    return to_target, used

MODES = {'warmup': True, 'continue': False}


def train(config, work_dir, restart, seed, cfg_options, retrain):
    result_file = osp.join(work_dir, RESULT_FILE)
    if not retrain and osp.isfile(result_file) and json.load(open(result_file)).get('finished'):
        print(f'reusing {work_dir}')
        return
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir, '--cfg-options',
           f'train_cfg.restart_from_warmup={restart}', f'randomness.seed={seed}', *cfg_options]
    print(' '.join(cmd), flush=True)
    with open(osp.join(work_dir + '.log'), 'w') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        raise SystemExit(f'training failed (exit {code}); see {work_dir}.log')


def fmt(value, spec='.1f'):
    return '-' if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--modes', nargs='+', choices=sorted(MODES), default=list(MODES))
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/<config name>_depth_init')
    parser.add_argument('--retrain', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='more key=value overrides for every run (the '
                        'compute column counts the FLOPs of the config as written)')
    parser.add_argument('--shape', type=int, nargs=2, default=(32, 32), metavar=('H', 'W'),
                        help='input size for the compute column')
    args = parser.parse_args()
    name = osp.splitext(osp.basename(args.config))[0]
    work_root = args.work_dir or osp.join('work_dirs', f'{name}_depth_init')
    os.makedirs(work_root, exist_ok=True)

    runs = {}
    for seed in args.seeds:
        for mode in args.modes:
            work_dir = osp.join(work_root, f'{mode}_seed{seed}')
            os.makedirs(work_dir, exist_ok=True)
            train(args.config, work_dir, MODES[mode], seed, args.cfg_options, args.retrain)
            runs[(mode, seed)] = load_result(work_dir)

    costs = level_costs(args.config, args.shape)
    summaries = {}
    for (mode, seed), r in runs.items():
        s = summaries[f'{mode}, seed {seed}'] = expansion_summary(r)
        s['compute_to_target'], s['compute'] = compute_used(r, costs)
    lines = [
        '| new depth starts from | seed | chosen depth | best val. acc. | best per depth | target reached: '
        'epoch | target reached: compute | target reached: s | epochs | compute | total s |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for (mode, seed), r in runs.items():
        s = summaries[f'{mode}, seed {seed}']
        per_depth = ', '.join(f'{d["depth"]}: {d["best"]:.2f}' for d in s['depths'])
        lines.append(f'| {mode} | {seed} | {s["depth"]} of {s["num_levels"]} | {fmt(s["accuracy"], ".2f")} | '
                     f'{per_depth} | {fmt(s["target_reached_epoch"], "d")} | {fmt(s["compute_to_target"])} | '
                     f'{fmt(s["target_reached_s"])} | {s["epochs"]} | {fmt(s["compute"])} | {fmt(s["total_s"])} |')
    for mode in args.modes:
        group = [summaries[f'{mode}, seed {seed}'] for seed in args.seeds]
        reached = [s for s in group if s['target_reached_epoch'] is not None]

        def avg(key, items):
            values = [s[key] for s in items if s[key] is not None]
            return mean(values) if values else None

        lines.append(f'| **{mode}, mean** | {len(group)} seeds | {fmt(avg("depth", group), ".2f")} | '
                     f'{fmt(avg("accuracy", group), ".2f")} | reached in {len(reached)} of {len(group)} | '
                     f'{fmt(avg("target_reached_epoch", reached))} | {fmt(avg("compute_to_target", reached))} | '
                     f'{fmt(avg("target_reached_s", reached))} | {fmt(avg("epochs", group))} | '
                     f'{fmt(avg("compute", group))} | {fmt(avg("total_s", group))} |')
    table = '\n'.join(lines) + '\n'
    with open(osp.join(work_root, 'compare.md'), 'w') as f:
        f.write(table)
    with open(osp.join(work_root, 'compare.json'), 'w') as f:
        json.dump(summaries, f, indent=1)
    plot_expansion({label: runs[key] for label, key in zip(summaries, runs)}, osp.join(work_root, 'compare.png'))
    print(table)
    print(f'wrote {work_root}/compare.md, compare.json, compare.png')


if __name__ == '__main__':
    main()
