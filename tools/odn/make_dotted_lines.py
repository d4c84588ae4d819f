"""Generate ODN's expansion demo data: ``python tools/odn/make_dotted_lines.py [ROOT] ...``.

Writes mmpretrain CustomDataset folders ROOT/{train,val}/<angle>deg/*.png: dotted lines whose orientation is the
class and needs more than two residual blocks of receptive field (see mmadn/odn/dotted_lines.py).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.generator_cli import folder_set_parser, run_generator  # noqa: E402
from mmadn.odn.dotted_lines import make_dotted_lines_folder  # noqa: E402


def generate(args) -> str:
    make_dotted_lines_folder(args.root, train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                             num_classes=args.classes, size=args.size, seed=args.seed, spacing=tuple(args.spacing),
                             clutter=args.clutter, noise=args.noise)
    return (f'wrote {args.root}/train ({args.classes * args.train_per_class} images) and {args.root}/val '
            f'({args.classes * args.val_per_class} images), {args.classes} orientations')


def main(argv=None):
    parser = folder_set_parser(__doc__, 'data/dotted_lines', train_per_class=250, val_per_class=100, size=32)
    parser.add_argument('--classes', type=int, default=4, help='orientations, evenly spread over 180 degrees')
    parser.add_argument('--spacing', type=float, nargs=2, default=(7, 12), metavar=('LOW', 'HIGH'),
                        help='pixels between neighbouring dots of a line')
    parser.add_argument('--clutter', type=int, default=2, help='at most this many isolated dots per image')
    parser.add_argument('--noise', type=float, default=10.0, help='std of the Gaussian pixel noise')
    run_generator(parser, generate, argv)


if __name__ == '__main__':
    main()
