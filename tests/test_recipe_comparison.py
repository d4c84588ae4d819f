"""Issue 30: the crop maker and the ADN-against-individual comparison on a user's COCO-format data, on a tiny set."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmadn.analysis.recipe_comparison import (apply_detection_data, classification_config, derived_config,
                                              detection_data, set_iterations)
from mmadn.datasets import make_coco_instances
from mmadn.datasets.instance_crops import crop_instance, make_instance_crop_set

from ._cli import ROOT, run_main, run_tool

DEMO_DET = osp.join(ROOT, 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py')
TOOL = 'tools/analysis_tools/compare_recipes.py'


def _coco(root, split, images, annotations, categories):
    os.makedirs(root / split, exist_ok=True)
    os.makedirs(root / 'annotations', exist_ok=True)
    for img in images:
        value = np.random.default_rng(img['id']).integers(0, 256, (img['height'], img['width'], 3), np.uint8)
        cv2.imwrite(str(root / split / img['file_name']), value)
    anns = [dict(a, id=i + 1, iscrowd=a.get('iscrowd', 0), area=a['bbox'][2] * a['bbox'][3])
            for i, a in enumerate(annotations)]
    path = root / 'annotations' / f'{split}.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=categories)))
    return str(path)


@pytest.fixture
def tiny_coco(tmp_path):
    """Two splits, categories in a non-alphabetical order with odd names and ids, a crowd region, a box too small
    and one reaching past the image's edge."""
    cats = [dict(id=7, name='zebra'), dict(id=3, name='traffic light'), dict(id=5, name='apple')]
    images = [dict(id=i, file_name=f'{i}.png', width=40, height=30) for i in (1, 2, 3)]
    train = _coco(tmp_path, 'train', images, [
        dict(image_id=1, category_id=7, bbox=[2, 2, 20, 10]),
        dict(image_id=1, category_id=3, bbox=[25, 5, 12, 20]),
        dict(image_id=2, category_id=7, bbox=[30, 20, 15, 15]),  # past the right / bottom edge
        dict(image_id=2, category_id=5, bbox=[1, 1, 30, 25], iscrowd=1),  # crowd: skipped
        dict(image_id=3, category_id=5, bbox=[5, 5, 3, 20]),  # 3 px wide: skipped
        dict(image_id=3, category_id=5, bbox=[10, 8, 9, 9]),
    ], cats)
    val = _coco(tmp_path, 'val', images[:1], [dict(image_id=1, category_id=3, bbox=[4, 4, 10, 10])], cats)
    return dict(train=train, val=val, root=tmp_path)


def test_crops_one_class_per_category_in_order_skipping_crowd_and_tiny_deterministic(tiny_coco, tmp_path):
    out = [str(tmp_path / f'crops{i}') for i in (1, 2)]
    for path in out:
        meta = make_instance_crop_set(path, tiny_coco['train'], str(tiny_coco['root'] / 'train'),
                                      val_ann_file=tiny_coco['val'], val_img_dir=str(tiny_coco['root'] / 'val'),
                                      size=16, min_size=4)
    assert meta['classes'] == ['zebra', 'traffic light', 'apple']
    assert meta['counts'] == {'train': [2, 1, 1], 'val': [0, 1, 0]}
    assert open(osp.join(out[0], 'classes.txt')).read().split('\n')[:3] == meta['classes']
    assert sorted(os.listdir(osp.join(out[0], 'train'))) == ['000_zebra', '001_traffic_light', '002_apple']
    assert open(osp.join(out[0], 'train.txt')).read().split('\n')[:4] == [
        '000_zebra/1.png 0', '000_zebra/3.png 0', '001_traffic_light/2.png 1', '002_apple/6.png 2']
    for line in open(osp.join(out[0], 'train.txt')).read().split():
        if line.endswith('.png'):
            a, b = (cv2.imread(osp.join(o, 'train', line)) for o in out)
            assert a.shape == (16, 16, 3) and np.array_equal(a, b)
    # the val split from a fraction of the train images instead: whole images, none in both splits
    meta = make_instance_crop_set(out[0], tiny_coco['train'], str(tiny_coco['root'] / 'train'), val_fraction=0.3,
                                  size=16, min_size=4)
    assert sum(meta['counts']['val']) >= 1 and sum(map(sum, meta['counts'].values())) == 4
    with pytest.raises(ValueError, match='not categories'):
        make_instance_crop_set(out[0], tiny_coco['train'], str(tiny_coco['root'] / 'train'), classes=['dog'])


def test_crop_is_square_around_the_box_with_mirrored_context():
    img = np.zeros((20, 20, 3), np.uint8)
    img[:, :10] = 200  # left half bright
    crop = crop_instance(img, [0, 5, 10, 10], size=20, context=0.5)  # a 20 px square from x = -5 to 15
    assert crop.shape == (20, 20, 3)
    assert crop[:, :15].min() == 200 and crop[:, 15:].max() == 0  # the 5 px left of the image mirror its edge


def test_crop_set_plugs_into_the_classification_config(tiny_coco, tmp_path, capsys):
    """The CLI's printed options (folders only) and the comparison's (annotation files, class names) give the
    categories' labels in mmpretrain's CustomDataset."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS

    code, out = run_main(capsys, 'tools/misc/make_instance_crops.py', tiny_coco['train'],
                         tiny_coco['root'] / 'train', tmp_path / 'crops', '--size', '16', '--min-size', '4',
                         '--val-ann', tiny_coco['val'], '--val-img', tiny_coco['root'] / 'val')
    assert code == 0 and 'train: 4 crops, 2 zebra, 1 traffic light, 1 apple' in out
    assert 'model.head.num_classes=3' in out and f'train_dataloader.dataset.data_root={tmp_path / "crops"}' in out
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/resnet18_adn_shapes_cls.py'))
    classification_config(cfg, str(tmp_path / 'crops'), ['zebra', 'traffic light', 'apple'])
    assert cfg.model.head.num_classes == 3 and cfg.data_preprocessor.num_classes == 3
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        by_file = DATASETS.build(cfg.train_dataloader.dataset)
        folders = dict(cfg.train_dataloader.dataset, ann_file='', metainfo=None)
        by_folder = DATASETS.build(folders)
    assert by_file.metainfo['classes'] == ('zebra', 'traffic light', 'apple')
    labels = [(osp.basename(d['img_path']), d['gt_label']) for d in by_file.load_data_list()]
    assert labels == [(osp.basename(d['img_path']), d['gt_label']) for d in by_folder.load_data_list()]
    assert labels == [('1.png', 0), ('3.png', 0), ('2.png', 1), ('6.png', 2)]


def test_detection_config_follows_the_data_and_the_iterations(tiny_coco):
    cfg = Config.fromfile(DEMO_DET)
    data = detection_data(cfg, str(tiny_coco['root']), 'annotations/train.json', 'annotations/val.json', 'train',
                          'val')
    assert data['classes'] == ('zebra', 'traffic light', 'apple')
    apply_detection_data(cfg, data)
    heads = cfg.model.roi_head
    assert heads.bbox_head.num_classes == heads.mask_head.num_classes == 3 and 'num_classes' not in cfg.model.rpn_head
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.metainfo == dict(classes=data['classes'])  # the demo's 5 colours dropped with its classes
    assert cfg.train_dataloader.dataset.ann_file == tiny_coco['train']
    assert cfg.test_dataloader.dataset.data_prefix.img == str(tiny_coco['root'] / 'val') + os.sep
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == tiny_coco['val']
    with pytest.raises(FileNotFoundError, match='val ann'):
        detection_data(cfg, str(tiny_coco['root']), 'annotations/train.json', 'missing.json', 'train', 'val')

    set_iterations(cfg, 80)  # the demo's 800 iterations, its schedule stretched to 80
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=80, val_interval=80)
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 3), (0, 80)]
    assert cfg.param_scheduler[1].milestones == [64] and cfg.default_hooks.checkpoint.interval == 80

    coco = Config.fromfile(osp.join(ROOT, 'configs/mask_rcnn_r50_adn_fpn_1x_coco.py'))  # epoch-based, 12 epochs
    set_iterations(coco, 120)
    warmup, steps = coco.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 120)  # 500 warm-up iterations, clipped
    assert steps.milestones == [80, 110] and not steps.by_epoch and coco.train_cfg.max_iters == 120


def test_derived_networks(tmp_path):
    cfg = Config.fromfile(DEMO_DET)
    plain = Config.fromfile(derived_config(cfg, str(tmp_path / 'plain.py'), plain=True))
    assert plain.model.backbone.type == 'ResNet' and 'skip' not in plain.model.backbone and not plain.custom_hooks
    base = Config.fromfile(derived_config(cfg, str(tmp_path / 'base.py'), skip='base', hook=False))
    assert base.model.backbone.skip == 'base' and not base.custom_hooks
    assert cfg.model.backbone.type == 'ResNetADN' and cfg.custom_hooks  # the original is left as it was


@pytest.mark.slow
def test_comparison_on_a_tiny_coco_set(tmp_path, capsys):
    """The whole comparison on a generated COCO-format set (its own 3 classes): crops of its instances, three
    pretrainings, three detectors, each measured; the table's four rows with numbers, the per-seed JSON; then a
    second run reuses everything and another setting is refused in the same work dir."""
    data = tmp_path / 'coco'
    make_coco_instances(str(data), num_train=6, num_val=3, size=(64, 64), max_objects=4,
                        classes=('circle', 'square', 'cross'), seed=3)
    work = tmp_path / 'work'
    args = [TOOL, DEMO_DET, '--data-root', data, '--train-ann', 'annotations/instances_train2017.json',
            '--pretrain-iters', '2', '--det-iters', '2', '--seeds', '0', '--work-dir', work, '--out',
            tmp_path / 'table.md', '--runs', '1', '--crop-min-size', '4',
            '--pretrain-cfg-options', 'train_dataloader.batch_size=4', 'val_dataloader.batch_size=8',
            '--bench-cfg-options', 'model.test_cfg.rcnn.score_thr=0.0']  # 2 iterations score below the demo's 0.3
    output = run_tool(*args, timeout=600)[1]
    table = (tmp_path / 'table.md').read_text()
    assert table.strip() in output
    for label in ('ADN super-net (FFFF)', 'ADN base-net (TTTT)', 'individual, full depth',
                  'individual, base depth (trained at TTTT)'):
        cells = next(line for line in table.splitlines() if line.startswith(f'| {label} |')).split('|')[2:-1]
        assert len(cells) == 3 and all(0 <= float(c) for c in cells[:2]) and float(cells[2]) > 0
    assert 'Val split' in table and '(3 images)' in table
    figures = json.load(open(work / 'comparison.json'))
    assert figures['seeds'] == [0] and figures['settings']['data']['classes'] == ['circle', 'square', 'cross']
    assert {r['label'] for r in figures['rows']} >= {'ADN super-net (FFFF)', 'individual, full depth'}
    assert all(set(r['per_seed']['0']) == {'bbox_mAP', 'segm_mAP', 'gflops'} for r in figures['rows'])
    crops = json.load(open(work / 'crops' / 'meta.json'))
    assert crops['classes'] == ['circle', 'square', 'cross'] and crops['size'] == 32
    trained = Config.fromfile(str(work / 'seed0' / 'pretrain_adn' / 'config.py'))
    assert trained.model.head.num_classes == 3 and trained.train_cfg.max_iters == 2

    code, again = run_main(capsys, *args)  # in this process: no second start-up
    assert code == 0 and again.count('reusing') == 6 and 'tools/train.py' not in again and table.strip() in again
    code, refused = run_main(capsys, *args, '--det-iters', '3')
    assert code != 0 and 'det_iters' in refused and 'another --work-dir' in refused
