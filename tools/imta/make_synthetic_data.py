"""Generate the IMTA demo data: ``python tools/imta/make_synthetic_data.py [ROOT]`` (default data/imta_synthetic).

32x32 images (MSDNet's CIFAR stem) of three shapes on cluttered backgrounds, in mmpretrain's CustomDataset
layout (ROOT/{train,val}/<class>/*.png). Three classes and 1500 images each: at 32x32 the clutter is easy to
memorise, and a small multi-exit network needs that many images to learn the shapes instead, in minutes on a CPU.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_classification_folder  # noqa: E402

CLASSES = ('cross', 'ring', 'square')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default='data/imta_synthetic')
    parser.add_argument('--train-per-class', type=int, default=1500)
    parser.add_argument('--val-per-class', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_classification_folder(args.root, classes=CLASSES, train_per_class=args.train_per_class,
                               val_per_class=args.val_per_class, size=32, seed=args.seed)
    print(f'wrote {args.root}/train and {args.root}/val ({", ".join(CLASSES)})')


if __name__ == '__main__':
    main()
