"""Cut the instances of a COCO-format detection set into a classification set (pretraining data for its backbone).

    python tools/misc/make_instance_crops.py ANN_JSON IMG_DIR OUT_DIR [--val-ann VAL_JSON [--val-img DIR] |
        --val-fraction 0.1] [--size 64] [--context 0.2] [--min-size 8] [--max-per-class N] [--seed 0]

One class per category of ANN_JSON (in its order), one square crop per instance (the box plus --context of its
longer side on each side, resized to --size), crowd regions and boxes under --min-size pixels skipped. The layout
is mmpretrain's CustomDataset (mmadn/datasets/instance_crops.py); the command printed at the end points a
classification config at it.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.instance_crops import crop_set_cfg_options, make_instance_crop_set  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_file', help='COCO-format annotation JSON of the instances to crop (the train split)')
    parser.add_argument('img_dir', help='folder its images\' file_name are relative to')
    parser.add_argument('out_dir', help='where to write the classification set (replaced)')
    parser.add_argument('--val-ann', help='annotation JSON of the val crops (e.g. the detection set\'s val split)')
    parser.add_argument('--val-img', help='image folder of --val-ann (default: IMG_DIR)')
    parser.add_argument('--val-fraction', type=float, default=0.1,
                        help='without --val-ann: this fraction of the train images gives the val crops')
    parser.add_argument('--size', type=int, default=64, help='side of the square crops in pixels')
    parser.add_argument('--context', type=float, default=0.2,
                        help='margin around the box on each side, as a fraction of its longer side')
    parser.add_argument('--min-size', type=float, default=8, help='skip boxes shorter than this (pixels)')
    parser.add_argument('--max-per-class', type=int, help='at most this many crops per class and split')
    parser.add_argument('--seed', type=int, default=0, help='seeds the val draw and the --max-per-class draw')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        meta = make_instance_crop_set(args.out_dir, args.ann_file, args.img_dir, val_ann_file=args.val_ann,
                                      val_img_dir=args.val_img, val_fraction=args.val_fraction, size=args.size,
                                      context=args.context, min_size=args.min_size,
                                      max_per_class=args.max_per_class, seed=args.seed)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f'make_instance_crops: {err}') from None
    for split, counts in meta['counts'].items():
        per_class = ', '.join(f'{count} {name}' for name, count in zip(meta['classes'], counts))
        print(f'{split}: {sum(counts)} crops, {per_class}')
    options = {k: v for k, v in crop_set_cfg_options(args.out_dir, meta['classes']).items()
               if k.endswith(('data_root', 'num_classes'))}
    print('Train a classifier on it (labels follow the sorted class folders, i.e. the categories\' order):\n'
          '  python tools/train.py CLS_CONFIG --cfg-options ' + ' '.join(f'{k}={v}' for k, v in options.items()))


if __name__ == '__main__':
    main()
