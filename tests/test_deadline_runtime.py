"""Issue 32: the deadline controller drives the whole detector's all-depths ONNX model in ONNX Runtime, the depth
fed as an input of each call, with no PyTorch model running in the loop (tools/deployment/deadline_demo.py
--backend onnxruntime)."""
import json

import pytest
import torch

from mmadn.deploy import DeadlineController
from mmadn.deploy.depth_runners import RuntimeDepths, table_backend
from mmadn.deploy.selection import NO_SUBNET_FITS

from ._cli import run_main
from ._torch_features import needs_all_depths
from .test_deploy_selection import TABLE
from .test_export_detector import CONFIGS, _tiny_detector

DEMO = 'tools/deployment/deadline_demo.py'
SHAPE = (160, 160)  # the demo config's test Resize scale


def test_controller_hands_the_depth_to_each_call_and_switches_it_call_by_call():
    """``run(fn)``: no model to switch, ``fn`` gets the chosen depth; a slow spell makes the next call cheaper."""
    controller = DeadlineController(None, TABLE, percentile=90, headroom=1.0, window=3)
    fed = []
    assert controller.run(lambda skip: fed.append(skip) or f'ran {skip}', deadline_ms=50) == 'ran TTFF'
    controller.run(fed.append, deadline_ms=100)
    for _ in range(3):
        controller.observe('TTFF', 1.5 * 42)  # the machine is now 1.5x slower than the table
    controller.run(fed.append, deadline_ms=60)
    assert fed == ['TTFF', 'FFFF', 'TTTT']
    assert [r.skip for r in controller.records] == fed and all(r.elapsed_ms >= 0 for r in controller.records)
    with pytest.raises(TypeError, match='no model to switch'):
        controller(lambda: None, deadline_ms=50)


def test_a_table_says_where_it_was_timed_and_one_depth_files_are_refused():
    runtime = [dict(row, backend='onnxruntime', quality_source='onnxruntime') for row in TABLE['subnets']]
    hybrid = [dict(row, backend='onnxruntime') for row in TABLE['subnets']]  # backbone + neck only in the runtime
    assert table_backend(TABLE) == 'pytorch' and table_backend(runtime) == 'onnxruntime'
    assert table_backend(hybrid) == 'hybrid'
    with pytest.raises(ValueError, match='mixes'):
        table_backend(runtime[:1] + TABLE['subnets'][1:])

    class OneDepth:
        all_depths, skip, onnx_path, backend = False, 'TTTT', 'TTTT.onnx', 'onnxruntime'

    with pytest.raises(ValueError, match='--all-depths'):
        RuntimeDepths(OneDepth())


@pytest.fixture(scope='module')
def exported_demo(tmp_path_factory):
    """Three generated 160 x 160 images, the tiny Mask R-CNN's checkpoint and its all-depths ONNX model (the dynamo
    exporter: about 10 s), and a table timed 'in onnxruntime' whose best quality is TTFF, a depth neither fixed
    policy runs, and whose cheapest is TTTT."""
    from mmadn.datasets import make_coco_instances
    from mmadn.deploy.detector_export import DeployableDetector, export_detector
    root = tmp_path_factory.mktemp('deadline_runtime')
    paths = make_coco_instances(str(root / 'data'), num_train=1, num_val=3, size=SHAPE, max_objects=3, seed=3)
    model = _tiny_detector('mask')
    torch.save(dict(state_dict=model.state_dict()), root / 'tiny.pth')
    onnx_path = export_detector(DeployableDetector(model, SHAPE, all_depths=True), str(root / 'all.onnx'))
    rows = []
    for skip, quality, median in (('FFFF', 0.5, 30.0), ('TTFF', 0.6, 25.0), ('TTTT', 0.4, 20.0)):
        rows.append(dict(skip=skip, bbox_mAP=quality, segm_mAP=quality, latency_ms=median,
                         latency_samples_ms=[median] * 5, backend='onnxruntime', quality_source='onnxruntime'))
    table = root / 'subnets.json'
    table.write_text(json.dumps(dict(quality_key='bbox_mAP', subnets=rows)))
    opts = [f'test_dataloader.dataset.data_root={root}/data/', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', f'test_evaluator.ann_file={paths["val2017"]}',
            'model.backbone.init_cfg=None', 'model.test_cfg.rcnn.score_thr=0.05', 'model.test_cfg.rcnn.max_per_img=20']
    return root, onnx_path, table, opts


@pytest.mark.slow
@needs_all_depths
def test_deadline_demo_drives_the_all_depths_model_in_onnxruntime(exported_demo, tmp_path, capsys, monkeypatch):
    """Every call of the three policies runs in one ONNX Runtime session, its depth fed as the ``skip`` input: the
    fixed policies' FFFF / TTTT, the controller's TTFF under a generous deadline and TTTT under an impossible one;
    any PyTorch module called during the demo (a forward, the data preprocessor) fails the test."""
    from mmadn.deploy.runtime_detector import RuntimeDetector
    root, onnx_path, table, opts = exported_demo
    fed, run = [], RuntimeDetector.__call__

    def recording(self, *arrays):
        fed.append(''.join('T' if flag else 'F' for flag in arrays[2]))  # the skip input of this call
        return run(self, *arrays)

    def no_pytorch(module, *args, **kwargs):
        raise AssertionError(f'{type(module).__name__} ran in PyTorch')

    monkeypatch.setattr(RuntimeDetector, '__call__', recording)
    monkeypatch.setattr(torch.nn.Module, '__call__', no_pytorch)
    with pytest.raises(AssertionError, match='ran in PyTorch'):  # the guard is live
        torch.nn.Identity()(torch.zeros(1))
    code, out = run_main(capsys, DEMO, CONFIGS['mask'], root / 'tiny.pth', '--table', table, '--backend',
                         'onnxruntime', '--onnx', onnx_path, '--device', 'cpu', '--threads', '1', '--deadlines', '1e6',
                         '0.001', '--warmup', '1', '--out-dir', tmp_path, '--cfg-options', *opts)
    assert code == NO_SUBNET_FITS, out[-3000:]  # the impossible deadline, run and reported
    monkeypatch.undo()

    result = json.load(open(tmp_path / 'deadline_demo.json'))
    assert result['backend'] == 'onnxruntime' and 'onnxruntime (1 threads' in out
    # warm-up (1 image, each policy), then per phase and image: super, base, controller
    per_image = {0: ['FFFF', 'TTTT', 'TTFF'], 1: ['FFFF', 'TTTT', 'TTTT']}
    assert fed == ['FFFF', 'TTTT', 'TTFF'] + per_image[0] * 3 + per_image[1] * 3
    assert [(c['phase'], c['skip']) for c in result['controller_calls']] == [(0, 'TTFF')] * 3 + [(1, 'TTTT')] * 3
    phases = {(p['phase'], p['policy']): p for p in result['phases']}
    assert phases[(0, 'controller')]['depths'] == {'TTFF': 3} and phases[(0, 'controller')]['hits'] == 3
    assert phases[(1, 'controller')]['depths'] == {'TTTT': 3} and phases[(1, 'controller')]['hits'] == 0
    assert phases[(0, 'fixed base-net (TTTT)')]['depths'] == {'TTTT': 3}
    calls = [c['elapsed_ms'] for c in result['controller_calls'] if c['phase'] == 1]
    assert phases[(1, 'controller')]['times_ms'] == pytest.approx(calls, abs=1e-3)  # every call's time, in order
    assert all(0 <= p['bbox_mAP'] <= 1 for p in result['phases'])
    # the controller's TTTT scored as the fixed base-net's TTTT: both are the runtime's own detections
    assert phases[(1, 'controller')]['bbox_mAP'] == phases[(1, 'fixed base-net (TTTT)')]['bbox_mAP']


@pytest.mark.slow
@needs_all_depths
def test_deadline_demo_refuses_a_table_timed_elsewhere_and_a_one_depth_model(exported_demo, tmp_path, capsys):
    from mmadn.deploy.detector_export import DeployableDetector, export_detector
    root, onnx_path, table, opts = exported_demo
    pytorch_table = tmp_path / 'pytorch.json'
    rows = json.load(open(table))['subnets']
    untimed = ('backend', 'quality_source')
    pytorch_table.write_text(json.dumps(dict(quality_key='bbox_mAP', subnets=[
        {k: v for k, v in r.items() if k not in untimed} for r in rows])))
    args = [CONFIGS['mask'], root / 'tiny.pth', '--device', 'cpu', '--deadlines', '1e6', '--out-dir', tmp_path]
    code, out = run_main(capsys, DEMO, *args, '--table', pytorch_table, '--backend', 'onnxruntime', '--cfg-options',
                         *opts)
    assert code == 2 and 'timed in pytorch' in out and 'benchmark_subnets.py --backend onnxruntime' in out
    code, out = run_main(capsys, DEMO, *args, '--table', table, '--cfg-options', *opts)
    assert code == 2 and 'give --backend onnxruntime' in out
    model = _tiny_detector('mask')
    model.backbone.skip = 'TTTT'
    one_depth = export_detector(DeployableDetector(model, SHAPE), str(tmp_path / 'TTTT.onnx'), dynamo=False)
    code, out = run_main(capsys, DEMO, *args, '--table', table, '--backend', 'onnxruntime', '--onnx', one_depth,
                         '--cfg-options', *opts)
    assert code == 2 and 'holds one depth' in out
    assert not (tmp_path / 'deadline_demo.json').exists()
