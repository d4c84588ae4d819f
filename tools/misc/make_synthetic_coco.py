"""Generate the embedded detection demo data: ``python tools/misc/make_synthetic_coco.py [ROOT]``.

Writes a COCO-format instance-segmentation dataset (shapes with masks, occlusion, clutter, a range of scales),
deterministic by ``--seed``, to ROOT (default ``data/synthetic_coco``).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.datasets import make_coco_instances  # noqa: E402
from mmadn.datasets.generator_cli import coco_set_parser, run_generator, written_splits  # noqa: E402
from mmadn.datasets.synthetic_coco import check_coco_instances_args  # noqa: E402


def generate(args) -> str:
    check_coco_instances_args(args.num_train, args.num_val, args.size)
    return written_splits(make_coco_instances(args.root, args.num_train, args.num_val, tuple(args.size),
                                              seed=args.seed))


def main(argv=None):
    run_generator(coco_set_parser(__doc__, 'data/synthetic_coco'), generate, argv)


if __name__ == '__main__':
    main()
