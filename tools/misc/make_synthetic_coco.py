"""Generate the embedded detection demo data: ``python tools/misc/make_synthetic_coco.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset (shapes with masks, occlusion, clutter, a range of scales),
deterministic by ``--seed``, to ROOT (default ``data/synthetic_coco``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_coco_instances  # noqa: E402
from mmadn.datasets.synthetic_coco import check_coco_instances_args  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default='data/synthetic_coco')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, nargs=2, default=(160, 160), metavar=('W', 'H'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    try:
        check_coco_instances_args(args.num_train, args.num_val, args.size)
    except ValueError as err:
        parser.error(str(err))
    paths = make_coco_instances(args.root, args.num_train, args.num_val, tuple(args.size), seed=args.seed)
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
