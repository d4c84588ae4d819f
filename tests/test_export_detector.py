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

from ._cli import ROOT, THREADS, load_tool, run_tool

CONFIGS = dict(faster='configs/demo/faster_rcnn_r18_adn_fpn_synthetic.py',
               mask='configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py')
EXAMPLE = 'tools/deployment/onnx_detect_example.py'
SHAPE = (120, 160)  # 120 is not a multiple of 32: the model pads as mmdet's data preprocessor does


def _tiny_detector(name, score_thr=0.05, max_per_img=20):
    """A demo detector, randomly initialised, with norm statistics away from their initial values and a classifier
    whose scores spread out (an untrained one scores every class about 1 / 6: near-ties that would make NMS, not the
    export, decide which boxes survive)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    cfg.model.backbone.zero_init_residual = False
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rcnn.update(score_thr=score_thr, max_per_img=max_per_img)
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
    run = make_session(str(path), 'onnxruntime')
    for skip in ('FFFF', 'TFFT', 'FTTF', 'TTTT'):  # switched call by call in one session
        model.backbone.skip = skip
        expected = _mmdet_predict(model, image)
        got = run(image.numpy(), np.array(SHAPE, np.float32), skip_tensor(skip).numpy())
        n = int(got[3][0])
        assert n == len(expected) >= 10, skip
        np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3, err_msg=skip)
        np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy(), err_msg=skip)

    if importlib.util.find_spec('openvino'):  # OpenVINO runs the same file (NonMaxSuppression, RoiAlign, If)
        got = make_session(str(path), 'openvino')(image.numpy(), np.array(SHAPE, np.float32),
                                                  skip_tensor('TTTT').numpy())
        n = int(got[3][0])
        assert n == len(expected)  # expected: mmdet's at the last depth of the loop above
        np.testing.assert_allclose(got[0][0, :n], expected.bboxes.numpy(), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(got[2][0, :n], expected.labels.numpy())

    cv2.imwrite(str(tmp_path / 'image.png'), image[0].permute(1, 2, 0).round().byte().numpy())
    lines = _run_example_without_torch(path, tmp_path / 'image.png', '--skip', 'TTTT')
    assert lines[0].endswith('(depth TTTT):') and len(lines) > 10, lines
