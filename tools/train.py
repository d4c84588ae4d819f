"""Train a detector (mmdet config) or a classifier (mmpretrain config) with mmadn's modules registered.

The command line is mmdet's: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
[--auto-scale-lr] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]``, plus ``--skip-data-check``.
Before the model is built, the datasets are loaded and checked (:mod:`mmadn.utils.dataset_preflight`) and a
missing pretrained checkpoint is named with the commands that make it.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.apis import set_launcher, set_work_dir, use_atomic_checkpoints  # noqa: E402
from mmadn.engine.hooks import find_resume_checkpoint  # noqa: E402
from mmadn.utils import check_pretrained_checkpoints, hand_over_datasets, load_config, preflight_datasets  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='If specify checkpoint path, resume from it, while if not specify, try to auto resume from the '
        'latest checkpoint in the work directory.')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy format will be '
        'merged into config file. e.g. model.backbone.skip=TTFF')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='check only the dataset paths, not the annotations and images (the pre-flight)')
    # torch.distributed.launch passes --local-rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
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
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    hand_over_datasets(runner, datasets)
    runner.train()


if __name__ == '__main__':
    main()
