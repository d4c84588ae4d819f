"""Generate the photo-object detection set: ``python tools/misc/make_photo_objects.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset of objects cut from the photographs that scikit-image ships
(nine classes, pasted on real textures with occlusion and distractors; mmadn/datasets/photo_objects.py), to ROOT
(default ``data/photo_objects``), deterministic by ``--seed``. Nothing is downloaded.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets.photo_objects import make_photo_objects  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default='data/photo_objects')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, nargs=2, default=(160, 160), metavar=('W', 'H'))
    parser.add_argument('--max-objects', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        paths = make_photo_objects(args.root, args.num_train, args.num_val, tuple(args.size), args.max_objects,
                                   seed=args.seed)
    except (ValueError, ImportError, FileNotFoundError) as err:
        parser.error(str(err))
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
