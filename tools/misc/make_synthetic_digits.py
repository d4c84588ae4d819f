"""Generate the classification demo data (ADN and ODN): ``python tools/misc/make_synthetic_digits.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<digit>/*.png (see mmadn/datasets/synthetic_digits.py).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_digits_folder  # noqa: E402
from mmadn.datasets.generator_cli import folder_set_parser, run_generator  # noqa: E402


def generate(args) -> str:
    make_digits_folder(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                       size=args.size, distractors=args.distractors, seed=args.seed)
    return (f'wrote {args.root}/train ({10 * args.train_per_class} images) and {args.root}/val '
            f'({10 * args.val_per_class} images)')


def main(argv=None):
    parser = folder_set_parser(__doc__, 'data/synthetic_digits', train_per_class=100, val_per_class=50, size=32)
    parser.add_argument('--distractors', type=int, default=2, help='small digits of other classes per image')
    run_generator(parser, generate, argv)


if __name__ == '__main__':
    main()
