"""Generate the classification demo data (ADN and ODN): ``python tools/misc/make_synthetic_digits.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<digit>/*.png (see mmadn/datasets/synthetic_digits.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_digits_folder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/synthetic_digits')
    parser.add_argument('--train-per-class', type=int, default=100)
    parser.add_argument('--val-per-class', type=int, default=50)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--distractors', type=int, default=2, help='small digits of other classes per image')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_digits_folder(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                       size=args.size, distractors=args.distractors, seed=args.seed)
    print(f'wrote {args.root}/train ({10 * args.train_per_class} images) and {args.root}/val '
          f'({10 * args.val_per_class} images)')


if __name__ == '__main__':
    main()
