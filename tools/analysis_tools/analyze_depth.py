"""See why an ADN model works (or why its base-net does not): the ADN paper's depth analyses of one checkpoint.

    python tools/analysis_tools/analyze_depth.py CONFIG CHECKPOINT [--out-dir DIR] [--table subnets.json]
        [--skips FFFF TTFF ...] [--stage 3] [--num-images 4] [--kl-images N] [--title TEXT]
        [--device cpu|cuda] [--cfg-options ...]

For a classifier (mmpretrain) or a detector (mmdet) with an ADN backbone, writes to the output directory:

- ``subnet_quality.png``: the config's test metric (top-1, bbox mAP) of every sub-network (the paper's Fig. 3a),
  from the config's own test loop, or from a ``benchmark_subnets.py`` report given with ``--table`` (or the
  ``depth_analysis.json`` of an earlier run: the other analyses again, e.g. another ``--stage``, without
  evaluating every sub-network again);
- ``norm_distance.png``: per stage, how far each twin norm's running mean is from its shared norm's (Fig. 3b);
- ``stage_divergence.png``: on the test images, the KL and relative distance between the super-net's and the
  base-net's stage outputs (the premise of the method), beside the sub-network skipping only that stage;
- ``gradcam_<stage>.png``: Grad-CAM of every block of ``--stage`` (1-based, default 3) for the super-net and the
  base-net on the first ``--num-images`` test images (Fig. 4);
- ``depth_analysis.json``: every number of the figures.

Every argument is checked before the model is built (``mmadn.apis.check_adn_model``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.analysis.depth_analysis import analyze_depth, read_subnet_table, write_depth_report  # noqa: E402
from mmadn.apis import add_model_arguments, at_least, build_eval_runner, check_adn_model  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='Depth analyses of an ADN checkpoint (sub-network quality, twin '
                                     'norms, stage divergence, Grad-CAM)')
    add_model_arguments(parser, device=True)
    parser.add_argument('--out-dir', help='default: work_dirs/<config>/depth_analysis')
    parser.add_argument('--table', help='subnets.json of benchmark_subnets.py (or an earlier depth_analysis.json): '
                        'take the sub-networks\' quality from it instead of evaluating them')
    parser.add_argument('--skips', nargs='+', help='sub-networks to evaluate, e.g. FFFF ttff base (default: all)')
    parser.add_argument('--stage', type=at_least(1), default=3, help='stage whose blocks Grad-CAM shows (1-based)')
    parser.add_argument('--num-images', type=at_least(1), default=4, help='test images of the Grad-CAM grid')
    parser.add_argument('--kl-images', type=at_least(1), help='test images of the stage divergence (default: all)')
    parser.add_argument('--title', help='title of the figures (default: the config and the checkpoint)')
    return parser


def check_args(parser, args):
    """This tool's own checks and the model's (``check_adn_model``), before the runner is built, or
    ``parser.error``."""
    if args.table and args.skips:
        parser.error('--skips chooses the sub-networks to evaluate and --table gives their quality already: '
                     'give one of them.')
    if args.table:
        try:
            read_subnet_table(args.table)
        except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
            parser.error(str(err))
    checked = check_adn_model(parser, args)
    stages = checked.backbone.stage_module_names()
    if args.stage > len(stages):
        parser.error(f'--stage {args.stage}: {type(checked.backbone).__name__} has {len(stages)} stages ({stages}); '
                     f'give 1..{len(stages)}.')
    return checked


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    checked = check_args(parser, args)
    out_dir = args.out_dir or osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0], 'depth_analysis')
    runner = build_eval_runner(checked.cfg, args.checkpoint, osp.join(out_dir, 'runner'), device=args.device)
    results = analyze_depth(runner, checked.task, checked.skips, args.table, args.stage - 1, args.num_images,
                            args.kl_images)
    checkpoint = osp.join(osp.basename(osp.dirname(osp.abspath(args.checkpoint))), osp.basename(args.checkpoint))
    paths = write_depth_report(results, out_dir, args.title or f'{osp.basename(args.config)}: {checkpoint}')
    print(summary(results))
    print('written: ' + ', '.join(paths.values()))


def summary(results) -> str:
    subnets = results['subnets']
    key = subnets['quality_key']
    lines = [f'{key} per sub-network ({subnets["source"]}):']
    lines += [f'  {r["skip"]}  {r[key]:.4g}' for r in subnets['rows']]
    lines.append('twin vs shared norm, mean |mu_shared - mu_twin| per layer (first layer first):')
    by_stage = {}
    for row in results['norm_distance']['layers']:
        by_stage.setdefault(row['stage_name'] or 'outside the stages', []).append(row)
    for name, rows in by_stage.items():
        untrained = sum(r['twin_updates'] == 0 for r in rows)
        lines.append(f'  {name}: ' + ' '.join(f'{r["mean_abs"]:.4g}' for r in rows)
                     + (f'  ({untrained} twins never updated)' if untrained else ''))
    for check_key, checks in results['norm_distance']['first_layer_check'].items():
        met = [c['stage_name'] for c in checks if c['first_below_inner']]
        lines.append(f'  first layer below the inner layers ({check_key}): {len(met)} of {len(checks)} stages'
                     + (f' ({", ".join(met)})' if met else ''))
    lines.append('super-net vs base-net stage outputs on the test images:')
    for row in results['stage_divergence']:
        kls = ' '.join(f'{k}={v:.4g}' for k, v in row.items() if k not in ('stage', 'module'))
        lines.append(f'  {row["module"]}: {kls}')
    for pair, value in results['gradcam']['similarity'].items():
        lines.append(f'Grad-CAM correlation, {pair}: ' + ('no image with both maps non-zero' if value is None else
                                                          f'{value:.3f}'))
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
