"""Generate the glyph-clutter detection set: ``python tools/misc/make_glyph_clutter.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset of many small letters and digits (twelve classes, Hershey
fonts, distractor glyphs and strokes; mmadn/datasets/glyph_clutter.py), to ROOT (default ``data/glyph_clutter``),
deterministic by ``--seed``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.generator_cli import coco_set_parser, run_generator, scene_splits, written_splits  # noqa: E402
from mmadn.datasets.glyph_clutter import make_glyph_clutter  # noqa: E402


def generate(args) -> str:
    return written_splits(make_glyph_clutter(args.root, scene_splits(args), args.min_objects, args.max_objects))


def main(argv=None):
    parser = coco_set_parser(__doc__, 'data/glyph_clutter')
    parser.add_argument('--min-objects', type=int, default=4)
    parser.add_argument('--max-objects', type=int, default=16)
    run_generator(parser, generate, argv)


if __name__ == '__main__':
    main()
