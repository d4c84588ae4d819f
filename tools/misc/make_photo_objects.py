"""Generate the photo-object detection set: ``python tools/misc/make_photo_objects.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset of objects cut from the photographs that scikit-image ships
(nine classes, pasted on real textures with occlusion and distractors; mmadn/datasets/photo_objects.py), to ROOT
(default ``data/photo_objects``), deterministic by ``--seed``. Nothing is downloaded.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.generator_cli import coco_set_parser, run_generator, scene_splits, written_splits  # noqa: E402
from mmadn.datasets.photo_objects import make_photo_objects  # noqa: E402


def generate(args) -> str:
    return written_splits(make_photo_objects(args.root, scene_splits(args), args.max_objects))


def main(argv=None):
    parser = coco_set_parser(__doc__, 'data/photo_objects')
    parser.add_argument('--max-objects', type=int, default=6)
    run_generator(parser, generate, argv, refusals=(ValueError, ImportError, FileNotFoundError))


if __name__ == '__main__':
    main()
