"""Generate the glyph-clutter detection set: ``python tools/misc/make_glyph_clutter.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset of many small letters and digits (twelve classes, Hershey
fonts, distractor glyphs and strokes; mmadn/datasets/glyph_clutter.py), to ROOT (default ``data/glyph_clutter``),
deterministic by ``--seed``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.glyph_clutter import make_glyph_clutter  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default='data/glyph_clutter')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, nargs=2, default=(160, 160), metavar=('W', 'H'))
    parser.add_argument('--min-objects', type=int, default=4)
    parser.add_argument('--max-objects', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        paths = make_glyph_clutter(args.root, args.num_train, args.num_val, tuple(args.size), args.min_objects,
                                   args.max_objects, seed=args.seed)
    except ValueError as err:
        parser.error(str(err))
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
