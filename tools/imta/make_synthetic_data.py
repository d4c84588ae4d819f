"""Generate the IMTA demo data: ``python tools/imta/make_synthetic_data.py [ROOT]`` (default data/imta_synthetic).

32x32 images (MSDNet's CIFAR stem) of three shapes on cluttered backgrounds, in mmpretrain's CustomDataset
layout (ROOT/{train,val}/<class>/*.png). Three classes and 1500 images each: at 32x32 the clutter is easy to
memorise, and a small multi-exit network needs that many images to learn the shapes instead, in minutes on a CPU.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_classification_folder  # noqa: E402
from mmadn.datasets.generator_cli import folder_set_parser, run_generator  # noqa: E402

CLASSES = ('cross', 'ring', 'square')


def generate(args) -> str:
    make_classification_folder(args.root, classes=CLASSES, train_per_class=args.train_per_class,
                               val_per_class=args.val_per_class, size=32, seed=args.seed)
    return f'wrote {args.root}/train and {args.root}/val ({", ".join(CLASSES)})'


def main(argv=None):
    run_generator(folder_set_parser(__doc__, 'data/imta_synthetic', train_per_class=1500, val_per_class=100),
                  generate, argv)


if __name__ == '__main__':
    main()
