"""Issue 31: nothing silently wrong between the user's data and the result. Each test reproduces one fault that
passed on the earlier main (an override that did nothing, dropped or shifted labels, a missing image found hours
in, errors that named no file, a missing pretrained checkpoint found late, an emptied ``last_checkpoint``)."""
import json
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mmadn.datasets import make_coco_instances
from mmadn.engine.hooks import AtomicLocalBackend, find_resume_checkpoint
from mmadn.utils import (DatasetCheckError, check_pretrained_checkpoints, load_config, missing_images,
                         preflight_datasets)

from ._cli import run_tool

DET_CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'
CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'
COCO_CONFIG = 'configs/mask_rcnn_r50_adn_fpn_1x_coco.py'
TRAIN_JSON = 'annotations/instances_train2017.json'


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('preflight_coco'))
    make_coco_instances(root, num_train=6, num_val=2, size=(64, 64), max_objects=3, seed=3)
    return root


def _det_cfg(root, ann_file=TRAIN_JSON, **options):
    cfg = load_config(DET_CONFIG)
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': root, 'train_dataloader.dataset.ann_file': ann_file,
                         **options})
    return cfg


def _edited(root, tmp_path, edit):
    """A copy of the train annotations changed by ``edit(data)``, beside the images of ``root``."""
    with open(osp.join(root, TRAIN_JSON)) as f:
        data = json.load(f)
    edit(data)
    path = tmp_path / 'edited.json'
    path.write_text(json.dumps(data))
    return str(path)


# --- 1: an override of a variable the config already substituted ---------------------------------------------


def test_overriding_a_substituted_data_root_names_the_dataloader_keys_to_set():
    with pytest.raises(ValueError, match='changes nothing') as err:
        load_config(DET_CONFIG, {'data_root': '/nonexistent/coco/'})
    message = str(err.value)
    for key in ('train_dataloader.dataset.data_root=/nonexistent/coco/',
                'val_dataloader.dataset.data_root=/nonexistent/coco/',
                'val_evaluator.ann_file=/nonexistent/coco/annotations/instances_val2017.json'):
        assert key in message, message


def test_overriding_a_substituted_iteration_count_names_where_it_went():
    with pytest.raises(ValueError, match='changes nothing') as err:
        load_config(CLS_CONFIG, {'max_iters': 5})
    assert 'train_cfg.max_iters=5' in str(err.value) and 'param_scheduler.1.end=5' in str(err.value)


def test_setting_the_dataloader_keys_themselves_is_accepted():
    cfg = load_config(DET_CONFIG, {'train_dataloader.dataset.data_root': '/elsewhere/'})
    assert cfg.train_dataloader.dataset.data_root == '/elsewhere/'
    # the variable together with every setting that holds it: nothing is left behind, so nothing is refused
    holders = {f'{s}_dataloader.dataset.data_root': '/x/' for s in ('train', 'val', 'test')}
    holders.update({f'{s}_evaluator.ann_file': '/x/a.json' for s in ('val', 'test')})
    assert load_config(DET_CONFIG, {'data_root': '/x/', **holders}).data_root == '/x/'


# --- 2: categories outside the classes, a renamed class ----------------------------------------------------------


def test_the_demo_data_passes_and_the_built_dataset_is_returned(coco_root):
    built = preflight_datasets(_det_cfg(coco_root), ('train', ))
    assert not isinstance(built['train'], dict) and len(built['train']) > 0
    assert built['train'].metainfo['classes'][0] == 'circle'


def test_annotations_of_unlisted_categories_are_counted_and_refused(coco_root, tmp_path):
    def add_category(data):
        data['categories'].append(dict(id=99, name='star'))
        for ann in data['annotations'][::3]:
            ann['category_id'] = 99
    ann_file = _edited(coco_root, tmp_path, add_category)
    n = len(json.load(open(ann_file))['annotations'][::3])
    with pytest.raises(DatasetCheckError) as err:
        preflight_datasets(_det_cfg(coco_root, ann_file), ('train', ))
    assert f"{n} of the" in str(err.value) and "'star': " in str(err.value)
    assert 'allow_unlisted_categories=True' in str(err.value)
    built = preflight_datasets(_det_cfg(coco_root, ann_file, allow_unlisted_categories=True), ('train', ))
    assert len(built['train']) > 0


def test_a_class_renamed_in_the_json_is_refused_with_the_rename(coco_root, tmp_path):
    def rename(data):
        next(c for c in data['categories'] if c['name'] == 'circle')['name'] = 'ring'
    with pytest.raises(DatasetCheckError, match=r"'circle' \(renamed 'ring'\?\)") as err:
        preflight_datasets(_det_cfg(coco_root, _edited(coco_root, tmp_path, rename)), ('train', ))
    assert 'wrong name' in str(err.value)


def test_classes_in_another_order_than_the_json_are_refused(coco_root):
    classes = ('square', 'circle', 'triangle', 'cross', 'diamond')
    cfg = _det_cfg(coco_root, **{'train_dataloader.dataset.metainfo.classes': classes})
    with pytest.raises(DatasetCheckError, match="another order"):
        preflight_datasets(cfg, ('train', ))


# --- 3: a missing image ----------------------------------------------------------------------------------------


def test_a_missing_image_is_named_before_training(coco_root, tmp_path):
    def add_image(data):
        data['images'].append(dict(id=10_000, file_name='gone.png', width=64, height=64))
        data['annotations'].append(dict(data['annotations'][0], id=10_000, image_id=10_000))
    with pytest.raises(DatasetCheckError, match=r'1 of the 7 images .* do not exist: .*gone\.png'):
        preflight_datasets(_det_cfg(coco_root, _edited(coco_root, tmp_path, add_image)), ('train', ))


def test_missing_images_are_found_with_one_listing_per_folder(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    assert missing_images([str(tmp_path / 'a.png'), str(tmp_path / 'b.png'), str(tmp_path / 'no' / 'c.png')]) == [
        str(tmp_path / 'b.png'), str(tmp_path / 'no' / 'c.png')]


@pytest.mark.slow
def test_train_tool_stops_on_a_missing_image_before_building_the_model(tmp_path):
    root = str(tmp_path / 'coco')
    make_coco_instances(root, num_train=4, num_val=2, size=(64, 64), max_objects=2, seed=0)
    os.remove(osp.join(root, 'train2017', sorted(os.listdir(osp.join(root, 'train2017')))[-1]))
    options = [f'{s}_dataloader.dataset.data_root={root}/' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={root}/annotations/instances_val2017.json' for s in ('val', 'test')]
    code, out = run_tool('tools/train.py', DET_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options', *options,
                         'model.backbone.init_cfg=None', check=False)
    assert code != 0 and 'do not exist' in out and 'DatasetCheckError' in out, out[-3000:]
    assert 'Iter(train)' not in out and not osp.exists(tmp_path / 'work' / 'last_checkpoint')


# --- 4: empty and unreadable annotation files -----------------------------------------------------------------


def test_an_empty_annotation_file_is_named(coco_root, tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_text('')
    with pytest.raises(DatasetCheckError, match=re.escape(f'{empty}') + r'.*empty \(0 bytes\)'):
        preflight_datasets(_det_cfg(coco_root, str(empty)), ('train', ))


def test_a_truncated_annotation_file_is_named(coco_root, tmp_path):
    cut = tmp_path / 'cut.json'
    cut.write_text(open(osp.join(coco_root, TRAIN_JSON)).read()[:200])
    with pytest.raises(DatasetCheckError, match=re.escape(str(cut)) + r' is not valid JSON'):
        preflight_datasets(_det_cfg(coco_root, str(cut)), ('train', ))


@pytest.mark.parametrize('case', ['no instances', 'no shared names'])
def test_annotations_with_nothing_to_train_on_say_so(coco_root, tmp_path, case):
    def edit(data):
        if case == 'no instances':
            data['annotations'] = []
        else:
            for c in data['categories']:
                c['name'] = c['name'].upper()
    with pytest.raises(DatasetCheckError) as err:
        preflight_datasets(_det_cfg(coco_root, _edited(coco_root, tmp_path, edit)), ('train', ))
    assert 'need at least one array' not in str(err.value)
    assert ('no annotated object' if case == 'no instances' else 'are not categories of') in str(err.value)


def test_the_classification_demo_config_passes(tmp_path):
    from mmadn.datasets import make_classification_folder
    root = str(tmp_path / 'cls')
    make_classification_folder(root, classes=('circle', 'square'), train_per_class=2, val_per_class=1, size=16)
    cfg = load_config(CLS_CONFIG)
    cfg.merge_from_dict({f'{s}_dataloader.dataset.data_root': root for s in ('train', 'val')})
    built = preflight_datasets(cfg, ('train', 'val'))
    assert len(built['train']) == 4 and len(built['val']) == 2


# --- 5: a pretrained checkpoint that is missing ---------------------------------------------------------------


def test_a_missing_pretrained_checkpoint_is_named_with_the_commands_that_make_it():
    cfg = Config.fromfile(COCO_CONFIG)
    with pytest.raises(FileNotFoundError) as err:
        check_pretrained_checkpoints(cfg)
    message = str(err.value)
    for says in ('checkpoints/resnet50_adn_in1k.pth', 'model.backbone.init_cfg.checkpoint',
                 'cls_to_det_backbone.py', 'adn_converter.py', '_from_plain_in1k.py',
                 'model.backbone.init_cfg=None'):
        assert says in message, message


@pytest.mark.slow
def test_train_tool_names_the_missing_checkpoint_before_loading_data(coco_root, tmp_path):
    options = [f'{s}_dataloader.dataset.data_root={coco_root}/' for s in ('train', 'val', 'test')]
    code, out = run_tool('tools/train.py', COCO_CONFIG, '--work-dir', tmp_path, '--cfg-options', *options,
                         check=False)
    assert code != 0 and 'cls_to_det_backbone.py' in out and 'loading annotations' not in out, out[-3000:]


# --- 8: last_checkpoint written atomically, and a resume that survives an emptied one ----------------------


def test_last_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    record = tmp_path / 'last_checkpoint'
    record.write_text('work/iter_1.pth')

    def killed(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        AtomicLocalBackend().put_text('work/iter_2.pth', str(record))
    assert record.read_text() == 'work/iter_1.pth' and os.listdir(tmp_path) == ['last_checkpoint']


def test_resume_falls_back_to_the_newest_complete_checkpoint(tmp_path, log_capture):
    import torch
    for step in (1, 2):
        torch.save({'meta': {'iter': step}}, tmp_path / f'iter_{step}.pth')
    (tmp_path / 'iter_3.pth').write_bytes(open(tmp_path / 'iter_2.pth', 'rb').read()[:50])  # cut short
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert 'is empty: resuming from the newest complete checkpoint' in ' '.join(log_capture)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'moved' / 'iter_9.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')
    assert find_resume_checkpoint(str(tmp_path / 'none')) is None


@pytest.mark.slow
def test_train_resumes_after_last_checkpoint_was_emptied(tmp_path):
    from mmadn.datasets import make_classification_folder
    root = str(tmp_path / 'cls')
    make_classification_folder(root, classes=('circle', 'square'), train_per_class=4, val_per_class=2, size=32)
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    options += [f'{s}_dataloader.num_workers=0' for s in ('train', 'val', 'test')]
    options += ['model.head.num_classes=2', 'data_preprocessor.num_classes=2', 'train_dataloader.batch_size=4',
                'custom_hooks=[]', 'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1']
    work = tmp_path / 'work'
    run_tool('tools/train.py', CLS_CONFIG, '--work-dir', work, '--cfg-options', *options, 'train_cfg.max_iters=2')
    (work / 'last_checkpoint').write_text('')  # a kill at the moment mmengine had opened it for writing
    _, out = run_tool('tools/train.py', CLS_CONFIG, '--work-dir', work, '--resume', '--cfg-options', *options,
                      'train_cfg.max_iters=3')
    assert 'is empty: resuming from the newest complete checkpoint' in out, out[-3000:]
    assert re.search(r'resumed epoch: \d+, iter: 2', out), out[-3000:]
    assert (work / 'last_checkpoint').read_text().endswith('iter_3.pth')


@pytest.mark.slow
def test_benchmark_tool_runs_the_preflight_before_building_the_model(tmp_path):
    root = str(tmp_path / 'coco')
    make_coco_instances(root, num_train=2, num_val=2, size=(64, 64), max_objects=2, seed=0)
    os.remove(osp.join(root, 'val2017', sorted(os.listdir(osp.join(root, 'val2017')))[0]))
    ckpt = tmp_path / 'det.pth'
    ckpt.write_bytes(b'')  # never read: the data is refused first
    options = [f'test_dataloader.dataset.data_root={root}/',
               f'test_evaluator.ann_file={root}/annotations/instances_val2017.json']
    code, out = run_tool('tools/analysis_tools/benchmark_subnets.py', DET_CONFIG, ckpt, '--cfg-options', *options,
                         check=False)
    assert code == 2 and '1 of the 2 images of the test dataset' in out, out[-3000:]
