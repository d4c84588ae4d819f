"""Does mmdeploy 1.3 export the whole demo detector with this project's stack? (issue 15; not part of CI)

mmdeploy is not a dependency (it pins protobuf<=3.20.2, which onnx >= 1.15 does not accept), so this check loads
it from a folder of its own, next to the project's environment:

    pip download mmdeploy==1.3.1 --no-deps -d /tmp/mmdeploy_dl
    pip install --no-deps --target /tmp/mmdeploy_pkg /tmp/mmdeploy_dl/mmdeploy-*.whl aenum multiprocess \
        prettytable terminaltables dill
    PYTHONPATH=/tmp/mmdeploy_pkg .venv/bin/python bench/check_mmdeploy.py [--skip TTTT] [--out-dir DIR]

It exports the demo Mask R-CNN (randomly initialised; the layout is what matters) at a chosen depth, made static
first (``export_model``), with mmdeploy's ``torch2onnx`` and its ONNX Runtime end-to-end detection config, and
prints what happened: the ONNX file and its check in ONNX Runtime, or the error and where it came from.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import traceback

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import mmadn  # noqa: E402,F401
from mmadn.deploy import export_model  # noqa: E402

CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'


def deploy_config(size):
    """mmdeploy's detection/instance-seg_onnxruntime_static.py, written out (its configs are not in the wheel)."""
    return Config(dict(
        onnx_config=dict(type='onnx', export_params=True, keep_initializers_as_inputs=False, opset_version=11,
                         save_file='end2end.onnx', input_names=['input'], output_names=['dets', 'labels', 'masks'],
                         input_shape=[size, size], optimize=True),
        codebase_config=dict(type='mmdet', task='ObjectDetection', model_type='end2end',
                             post_processing=dict(score_threshold=0.05, confidence_threshold=0.005,
                                                  iou_threshold=0.5, max_output_boxes_per_class=200,
                                                  pre_top_k=5000, keep_top_k=100, background_label_id=-1,
                                                  export_postprocess_mask=False)),
        backend_config=dict(type='onnxruntime')))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip', default='TTTT')
    parser.add_argument('--size', type=int, default=160)
    parser.add_argument('--out-dir', default=None)
    parser.add_argument('--legacy-exporter', action='store_true',
                        help='make mmdeploy\'s torch.onnx.export call use the TorchScript exporter (dynamo=False): '
                        'torch >= 2.9 defaults to torch.export, which mmdeploy 1.3 predates')
    args = parser.parse_args()
    if args.legacy_exporter:
        export = torch.onnx.export
        torch.onnx.export = lambda *a, **k: export(*a, **{**k, 'dynamo': False})
    try:
        import mmdeploy
        from mmdeploy.apis import torch2onnx
    except Exception as err:  # noqa: BLE001 (what fails is the finding)
        print(f'mmdeploy does not import with this stack: {type(err).__name__}: {err}')
        traceback.print_exc()
        return 1
    print(f'mmdeploy {mmdeploy.__version__}, torch {torch.__version__}')
    out_dir = args.out_dir or tempfile.mkdtemp(prefix='mmdeploy_check_')
    os.makedirs(out_dir, exist_ok=True)
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    model.backbone.skip = args.skip
    static_cfg, state = export_model(model, cfg)
    model_cfg_path, ckpt_path = osp.join(out_dir, 'static_config.py'), osp.join(out_dir, 'static.pth')
    static_cfg.dump(model_cfg_path)
    torch.save(dict(state_dict=state, meta=dict(skip=args.skip)), ckpt_path)
    image = np.random.RandomState(0).randint(0, 255, (args.size, args.size, 3), dtype=np.uint8)
    try:
        torch2onnx(image, out_dir, 'end2end.onnx', deploy_config(args.size), model_cfg_path, ckpt_path, 'cpu')
    except Exception as err:  # noqa: BLE001
        print(f'\nmmdeploy torch2onnx failed: {type(err).__name__}: {err}')
        traceback.print_exc()
        return 1
    import onnxruntime as ort
    path = osp.join(out_dir, 'end2end.onnx')
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    print(f'exported {path}: inputs {[i.shape for i in session.get_inputs()]}, '
          f'outputs {[o.name for o in session.get_outputs()]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
