"""Evaluate a checkpoint of a detector (mmdet config) or classifier (mmpretrain config).

``python tools/test.py CONFIG CHECKPOINT [--cfg-options model.backbone.skip=TTFF] [--out FILE.pkl]
[--show-dir DIR] [--work-dir DIR] [--launcher none|pytorch|slurm|mpi]``: any sub-network of an ADN model is
evaluated by choosing its skip string.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.evaluator import DumpResults  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.apis import (add_data_check_argument, add_launcher_arguments, add_model_arguments,  # noqa: E402
                        build_runner, export_local_rank, set_launcher, set_work_dir)
from mmadn.utils import load_config, preflight_datasets, task_of  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    add_model_arguments(parser, config_help='test config file path')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    add_launcher_arguments(parser)
    add_data_check_argument(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def enable_visualization(cfg, args, task: str) -> None:
    if 'visualization' not in cfg.default_hooks:
        raise RuntimeError('VisualizationHook must be included in default_hooks; refer to usage '
                           '"visualization=dict(type=\'VisualizationHook\')"')
    hook = cfg.default_hooks.visualization
    if task == 'detection':
        hook.draw = True
        if args.show_dir:
            hook.test_out_dir = args.show_dir
    else:
        hook.enable = True
        if args.show_dir:
            hook.out_dir = args.show_dir
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'Checkpoint {args.checkpoint} does not exist.')
    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    set_launcher(cfg, args.launcher)
    cfg.load_from = args.checkpoint
    datasets = preflight_datasets(cfg, ('test', ), skip=args.skip_data_check)

    if args.show or args.show_dir:
        enable_visualization(cfg, args, task)

    runner = build_runner(cfg, datasets)

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('The dump file (--out) must be a pkl file.')
        if task == 'detection':
            from mmdet.evaluation import DumpDetResults
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        else:
            runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))

    runner.test()


if __name__ == '__main__':
    main()
