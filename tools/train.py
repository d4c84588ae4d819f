"""Train a detector (mmdet config) or a classifier (mmpretrain config) with mmadn's modules registered.

The command line is mmdet's: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
[--auto-scale-lr] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]``, plus ``--skip-data-check``.
Before the model is built, the datasets are loaded and checked (:mod:`mmadn.utils.dataset_preflight`) and a
missing pretrained checkpoint is named with the commands that make it.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.apis import (add_data_check_argument, add_launcher_arguments, add_model_arguments,  # noqa: E402
                        build_runner, export_local_rank, set_launcher, set_work_dir, use_atomic_checkpoints)
from mmadn.engine.hooks import find_resume_checkpoint  # noqa: E402
from mmadn.utils import check_pretrained_checkpoints, load_config, preflight_datasets  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector or classifier')
    add_model_arguments(parser, checkpoint=None, config_help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='If specify checkpoint path, resume from it, while if not specify, try to auto resume from the '
        'latest checkpoint in the work directory.')
    add_launcher_arguments(parser)
    add_data_check_argument(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    set_work_dir(cfg, args.config, args.work_dir)
    set_launcher(cfg, args.launcher)
    use_atomic_checkpoints(cfg)

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper does not run on CPU); '
                             'drop --amp to train in fp32 here.')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper != 'AmpOptimWrapper':
            assert optim_wrapper == 'OptimWrapper', \
                f'`--amp` is only supported when the optimizer wrapper type is `OptimWrapper` but got {optim_wrapper}.'
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your configuration file.')

    if args.resume == 'auto':
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)  # None: nothing to resume, train from the start
        cfg.resume = cfg.load_from is not None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    check_pretrained_checkpoints(cfg)
    datasets = preflight_datasets(cfg, ('train', 'val') if cfg.get('val_cfg', None) is not None else ('train', ),
                                  skip=args.skip_data_check)
    build_runner(cfg, datasets).train()


if __name__ == '__main__':
    main()
