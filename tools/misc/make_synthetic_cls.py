"""Generate the embedded classification demo data: ``python tools/misc/make_synthetic_cls.py [ROOT]``."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_classification_folder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/synthetic_cls')
    parser.add_argument('--train-per-class', type=int, default=40)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_classification_folder(args.root, train_per_class=args.train_per_class,
                               val_per_class=args.val_per_class, size=args.size, seed=args.seed)
    print(f'wrote {args.root}/train and {args.root}/val')


if __name__ == '__main__':
    main()
