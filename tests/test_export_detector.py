"""Issue 32: a whole two-stage ADN detector at one depth in ONNX Runtime predicts what mmdet predicts in PyTorch."""
import importlib.util
import logging
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmadn.deploy.detector_export import DeployableDetector, detection_agreement, export_detector

from ._cli import ROOT, THREADS, load_tool, run_main, run_tool
from ._torch_features import needs_all_depths

CONFIGS = dict(faster='configs/demo/faster_rcnn_r18_adn_fpn_synthetic.py',
               mask='configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py')
EXAMPLE = 'tools/deployment/onnx_detect_example.py'
SHAPE = (120, 160)  # 120 is not a multiple of 32: the model pads as mmdet's data preprocessor does


def _random_detector(cfg):
    """``cfg.model`` built (seed 0) and initialised, its norm statistics moved off 0 / 1 so that a norm set used in
    the wrong place shows in the outputs."""
    from mmdet.registry import MODELS
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    level = MMLogger.get_current_instance().level
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every parameter
    model.init_weights()
    MMLogger.get_current_instance().setLevel(level)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    return model


def _switched_calls_predict_as_mmdet(model, path, image, skips, min_detections, score_atol=None):
    """Runs the all-depths model at ``path`` once per skip, switched call by call in one ONNX Runtime session, and
    checks each call against mmdet's ``predict`` at that depth; returns each call's boxes."""
    from mmadn.deploy.all_depths import skip_tensor
    from mmadn.deploy.runtime import make_session
    run = make_session(str(path), 'onnxruntime')
    boxes = {}
    for skip in skips:
        model.backbone.skip = skip
        expected = _mmdet_predict(model, image)
        got = run(image.numpy(), np.array(SHAPE, np.float32), skip_tensor(skip).numpy())
        n = int(got[3][0])
        assert n == len(expected) >= min_detections, skip
        np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3, err_msg=skip)
        if score_atol is not None:
            np.testing.assert_allclose(got[1][0, :n], expected.scores.numpy(), rtol=0, atol=score_atol, err_msg=skip)
        np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy(), err_msg=skip)
        boxes[skip] = got[0][0, :n]
    return boxes


def _tiny_detector(name, score_thr=0.05, max_per_img=20):
    """A demo detector, randomly initialised, with norm statistics away from their initial values and a classifier
    whose scores spread out (an untrained one scores every class about 1 / 6: near-ties that would make NMS, not the
    export, decide which boxes survive)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    cfg.model.backbone.zero_init_residual = False
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rcnn.update(score_thr=score_thr, max_per_img=max_per_img)
    model = _random_detector(cfg)
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.weight.normal_(0, 0.03)
        model.rpn_head.rpn_cls.weight.normal_(0, 0.3)
    return model.eval()


def _mmdet_predict(model, image, ori_shape=None, scale_factor=(1.0, 1.0)):
    """mmdet's own prediction for a ``(1, 3, h, w)`` 0-255 image resized by ``scale_factor`` (x, y) from an
    original of ``ori_shape``: its data preprocessor, its ``predict`` (boxes and masks back in the original)."""
    from mmdet.structures import DetDataSample
    shape = tuple(image.shape[-2:])
    meta = dict(img_shape=shape, ori_shape=ori_shape or shape, scale_factor=scale_factor)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[image[0]], data_samples=[DetDataSample(metainfo=meta)]), False)
        return model(**data, mode='predict')[0].pred_instances


def _onnxruntime(path, image, image_shape=SHAPE):
    from mmadn.deploy.runtime import make_session
    return make_session(path, 'onnxruntime')(image.numpy(), np.array(image_shape, np.float32))


@pytest.mark.parametrize('skip', ['FFFF', 'TTTT'])
@pytest.mark.parametrize('name', ['faster', 'mask'])
def test_onnx_detector_predicts_what_mmdet_predicts(tmp_path, name, skip):
    model = _tiny_detector(name, max_per_img=200)
    model.backbone.skip = skip
    image = torch.rand(1, 3, *SHAPE) * 255
    expected = _mmdet_predict(model, image)
    assert 10 <= len(expected) < 200, 'the check needs detections, and padding rows'
    detector = DeployableDetector(model, SHAPE)
    # the TorchScript exporter here (about 1 s); the default dynamo one (about 10 s) in the empty-output and
    # all-depths tests
    path = export_detector(detector, str(tmp_path / f'{skip}.onnx'), dynamo=False)
    got = _onnxruntime(path, image)
    assert [o.shape for o in got[:4]] == [(1, 200, 4), (1, 200), (1, 200), (1, )]
    n = int(got[3][0])
    assert n == len(expected)
    assert not any(o[0, n:].any() for o in got[:3] + got[4:])  # the padding rows are zeros
    np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(got[1][0, :n], expected.scores.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy())
    with torch.no_grad():  # the module itself, in PyTorch, agrees too
        agreement = detection_agreement([t.numpy() for t in detector(image)], got)
    assert agreement['labels_equal'] and agreement['max_box_error'] < 1e-3, agreement
    if name == 'mask':
        assert got[4].shape == (1, 200, 28, 28) and agreement['max_mask_error'] < 1e-4
        masks = load_tool(EXAMPLE).paste_masks(got[4][0, :n], got[0][0, :n], *SHAPE)
        expected_masks = expected.masks.numpy()
        assert expected_masks.any(axis=(1, 2)).sum() >= n // 2, 'the check needs non-empty masks'
        assert (masks != expected_masks).mean() < 1e-3  # a pixel at the 0.5 threshold may flip


def test_each_depth_exports_its_own_graph(tmp_path):
    model = _tiny_detector('faster')
    sizes, convs = {}, {}
    import onnx
    for skip in ('FFFF', 'TTTT'):
        model.backbone.skip = skip
        path = export_detector(DeployableDetector(model, SHAPE), str(tmp_path / f'{skip}.onnx'), dynamo=False)
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        assert meta['input_shape'] == '120,160' and meta['max_per_img'] == '20'
        sizes[skip] = osp.getsize(path)
        convs[skip] = sum(n.op_type == 'Conv' for n in onnx.load(path).graph.node)
    # ResNet-18: the base-net runs one basic block (2 convs) of 2 in each stage
    assert convs['FFFF'] - convs['TTTT'] == 4 * 2
    assert sizes['TTTT'] < 0.8 * sizes['FFFF']


@pytest.mark.slow
def test_an_image_without_detections_gives_zero_rows(tmp_path):
    model = _tiny_detector('mask', score_thr=1.0)  # no softmax score is above 1
    image = torch.rand(1, 3, *SHAPE) * 255
    assert len(_mmdet_predict(model, image)) == 0
    got = _onnxruntime(export_detector(DeployableDetector(model, SHAPE), str(tmp_path / 'm.onnx')), image)
    assert int(got[3][0]) == 0
    assert got[0].shape == (1, 20, 4) and got[4].shape == (1, 20, 28, 28)
    assert all(not o.any() for o in got[:3] + got[4:])


def test_a_smaller_image_padded_into_the_input_predicts_as_in_mmdet(tmp_path):
    """An image smaller than the exported size, padded with the metadata's pixel and its size given as
    ``image_shape``: mmdet pads it to the same multiple of 32 and clips to its own size, and so does the model."""
    import onnx
    model = _tiny_detector('faster')
    image = torch.rand(1, 3, 100, 160) * 255  # mmdet pads 100 to 128, as the model pads 120
    expected = _mmdet_predict(model, image)
    assert len(expected) >= 10
    path = export_detector(DeployableDetector(model, SHAPE), str(tmp_path / 'm.onnx'), dynamo=False)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    canvas = torch.tensor([float(v) for v in meta['pad_pixel'].split(',')]).view(1, 3, 1, 1).repeat(1, 1, *SHAPE)
    canvas[:, :, :100] = image
    got = _onnxruntime(path, canvas, (100, 160))
    n = int(got[3][0])
    assert n == len(expected)
    np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy())
    clipped = _onnxruntime(path, canvas, (60, 160))  # image_shape is what the boxes are clipped to
    assert clipped[0][0, :int(clipped[3][0]), 3].max() <= 60 < got[0][0, :n, 3].max()


def test_unsupported_detectors_are_refused():
    with pytest.raises(TypeError, match='two-stage'):
        DeployableDetector(torch.nn.Linear(2, 2), SHAPE)
    model = _tiny_detector('faster')
    model.roi_head.test_cfg.nms = dict(type='soft_nms', iou_threshold=0.5)
    with pytest.raises(TypeError, match='soft_nms'):
        DeployableDetector(model, SHAPE)


@pytest.mark.slow
def test_export_tool_and_the_example_run_without_torch(tmp_path):
    """The user's path: export with the tool, run the example script in a process that never imports PyTorch,
    mmdet or mmcv, and read the same detections as mmdet's predict."""
    import cv2
    model = _tiny_detector('mask')
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)  # resized to 133 x 160 as mmdet's test Resize
    cv2.imwrite(str(tmp_path / 'image.png'), bgr)
    out = tmp_path / 'model.onnx'
    # the faster exporter: the default one runs in the all-depths test below
    _, log = run_tool('tools/deployment/export_detector.py', CONFIGS['mask'], ckpt, '--skip', 'TTTT', '--out', out,
                      '--legacy-exporter', '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.05')
    assert 'written:' in log and '"labels_equal": true' in log, log[-3000:]

    lines = _run_example_without_torch(out, tmp_path / 'image.png')
    assert lines[0].endswith('(depth TTTT):'), lines
    rows = [line.split() for line in lines[1:]]

    model.backbone.skip = 'TTTT'
    resized = cv2.resize(bgr, (160, 133), interpolation=cv2.INTER_LINEAR)  # mmcv.imresize's default
    expected = _mmdet_predict(model, torch.from_numpy(resized).permute(2, 0, 1)[None].float(), (200, 240),
                              (160 / 240, 133 / 200))
    assert len(rows) == len(expected) >= 5
    classes = ('circle', 'square', 'triangle', 'cross', 'diamond')
    assert [r[0] for r in rows] == [classes[i] for i in expected.labels.tolist()]
    boxes = np.array([[float(v) for v in r[2:6]] for r in rows])
    np.testing.assert_allclose(boxes, expected.bboxes.numpy(), rtol=0, atol=0.01)  # printed to 2 decimals
    areas = np.array([int(r[6].split('=')[1]) for r in rows])
    np.testing.assert_allclose(areas, expected.masks.sum((1, 2)).numpy(), rtol=0.01, atol=2)


def _run_example_without_torch(*argv):
    """The example script in a fresh process; fails unless it ran without importing PyTorch, mmdet or mmcv."""
    script = (f'import runpy, sys\nsys.argv = ["example", *{[str(a) for a in argv]!r}]\n'
              f'try:\n    runpy.run_path({osp.join(ROOT, EXAMPLE)!r}, run_name="__main__")\n'
              'except SystemExit as exit_:\n    assert not exit_.code, exit_.code\n'
              'heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "mmdet", "mmcv", "mmengine"))\n'
              'print("HEAVY", heavy)\n')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'OMP_NUM_THREADS': THREADS})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == 'HEAVY []', proc.stdout[-3000:]
    return lines[:-1]


@pytest.mark.slow
@needs_all_depths
def test_one_model_holds_every_depth_with_its_weights_once(tmp_path):
    """The all-depths model (export_detector.py --all-depths): a ``skip`` input picks the depth per call (ONNX
    ``If`` around each skippable stage), every depth predicts what mmdet predicts at it, in one session, and the
    file is about the size of the super-net's alone."""
    import cv2
    import onnx

    from mmadn.deploy.all_depths import skip_tensor
    from mmadn.deploy.runtime import make_session
    model = _tiny_detector('faster')
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    path = tmp_path / 'all.onnx'
    _, log = run_tool('tools/deployment/export_detector.py', CONFIGS['faster'], ckpt, '--all-depths', '--out', path,
                      '--shape', *SHAPE, '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.05')
    assert 'at FFFF: {' in log and 'at TTTT: {' in log, log[-3000:]
    proto = onnx.load(path)
    assert sum(n.op_type == 'If' for n in proto.graph.node) == 4  # ResNet-18: every stage has a block to skip
    assert [i.name for i in proto.graph.input] == ['image', 'image_shape', 'skip']
    model.backbone.skip = 'FFFF'
    super_net = export_detector(DeployableDetector(model, SHAPE), str(tmp_path / 'FFFF.onnx'), dynamo=False)
    assert osp.getsize(path) < 1.05 * osp.getsize(super_net)  # not 2x: both branches read the same weights

    image = torch.rand(1, 3, *SHAPE) * 255
    _switched_calls_predict_as_mmdet(model, path, image, ('FFFF', 'TFFT', 'FTTF', 'TTTT'), min_detections=10)

    if importlib.util.find_spec('openvino'):  # OpenVINO runs the same file (NonMaxSuppression, RoiAlign, If)
        got = make_session(str(path), 'openvino')(image.numpy(), np.array(SHAPE, np.float32),
                                                  skip_tensor('TTTT').numpy())
        model.backbone.skip = 'TTTT'
        expected = _mmdet_predict(model, image)
        n = int(got[3][0])
        assert n == len(expected)
        np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy())

    cv2.imwrite(str(tmp_path / 'image.png'), image[0].permute(1, 2, 0).round().byte().numpy())
    lines = _run_example_without_torch(path, tmp_path / 'image.png', '--skip', 'TTTT')
    assert lines[0].endswith('(depth TTTT):') and len(lines) > 10, lines


# ---- benchmark_subnets.py --backend: COCO AP from the runtime's own detections (issue 32) -------------------------
SCORED_SHAPE = (160, 160)  # the demo config's test Resize scale: a 240 x 200 image becomes 160 x 133, padded to 160


def _test_loader(root, config=CONFIGS['mask']):
    """The config's test dataloader on ``root`` (its own test pipeline: LoadImageFromFile, Resize); by default the
    Mask R-CNN demo config's."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = Config.fromfile(osp.join(ROOT, config)).test_dataloader
    loader.dataset.data_root = f'{root}/'
    loader.update(num_workers=0, persistent_workers=False, batch_size=2)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Runner.build_dataloader(loader)


def _coco_evaluator(ann_file, dataset):
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        evaluator = Evaluator(dict(type='CocoMetric', ann_file=str(ann_file), metric=['bbox', 'segm']))
    evaluator.dataset_meta = dataset.metainfo
    return evaluator


@pytest.fixture(scope='module')
def scored_coco(tmp_path_factory):
    """Three generated 240 x 200 images (the test pipeline resizes them to 160 x 133: boxes and masks must be mapped
    back) whose ground truth is every other detection of the tiny Mask R-CNN in mmdet at FFFF and at TTTT: its AP is
    then neither 0 nor 1 at either depth, and a detection that lands elsewhere changes it. Returns the data root,
    the ground truth's path and the detector's checkpoint."""
    import json

    import pycocotools.mask as mask_utils

    from mmadn.datasets import make_coco_instances
    root = tmp_path_factory.mktemp('scored_coco')
    paths = make_coco_instances(str(root), num_train=1, num_val=3, size=(240, 200), max_objects=3, seed=3)
    model = _tiny_detector('mask')
    ckpt = root / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    coco, annotations = json.load(open(paths['val2017'])), []
    for skip in ('FFFF', 'TTTT'):
        model.backbone.skip = skip
        for batch in _test_loader(root):
            with torch.no_grad():
                samples = model.test_step(batch)
            for sample in samples:
                pred = sample.pred_instances
                for i in range(0, len(pred), 2):
                    mask = pred.masks[i].numpy()
                    if not mask.any():
                        continue
                    x1, y1, x2, y2 = pred.bboxes[i].tolist()
                    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                    annotations.append(dict(id=len(annotations) + 1, image_id=sample.img_id, iscrowd=0,
                                            category_id=int(pred.labels[i]) + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                                            area=float(mask.sum()),
                                            segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
    assert len(annotations) >= 12, 'the check needs ground truth'
    ann_file = root / 'annotations' / 'scored_val.json'
    with open(ann_file, 'w') as f:
        json.dump(dict(coco, annotations=annotations), f)
    return root, ann_file, ckpt


class _NotMappedBack:
    """A runtime detector that leaves its detections in the resized image: what the parity check must tell apart."""

    def __init__(self, detector):
        self.detector = detector

    def predict(self, inputs, data_samples, skip=None):
        for image, sample in zip(inputs, data_samples):
            meta = dict(sample.metainfo, scale_factor=(1.0, 1.0), ori_shape=sample.img_shape)
            sample.pred_instances = self.detector.instances(self.detector(*self.detector.feed(image, skip)), meta)
        return data_samples


@pytest.mark.slow
def test_runtime_detections_score_the_ap_of_mmdets_predictions(tmp_path, scored_coco):
    """COCO bbox and segm AP of the exported model's own outputs in ONNX Runtime (mapped back to the original
    images by ``RuntimeDetector``) equal those of mmdet's ``predict`` on the same images, at FFFF and TTTT."""
    from mmadn.deploy.runtime_detector import RuntimeDetector, evaluate_runtime
    root, ann_file, _ = scored_coco
    model = _tiny_detector('mask')
    loader = _test_loader(root)
    for skip in ('FFFF', 'TTTT'):
        model.backbone.skip = skip
        evaluator, detections = _coco_evaluator(ann_file, loader.dataset), 0
        for batch in loader:
            with torch.no_grad():
                samples = model.test_step(batch)
            detections += sum(len(s.pred_instances) for s in samples)
            evaluator.process(data_samples=samples, data_batch=batch)
        expected = evaluator.evaluate(len(loader.dataset))
        path = export_detector(DeployableDetector(model, SCORED_SHAPE), str(tmp_path / f'{skip}.onnx'), dynamo=False)
        runtime = RuntimeDetector(path)
        assert runtime.mask_thr == 0.5 and runtime.skip is None  # read from the file's metadata
        got, images, got_detections = evaluate_runtime(runtime, loader, _coco_evaluator(ann_file, loader.dataset))
        assert (images, got_detections) == (3, detections)
        for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
            assert 0.1 < expected[key] < 0.95, (skip, key, expected[key])
            assert got[key] == pytest.approx(expected[key], abs=1e-3), (skip, key)  # CocoMetric rounds to 1e-3
        unmapped, _, _ = evaluate_runtime(_NotMappedBack(runtime), loader, _coco_evaluator(ann_file, loader.dataset))
        assert unmapped['coco/bbox_mAP'] < expected['coco/bbox_mAP'] - 0.05, 'the check must see a wrong mapping'


@pytest.mark.slow
@needs_all_depths
def test_benchmark_tool_scores_the_whole_detector_in_the_runtime(tmp_path, scored_coco, capsys, monkeypatch):
    """benchmark_subnets.py --backend onnxruntime exports all depths in one model and takes each row's quality from
    the runtime's detections, PyTorch's beside it: at FFFF they agree; at TTTT a runtime patched to keep only its
    best detection per image scores lower than PyTorch in the table, so the table reads the runtime."""
    import json

    from mmadn.deploy.runtime_detector import RuntimeDetector
    root, ann_file, ckpt = scored_coco
    predict = RuntimeDetector.predict

    def best_only_at_tttt(self, inputs, data_samples, skip=None):
        samples = predict(self, inputs, data_samples, skip)
        if skip == 'TTTT':
            for sample in samples:
                sample.pred_instances = sample.pred_instances[:1]
        return samples

    monkeypatch.setattr(RuntimeDetector, 'predict', best_only_at_tttt)
    opts = [f'test_dataloader.dataset.data_root={root}/', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', 'test_dataloader.batch_size=2',
            f'test_evaluator.ann_file={ann_file}', 'model.backbone.init_cfg=None', 'model.test_cfg.rcnn.score_thr=0.05']
    code, out = run_main(capsys, 'tools/analysis_tools/benchmark_subnets.py', CONFIGS['mask'], ckpt, '--skips', 'FFFF',
                         'TTTT', '--backend', 'onnxruntime', '--device', 'cpu', '--runs', '1', '--warmup', '0',
                         '--memory-format', 'contiguous', '--out-dir', tmp_path, '--cfg-options', *opts)
    assert code == 0, out[-3000:]
    table = json.load(open(tmp_path / 'subnets.json'))
    assert 'whole detector in onnxruntime' in table['title'] and 'ONNX model: all-depths' in table['title']
    assert osp.isfile(tmp_path / 'onnx' / 'all_depths.detector.onnx')
    rows = {row['skip']: row for row in table['subnets']}
    for row in rows.values():
        assert row['quality_source'] == 'onnxruntime' and row['runtime_model'] == 'all-depths'
        assert min(row['latency_ms'], row['pytorch_latency_ms'], row['session_latency_ms']) > 0
    full = rows['FFFF']
    assert 0.1 < full['pytorch_bbox_mAP'] < 0.95 and full['runtime_detections'] == full['detections']
    for key in ('bbox_mAP', 'segm_mAP'):
        assert full[key] == pytest.approx(full[f'pytorch_{key}'], abs=1e-3)
    assert full['quality_gap'] <= 1e-3
    base = rows['TTTT']
    assert base['runtime_detections'] == 1 < base['detections']
    assert base['bbox_mAP'] < base['pytorch_bbox_mAP'] - 0.05 and base['quality_gap'] > 0.05
    assert '| pytorch_bbox_mAP |' in open(tmp_path / 'subnets.md').read()


# ---- RetinaNet: the dense head exported whole (issue 32) ------------------------------------------------------------
# The COCO config with a ResNet-18-ADN, a 32-channel FPN and head, the demo's five classes and its 160 x 160 test
# Resize; nms_pre 300: P3 and P4 of a 120 x 160 input hold more candidates above the threshold (the top-k decides), P6
# and P7 fewer anchor-class pairs (no top-k); max_per_img 300 leaves padding rows
TINY_RETINANET = f'''
_base_ = {osp.join(ROOT, 'configs/retinanet_r50_adn_fpn_1x_coco.py')!r}
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, zero_init_residual=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    bbox_head=dict(num_classes=5, in_channels=32, feat_channels=32, stacked_convs=2),
    test_cfg=dict(nms_pre=300, max_per_img=300))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(dataset=dict(
    pipeline=test_pipeline, metainfo=dict(classes=('circle', 'square', 'triangle', 'cross', 'diamond'))))
'''


@pytest.fixture(scope='module')
def retinanet_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('retinanet') / 'tiny_retinanet.py'
    path.write_text(TINY_RETINANET)
    return str(path)


def _tiny_retinanet(config, **test_cfg):
    """The tiny RetinaNet-ADN, randomly initialised, norm statistics moved and its classifier spread (about 1 in 3
    anchor-class scores above 0.05 at FFFF, not all near 0.01 as the focal-loss prior makes them)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.model.test_cfg.update(test_cfg)
    model = _random_detector(cfg)
    with torch.no_grad():
        model.bbox_head.retina_cls.weight.normal_(0, 0.3)
        model.bbox_head.retina_cls.bias.fill_(-3.0)
        model.bbox_head.retina_reg.weight.normal_(0, 0.05)
    return model.eval()


@pytest.mark.parametrize('skip', ['FFFF', 'TTTT'])
def test_onnx_retinanet_predicts_what_mmdet_predicts(tmp_path, retinanet_config, skip):
    model = _tiny_retinanet(retinanet_config)
    model.backbone.skip = skip
    image = torch.rand(1, 3, *SHAPE) * 255
    with torch.no_grad():
        cls_scores, _ = model.bbox_head(model.extract_feat(model.data_preprocessor(
            dict(inputs=[image[0]]), False)['inputs']))
    above = [int((s.sigmoid() > 0.05).sum()) for s in cls_scores]
    assert above[0] > 300 and above[1] > 300 and cls_scores[-1].numel() < 300, 'the check needs the top-k and not'
    expected = _mmdet_predict(model, image)
    assert 30 <= len(expected) < 300, 'the check needs detections, and padding rows'
    assert len(set(expected.labels.tolist())) == 5
    detector = DeployableDetector(model, SHAPE)
    assert type(detector.heads).__name__ == 'DenseHeads' and detector.output_names[-1] == 'num_detections'
    got = _onnxruntime(export_detector(detector, str(tmp_path / f'{skip}.onnx'), dynamo=False), image)
    assert [o.shape for o in got] == [(1, 300, 4), (1, 300), (1, 300), (1, )]
    n = int(got[3][0])
    assert n == len(expected)
    assert not any(o[0, n:].any() for o in got[:3])
    np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(got[1][0, :n], expected.scores.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy())


def test_a_retinanet_without_detections_gives_zero_rows(tmp_path, retinanet_config):
    model = _tiny_retinanet(retinanet_config, score_thr=1.0)  # no sigmoid score is above 1
    image = torch.rand(1, 3, *SHAPE) * 255
    assert len(_mmdet_predict(model, image)) == 0
    got = _onnxruntime(export_detector(DeployableDetector(model, SHAPE), str(tmp_path / 'r.onnx'), dynamo=False),
                       image)
    assert int(got[3][0]) == 0 and got[0].shape == (1, 300, 4) and not any(o.any() for o in got[:3])


def test_unsupported_dense_heads_are_refused_with_the_reason(retinanet_config):
    from mmadn.deploy.runtime_detector import whole_detector_refusal
    model = _tiny_retinanet(retinanet_config)
    assert whole_detector_refusal(model) is None
    model.bbox_head.test_cfg.nms_pre = -1
    assert 'nms_pre=-1' in whole_detector_refusal(model)
    model = _tiny_retinanet(retinanet_config, nms=dict(type='soft_nms', iou_threshold=0.5))
    with pytest.raises(TypeError, match='soft_nms'):
        DeployableDetector(model, SHAPE)
    model = _tiny_retinanet(retinanet_config)
    model.bbox_head.use_sigmoid_cls = False
    with pytest.raises(TypeError, match='not a sigmoid'):
        DeployableDetector(model, SHAPE)
    # an anchor head with another prediction path (ATSS multiplies by its centerness): refused by its type
    model.bbox_head.__class__ = type('ATSSHead', (type(model.bbox_head), ), {})
    with pytest.raises(TypeError, match='ATSSHead, not RetinaHead'):
        DeployableDetector(model, SHAPE)


@pytest.mark.slow
@needs_all_depths
def test_one_retinanet_model_holds_every_depth(tmp_path, retinanet_config):
    """The user's path for RetinaNet: export_detector.py --all-depths (the default exporter), the depth switched per
    call in one session, each depth what mmdet predicts at it, and the example script without PyTorch."""
    import cv2
    import onnx

    model = _tiny_retinanet(retinanet_config)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    path = tmp_path / 'all.onnx'
    _, log = run_tool('tools/deployment/export_detector.py', retinanet_config, ckpt, '--all-depths', '--out', path,
                      '--shape', *SHAPE)
    assert 'at FFFF: {' in log and 'at TTTT: {' in log and 'outputs boxes, scores, labels, num_detections)' in log
    proto = onnx.load(path)
    assert sum(n.op_type == 'If' for n in proto.graph.node) == 4
    assert [i.name for i in proto.graph.input] == ['image', 'image_shape', 'skip']

    image = torch.rand(1, 3, *SHAPE) * 255
    boxes = _switched_calls_predict_as_mmdet(model, path, image, ('FFFF', 'TFFT', 'TTTT'), min_detections=30,
                                             score_atol=1e-5)
    assert not np.array_equal(boxes['FFFF'][:10], boxes['TTTT'][:10]), 'the skip input must change the depth'

    cv2.imwrite(str(tmp_path / 'image.png'), image[0].permute(1, 2, 0).round().byte().numpy())
    lines = _run_example_without_torch(path, tmp_path / 'image.png', '--skip', 'TTTT', '--score-thr', '0.06')
    assert lines[0].endswith('(depth TTTT):') and len(lines) > 5, lines
    assert {line.split()[0] for line in lines[1:]} <= {'circle', 'square', 'triangle', 'cross', 'diamond'}
    assert all('mask_area' not in line for line in lines)


@pytest.mark.slow
@needs_all_depths
def test_benchmark_tool_scores_retinanet_in_the_runtime_as_in_pytorch(tmp_path, retinanet_config):
    """benchmark_subnets.py --backend onnxruntime on the tiny RetinaNet (its all-depths model): the COCO bbox AP of
    the runtime's own detections, mapped back to three generated 240 x 200 images, equals mmdet's at FFFF and TTTT.
    The ground truth is every other one of mmdet's 10 best detections per image at both depths, so that the AP is
    neither 0 nor 1."""
    import json

    from mmadn.datasets import make_coco_instances
    paths = make_coco_instances(str(tmp_path), num_train=1, num_val=3, size=(240, 200), max_objects=3, seed=3)
    model = _tiny_retinanet(retinanet_config)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    coco, annotations = json.load(open(paths['val2017'])), []
    for skip in ('FFFF', 'TTTT'):
        model.backbone.skip = skip
        for batch in _test_loader(tmp_path, retinanet_config):
            with torch.no_grad():
                samples = model.test_step(batch)
            for sample in samples:
                pred = sample.pred_instances
                for i in range(0, min(10, len(pred)), 2):
                    x1, y1, x2, y2 = pred.bboxes[i].tolist()
                    annotations.append(dict(id=len(annotations) + 1, image_id=sample.img_id, iscrowd=0,
                                            category_id=int(pred.labels[i]) + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                                            area=(x2 - x1) * (y2 - y1)))
    ann_file = tmp_path / 'annotations' / 'scored_val.json'
    with open(ann_file, 'w') as f:
        json.dump(dict(coco, annotations=annotations), f)
    opts = [f'test_dataloader.dataset.data_root={tmp_path}/', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', 'test_dataloader.batch_size=2',
            f'test_evaluator.ann_file={ann_file}']
    _, log = run_tool('tools/analysis_tools/benchmark_subnets.py', retinanet_config, ckpt, '--skips', 'FFFF', 'TTTT',
                      '--backend', 'onnxruntime', '--device', 'cpu', '--runs', '1', '--warmup', '0',
                      '--memory-format', 'contiguous', '--out-dir', tmp_path / 'bench', '--cfg-options', *opts)
    table = json.load(open(tmp_path / 'bench' / 'subnets.json'))
    assert 'whole detector in onnxruntime' in table['title'], log[-3000:]
    for row in table['subnets']:
        assert row['quality_source'] == 'onnxruntime' and row['runtime_model'] == 'all-depths'
        assert 0.1 < row['pytorch_bbox_mAP'] < 0.95, row
        assert row['bbox_mAP'] == pytest.approx(row['pytorch_bbox_mAP'], abs=1e-3), row
        assert row['runtime_detections'] == row['detections'] > 30, row
