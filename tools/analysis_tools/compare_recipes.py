"""ADN against individual networks on your own COCO-format data: the ADN paper's detection table, mean over seeds.

    python tools/analysis_tools/compare_recipes.py DET_CONFIG [--data-root DIR] [--train-ann A --val-ann A]
        [--train-img DIR --val-img DIR] [--cls-config CFG] [--pretrain-iters N] [--det-iters N] [--seeds 0 1]
        [--work-dir DIR] [--out TABLE.md] [--json FIGURES.json]

For each seed: three classifiers are pretrained on crops of the data set's own instances (train crops from the
train split, val crops from the val split; tools/misc/make_instance_crops.py's maker), each handed to a detector
of DET_CONFIG (an mmdet config with an ADN backbone and ADNDistillHook), all for the same iterations:
  ADN             Algorithm 1 in both stages: one detector, measured as its super-net and its base-net
  individual      the ordinary network (no ADN, no hook) at full depth
  individual_base the base-net's depth trained on its own (skip at the base throughout, no hook)
Each detector is measured with tools/analysis_tools/benchmark_subnets.py on the val split (COCO AP, GFLOPs).
Prints the table (rows ADN super / base, individual full / base, and the individual network run at the base
depth), writes it with --out and the per-seed figures to --json (default WORK_DIR/comparison.json). Paths to
the data default to the config's; a path given here is relative to --data-root, as in mmdet configs. Finished
runs in WORK_DIR are reused; WORK_DIR/settings.json keeps what they were made with (mmadn/analysis/
recipe_comparison.py describes every run).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

from mmadn.analysis.recipe_comparison import (DEFAULT_CLS_CONFIG, DEFAULT_DETECTORS, DETECTORS,  # noqa: E402
                                              RecipeComparison, detection_data, resolve, summarize, val_caption,
                                              write_outputs)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='detection config with an ADN backbone and ADNDistillHook')
    data = parser.add_argument_group('data (default: what the config reads)')
    data.add_argument('--data-root', help='the data set\'s root; the paths below are relative to it')
    data.add_argument('--train-ann', help='COCO-format annotation JSON of the train split')
    data.add_argument('--val-ann', help='COCO-format annotation JSON of the val split (measured)')
    data.add_argument('--train-img', help='image folder of the train split')
    data.add_argument('--val-img', help='image folder of the val split')
    data.add_argument('--classes', nargs='+', help='category names to use (default: the train JSON\'s, in order)')
    pre = parser.add_argument_group('pretraining')
    pre.add_argument('--cls-config', default=DEFAULT_CLS_CONFIG,
                     help='classification config of the pretrainings (mmpretrain, CustomDataset loaders)')
    pre.add_argument('--crops', help='pretrain on this existing class-folder set instead of the data\'s crops')
    pre.add_argument('--crop-size', type=int, default=32, help='side of the crops (the default config\'s recipe '
                     'was tuned on 32-pixel crops)')
    pre.add_argument('--crop-context', type=float, default=0.2, help='margin around each box per side, as a '
                     'fraction of its longer side')
    pre.add_argument('--crop-min-size', type=float, default=8, help='skip boxes shorter than this (pixels)')
    pre.add_argument('--crop-max-per-class', type=int, help='at most this many crops per class and split')
    pre.add_argument('--pretrain-iters', type=int, help='iterations of every pretraining (default: the config\'s)')
    pre.add_argument('--pretrain-cfg-options', nargs='+', action=DictAction, default={},
                     help='changes to every pretraining config, e.g. train_dataloader.batch_size=16')
    det = parser.add_argument_group('detection and measurement')
    det.add_argument('--det-iters', type=int, help='iterations of every detector (default: the config\'s)')
    det.add_argument('--detectors', nargs='+', choices=list(DETECTORS), default=list(DEFAULT_DETECTORS),
                     help='the detectors to train and measure (adn_no_fpn_kl: the ablation without the hook)')
    det.add_argument('--det-cfg-options', nargs='+', action=DictAction, default={},
                     help='changes to those detectors\' configs, e.g. custom_hooks.0.alpha=0.3 (with --tag)')
    det.add_argument('--tag', default='', help='suffix of the changed detectors\' work dirs (det_NAME-TAG)')
    det.add_argument('--backbone-options', nargs='+', action=DictAction, default={},
                     help='changes to model.backbone of every run, e.g. depth=34')
    det.add_argument('--runs', type=int, default=3, help='timed runs of benchmark_subnets.py per sub-network')
    det.add_argument('--bench-cfg-options', nargs='+', default=[],
                     help='--cfg-options of benchmark_subnets.py, e.g. model.test_cfg.rcnn.score_thr=0.05')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--work-dir', help='default: work_dirs/compare_recipes/<config name>')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    parser.add_argument('--json', help='per-seed figures (default: WORK_DIR/comparison.json)')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.det_cfg_options and not args.tag:
        parser.error('--det-cfg-options changes the detectors: name the variant with --tag, so that the runs '
                     'without it in the same work dir are not reused for it (or overwritten)')
    config = resolve(args.config)
    work_dir = args.work_dir or osp.join('work_dirs', 'compare_recipes', osp.splitext(osp.basename(config))[0])
    try:
        data = detection_data(Config.fromfile(config), resolve(args.data_root), args.train_ann, args.val_ann,
                              args.train_img, args.val_img, args.classes)
        comparison = RecipeComparison(
            config, work_dir, data, cls_config=args.cls_config, crops_root=args.crops,
            crop_args=dict(size=args.crop_size, context=args.crop_context, min_size=args.crop_min_size,
                           max_per_class=args.crop_max_per_class),
            pretrain_iters=args.pretrain_iters, det_iters=args.det_iters,
            pretrain_options=args.pretrain_cfg_options, backbone_options=args.backbone_options,
            bench_args=['--runs', str(args.runs), '--warmup', '1',
                        *(['--cfg-options', *args.bench_cfg_options] if args.bench_cfg_options else [])])
        comparison.check_work_dir()
        comparison.prepare_crops()
        per_seed = [comparison.run_seed(seed, args.detectors, args.det_cfg_options, args.tag) for seed in args.seeds]
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        raise SystemExit(f'compare_recipes: {err}') from None
    rows = summarize(per_seed, args.seeds)
    json_path = args.json or osp.join(comparison.work_dir, 'comparison.json')
    print(write_outputs(rows, args.seeds, val_caption(data), json_path, args.out, comparison.settings))
    print(f'per-seed figures: {json_path}')


if __name__ == '__main__':
    main()
