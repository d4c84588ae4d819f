"""What the dataset pre-flight adds to mmdet's own loading of a COCO-sized annotation file (issue 31's target: at
most 10 %).

    python bench/bench_preflight.py [--images 118287] [--annotations 860001] [--repeats 2] [--work-dir DIR]

Generates an annotation file of train2017's size (80 categories, polygons of 16 points, one empty file per image so
that every image exists), then times, alternately and in one process:
  mmdet:     ``Runner.build_dataloader``'s dataset step, mmdet's CocoDataset with full_init (parse, index, data list,
             filter, serialization), as every training pays it;
  preflight: ``preflight_datasets`` (the same loading, watched, then its checks), ``hand_over_datasets`` and the
             copy the Runner makes of the dataloader config it is handed, after which it does not load the file
             again.
Prints both and the ratio. The pre-flight replaces the Runner's loading; it does not add a second one.
"""
import argparse
import copy
import gc
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def make_annotations(root, num_images, num_annotations, seed=0):
    from mmdet.datasets import CocoDataset
    rng = np.random.default_rng(seed)
    classes = CocoDataset.METAINFO['classes']
    images_dir = osp.join(root, 'train2017')
    os.makedirs(images_dir, exist_ok=True)
    images = []
    for i in range(num_images):
        name = f'{i + 1:012d}.jpg'
        open(osp.join(images_dir, name), 'wb').close()
        images.append(dict(id=i + 1, file_name=name, width=640, height=480))
    image_ids = rng.integers(1, num_images + 1, num_annotations)
    image_ids[:num_images] = np.arange(1, num_images + 1)  # every image annotated
    cats = rng.integers(1, len(classes) + 1, num_annotations)
    xy = rng.uniform(0, 400, (num_annotations, 2)).round(2)
    wh = rng.uniform(4, 200, (num_annotations, 2)).round(2)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    annotations = []
    for i in range(num_annotations):
        x, y = xy[i]
        w, h = wh[i]
        poly = np.stack([x + w / 2 + w / 2 * np.cos(angles), y + h / 2 + h / 2 * np.sin(angles)], 1)
        annotations.append(dict(id=i + 1, image_id=int(image_ids[i]), category_id=int(cats[i]), iscrowd=0,
                                area=float(w * h * 0.78), bbox=[float(x), float(y), float(w), float(h)],
                                segmentation=[poly.round(2).reshape(-1).tolist()]))
    data = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)])
    path = osp.join(root, 'annotations', 'instances_train2017.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def dataset_cfg(root):
    return dict(type='CocoDataset', data_root=root + '/', ann_file='annotations/instances_train2017.json',
                data_prefix=dict(img='train2017/'), filter_cfg=dict(filter_empty_gt=True, min_size=32),
                pipeline=[dict(type='LoadImageFromFile')])


def time_mmdet(root):
    from mmengine.registry import DATASETS
    start = time.perf_counter()
    dataset = DATASETS.build(dataset_cfg(root))
    dataset.full_init()
    return time.perf_counter() - start, len(dataset)


def time_preflight(root):
    from mmengine.config import Config

    from mmadn.utils import hand_over_datasets, preflight_datasets

    class Runner:  # what hand_over_datasets touches of mmengine's Runner
        _train_dataloader = dict(dataset=None)

    cfg = Config(dict(default_scope='mmdet', train_dataloader=dict(dataset=dataset_cfg(root))))
    start = time.perf_counter()
    built = preflight_datasets(cfg, ('train', ))
    hand_over_datasets(Runner, built)
    copy.deepcopy(Runner._train_dataloader)  # what Runner.build_dataloader does first with the handed-over dataset
    return time.perf_counter() - start, len(built['train'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=118287)
    parser.add_argument('--annotations', type=int, default=860001)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--work-dir', help='where to write the data (default: a temporary folder, removed after)')
    args = parser.parse_args()
    import mmadn  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or tmp
        start = time.perf_counter()
        path = make_annotations(root, args.images, args.annotations)
        print(f'generated {path} ({osp.getsize(path) / 2**20:.0f} MiB, {args.images} images, {args.annotations} '
              f'annotations) in {time.perf_counter() - start:.0f} s', flush=True)
        times = {'mmdet': [], 'preflight': []}
        for _ in range(args.repeats):
            for name, fn in (('mmdet', time_mmdet), ('preflight', time_preflight)):
                gc.collect()
                seconds, size = fn(root)
                times[name].append(seconds)
                print(f'{name}: {seconds:.1f} s ({size} images kept)', flush=True)
        mmdet, preflight = min(times['mmdet']), min(times['preflight'])
        print(f'mmdet loading {mmdet:.1f} s; with the pre-flight {preflight:.1f} s; ratio {preflight / mmdet:.3f} '
              f'(best of {args.repeats} each)')


if __name__ == '__main__':
    main()
