"""Generate ODN's expansion demo data: ``python tools/odn/make_dotted_lines.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<angle>deg/*.png: dotted lines whose orientation is the
class and needs more than two residual blocks of receptive field (see mmadn/odn/dotted_lines.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.odn.dotted_lines import make_dotted_lines_folder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/dotted_lines')
    parser.add_argument('--train-per-class', type=int, default=250)
    parser.add_argument('--val-per-class', type=int, default=100)
    parser.add_argument('--classes', type=int, default=4, help='orientations, evenly spread over 180 degrees')
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--spacing', type=float, nargs=2, default=(7, 12), metavar=('LOW', 'HIGH'),
                        help='pixels between neighbouring dots of a line')
    parser.add_argument('--clutter', type=int, default=2, help='at most this many isolated dots per image')
    parser.add_argument('--noise', type=float, default=10.0, help='std of the Gaussian pixel noise')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_dotted_lines_folder(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                             num_classes=args.classes, size=args.size, seed=args.seed, spacing=tuple(args.spacing),
                             clutter=args.clutter, noise=args.noise)
    print(f'wrote {args.root}/train ({args.classes * args.train_per_class} images) and {args.root}/val '
          f'({args.classes * args.val_per_class} images), {args.classes} orientations')


if __name__ == '__main__':
    main()
