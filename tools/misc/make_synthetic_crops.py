"""Generate the demo's pretraining data: ``python tools/misc/make_synthetic_crops.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<shape>/*.png: crops of the instances of generated
detection scenes (the shapes of data/synthetic_coco, one per crop; see mmadn/datasets/synthetic_coco.py).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import DET_CLASSES, make_instance_crops  # noqa: E402
from mmadn.datasets.generator_cli import folder_set_parser, run_generator  # noqa: E402


def generate(args) -> str:
    make_instance_crops(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                        size=args.size, seed=args.seed)
    n = len(DET_CLASSES)
    return (f'wrote {args.root}/train ({n * args.train_per_class} crops) and {args.root}/val '
            f'({n * args.val_per_class} crops)')


def main(argv=None):
    run_generator(folder_set_parser(__doc__, 'data/synthetic_crops', train_per_class=300, val_per_class=50, size=32),
                  generate, argv)


if __name__ == '__main__':
    main()
