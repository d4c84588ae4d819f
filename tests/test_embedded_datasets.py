"""The embedded detection sets beyond the shapes: photo objects (scikit-image's photographs) and glyph clutter.

Small versions are generated once per module; each must be a valid COCO instance set that mmdet's CocoDataset and
CocoMetric read through the configs made for it.
"""
import filecmp
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmadn.datasets import GLYPH_CLASSES, PHOTO_CLASSES, SceneSplits, make_glyph_clutter, make_photo_objects
from mmadn.datasets.photo_objects import PHOTO_REGIONS, TEXTURES, skimage_data_dir
from tests._cli import ROOT, run_main

SETS = {
    'photo_objects': (make_photo_objects, PHOTO_CLASSES, 'mask_rcnn_r18_adn_fpn_photo_objects_synthetic.py',
                      'tools/misc/make_photo_objects.py'),
    'glyph_clutter': (make_glyph_clutter, GLYPH_CLASSES, 'mask_rcnn_r18_adn_fpn_glyph_clutter_synthetic.py',
                      'tools/misc/make_glyph_clutter.py'),
}
NUM_TRAIN, NUM_VAL = 24, 8


@pytest.fixture(scope='module', params=list(SETS))
def generated(request, tmp_path_factory):
    name = request.param
    root = str(tmp_path_factory.mktemp(name))
    paths = SETS[name][0](root, SceneSplits(num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3))
    return name, root, paths


def _annotations(path):
    with open(path) as f:
        return json.load(f)


def test_the_sets_are_valid_coco_with_masks_inside_their_boxes(generated):
    name, root, paths = generated
    classes = SETS[name][1]
    for split, count in (('train2017', NUM_TRAIN), ('val2017', NUM_VAL)):
        coco = COCO(paths[split])
        assert len(coco.imgs) == count and coco.anns
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(classes)
        for img in coco.imgs.values():
            assert osp.isfile(osp.join(root, split, img['file_name']))
        for ann in coco.anns.values():
            mask = coco.annToMask(ann).astype(bool)
            assert mask.shape == (160, 160) and mask.sum() == ann['area'] > 0
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
    train = _annotations(paths['train2017'])
    assert {a['category_id'] for a in train['annotations']} == set(range(1, len(classes) + 1)), 'a class is missing'


def test_the_sets_differ_from_the_shapes_in_count_and_scale(generated):
    """Photo objects: a few objects, from 12 pixels to half the image; glyphs: many, all small."""
    name, _, paths = generated
    anns = _annotations(paths['train2017'])['annotations']
    per_image = np.bincount([a['image_id'] for a in anns], minlength=NUM_TRAIN + 1)[1:]
    long_side = np.array([max(a['bbox'][2:]) for a in anns])
    if name == 'glyph_clutter':
        assert per_image.min() >= 3 and per_image.mean() > 7 and long_side.max() <= 32 and np.median(long_side) < 20
    else:
        assert per_image.max() <= 6 and long_side.max() > 50 and long_side.min() < 16


def test_the_same_seed_writes_the_same_files_and_another_seed_other_ones(tmp_path):
    for name, (make, *_rest) in SETS.items():
        first = make(str(tmp_path / name / 'a'), SceneSplits(num_train=3, num_val=1, seed=5))
        again = make(str(tmp_path / name / 'b'), SceneSplits(num_train=3, num_val=1, seed=5))
        other = make(str(tmp_path / name / 'c'), SceneSplits(num_train=3, num_val=1, seed=6))
        assert _annotations(first['train2017']) == _annotations(again['train2017'])
        assert _annotations(first['train2017']) != _annotations(other['train2017'])
        image = '/train2017/000000000001.jpg'
        assert filecmp.cmp(str(tmp_path / name / 'a') + image, str(tmp_path / name / 'b') + image, shallow=False)


def test_photo_objects_are_cut_only_from_images_the_scikit_image_wheel_ships():
    """Every photograph is a file of the installed package (read with OpenCV): nothing is fetched."""
    import skimage
    data_dir = skimage_data_dir()
    assert osp.dirname(data_dir) == osp.dirname(skimage.__file__)
    names = [file for file, _ in PHOTO_REGIONS.values()] + list(TEXTURES)
    names += ['coins.png', 'lfw_subset.npy', 'horse.png']
    assert all(osp.isfile(osp.join(data_dir, n)) for n in names), [n for n in names if not osp.isfile(
        osp.join(data_dir, n))]


def test_configs_name_the_data_and_read_it_with_every_class(generated):
    """The config's own paths and heads, then mmdet's CocoDataset on the generated files through its pipeline,
    and CocoMetric scoring the ground truth as predictions at 1.0 (the RLE masks survive the round trip)."""
    import torch
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    name, root, paths = generated
    classes, config = SETS[name][1], SETS[name][2]
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', config))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_root == f'data/{name}/' and loader.dataset.metainfo.classes == classes
    ann_file = f'data/{name}/annotations/instances_val2017.json'
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == ann_file
    assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == len(classes)

    init_default_scope('mmdet')
    cfg.train_dataloader.dataset.data_root = root + '/'
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(train) == NUM_TRAIN and train.metainfo['classes'] == classes
    sample = train[0]['data_samples']
    assert len(sample.gt_instances) > 0 and sample.gt_instances.masks.masks.any(axis=(1, 2)).all()

    cfg.val_dataloader.dataset.data_root = root + '/'
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == NUM_VAL
    metric = CocoMetric(ann_file=paths['val2017'], metric=['bbox', 'segm'])
    metric.dataset_meta = val.metainfo
    coco = COCO(paths['val2017'])
    for img_id, img in coco.imgs.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        if not anns:  # every object of the image hidden: nothing to predict
            continue
        boxes = torch.tensor([a['bbox'] for a in anns], dtype=torch.float32)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        pred = dict(bboxes=boxes, scores=torch.ones(len(anns)),
                    labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                    masks=torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]).astype(bool)))
        metric.process({}, [dict(img_id=img_id, ori_shape=(img['height'], img['width']), pred_instances=pred)])
    results = metric.compute_metrics(metric.results)
    assert results['bbox_mAP'] == pytest.approx(1.0) and results['segm_mAP'] == pytest.approx(1.0)


@pytest.mark.parametrize('name', list(SETS))
def test_the_tools_write_the_set_and_refuse_bad_arguments(name, tmp_path, capsys):
    tool = SETS[name][3]
    code, out = run_main(capsys, tool, tmp_path / 'set', '--num-train', 2, '--num-val', 1, '--seed', 1)
    assert code == 0 and 'instances_val2017.json' in out
    assert len(_annotations(tmp_path / 'set' / 'annotations' / 'instances_train2017.json')['images']) == 2
    code, out = run_main(capsys, tool, tmp_path / 'bad', '--num-train', 0)
    assert code != 0 and 'num_train=0' in out and not osp.exists(tmp_path / 'bad')


@pytest.mark.slow
def test_the_configs_train_and_evaluate_on_the_generated_data(generated, tmp_path):
    """Two iterations and one evaluation of each config's Mask R-CNN (with Algorithm 1's hook) on the small set:
    the RLE masks, the glyphs' anchors and pipeline reach the losses and CocoMetric."""
    from mmengine.runner import Runner

    name, root, _ = generated
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', SETS[name][2]))
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.init_cfg = None  # the demo's pretrained backbone is a file the demo writes
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root + '/'
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = root + '/annotations/instances_val2017.json'
    cfg.train_cfg.update(max_iters=2, val_interval=3)
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # an untrained detector: keep its detections to be scored
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 100
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    assert np.isfinite(scalars['train/loss'].current()) and np.isfinite(scalars['train/loss_mask'].current())
    metrics = runner.val()
    assert 0 <= metrics['coco/bbox_mAP'] <= 1 and 0 <= metrics['coco/segm_mAP'] <= 1
