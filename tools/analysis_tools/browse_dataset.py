"""Draw the annotations of a config's dataset on its images, after its pipeline (mmdet's and mmpretrain's
tools/analysis_tools/browse_dataset.py).

    python tools/analysis_tools/browse_dataset.py CONFIG [--phase train|val|test] [--output-dir DIR]
        [--show-number N] [--show [--show-interval S]] [--min-size PIXELS] [--cfg-options k=v ...]

The images are drawn by the config's own visualizer: mmdet's ``DetLocalVisualizer`` for a detection config
(boxes, masks and class names of the ground truth), mmpretrain's ``UniversalVisualizer`` for a classification
config (the label). With the generated demo data (``tools/misc/make_synthetic_coco.py``,
``make_synthetic_digits.py``) this is the way to look at what the models are trained on. Images whose shorter
side is below ``--min-size`` are enlarged first, so that the small generated images stay readable.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmcv  # noqa: E402
from mmengine.registry import DATASETS, VISUALIZERS, DefaultScope  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules
import mmadn.utils.config_scope  # noqa: E402,F401  mmadn:: base configs
from mmadn.apis import add_model_arguments  # noqa: E402
from mmadn.utils import check_dataset_paths, load_config, task_of  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw a dataset with its annotations')
    add_model_arguments(parser, checkpoint=None)
    parser.add_argument('--phase', choices=('train', 'val', 'test'), default='train',
                        help='which dataloader\'s dataset (and pipeline) to draw (default: train)')
    parser.add_argument('--output-dir', default=None, help='write the drawn images here')
    parser.add_argument('--show-number', '-n', type=int, default=20, help='how many images (default: 20)')
    parser.add_argument('--show', action='store_true', help='show each image in a window')
    parser.add_argument('--show-interval', type=float, default=2, help='seconds each shown image stays')
    parser.add_argument('--min-size', type=int, default=320, help='enlarge images whose shorter side is smaller')
    args = parser.parse_args(argv)
    if args.output_dir is None and not args.show:
        parser.error('nothing to do: give --output-dir DIR (write the images) and/or --show (a window)')
    if args.show_number < 1:
        parser.error(f'--show-number must be at least 1, got {args.show_number}')
    return parser, args


def detection_sample(item):
    """Image (RGB) and data sample of a packed mmdet item, in the form DetLocalVisualizer draws."""
    from mmdet.structures.bbox import BaseBoxes
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    sample = item['data_samples'].numpy()
    gt = sample.gt_instances
    if isinstance(gt.get('bboxes', None), BaseBoxes):
        gt.bboxes = gt.bboxes.tensor
    masks = gt.get('masks', None)
    if isinstance(masks, (BitmapMasks, PolygonMasks)):
        gt.masks = masks.to_ndarray().astype(bool)
    sample.gt_instances = gt
    return sample


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
        check_dataset_paths(cfg, (args.phase, ))
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    loader = cfg.get(f'{args.phase}_dataloader', None)
    if not loader:
        parser.error(f'the config has no {args.phase}_dataloader; choose another --phase')
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)

    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(loader.dataset)
        # the config's visualizer, without its storage backends: the images go to --output-dir
        visualizer = VISUALIZERS.build({**cfg.visualizer, 'name': 'browse_dataset', 'vis_backends': None})
        visualizer.dataset_meta = dataset.metainfo
        number = min(args.show_number, len(dataset))
        progress = ProgressBar(number)
        for index in range(number):
            item = dataset[index]
            image = mmcv.bgr2rgb(item['inputs'].permute(1, 2, 0).numpy())  # the pipelines load BGR
            scale = max(1.0, args.min_size / min(image.shape[:2]))
            if scale > 1:
                image = mmcv.imrescale(image, scale, interpolation='nearest')
            path = item['data_samples'].get('img_path', None) or f'{index}.png'
            name = f'{index:05d}_{osp.splitext(osp.basename(path))[0]}.png'
            out_file = osp.join(args.output_dir, name) if args.output_dir else None
            if task == 'detection':
                sample = detection_sample(item)
                if scale > 1:
                    sample = _rescale_detection(sample, scale)
                visualizer.add_datasample(name, image, sample, draw_pred=False, show=args.show,
                                          wait_time=args.show_interval, out_file=out_file)
            else:
                visualizer.visualize_cls(image, item['data_samples'], draw_pred=False, show=args.show,
                                         wait_time=args.show_interval, name=name, out_file=out_file)
            progress.update()
    if args.output_dir:
        print(f'\nwritten {number} images to {args.output_dir}')


def _rescale_detection(sample, scale: float):
    """The ground truth of ``sample`` on an image enlarged ``scale`` times (boxes scaled, masks resized)."""
    import numpy as np
    gt = sample.gt_instances
    if 'bboxes' in gt:
        gt.bboxes = gt.bboxes * scale
    if 'masks' in gt and len(gt.masks):
        gt.masks = np.stack([mmcv.imrescale(m.astype(np.uint8), scale, interpolation='nearest').astype(bool)
                             for m in gt.masks])
    sample.gt_instances = gt
    return sample


if __name__ == '__main__':
    main()
