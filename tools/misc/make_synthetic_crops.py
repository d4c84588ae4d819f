"""Generate the demo's pretraining data: ``python tools/misc/make_synthetic_crops.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<shape>/*.png: crops of the instances of generated
detection scenes (the shapes of data/synthetic_coco, one per crop; see mmadn/datasets/synthetic_coco.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import DET_CLASSES, make_instance_crops  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/synthetic_crops')
    parser.add_argument('--train-per-class', type=int, default=300)
    parser.add_argument('--val-per-class', type=int, default=50)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    try:
        make_instance_crops(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                            size=args.size, seed=args.seed)
    except ValueError as err:
        parser.error(str(err))
    n = len(DET_CLASSES)
    print(f'wrote {args.root}/train ({n * args.train_per_class} crops) and {args.root}/val '
          f'({n * args.val_per_class} crops)')


if __name__ == '__main__':
    main()
