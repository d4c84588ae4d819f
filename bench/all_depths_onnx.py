"""One ONNX model holding every depth of an ADN detector against one file per depth (issue 32): size, resident
memory in ONNX Runtime, depth-switch cost, latency beside eager PyTorch, and parity with mmdet at every depth.

    python bench/all_depths_onnx.py [CONFIG] [--checkpoint CKPT] [--out-dir DIR] [--runs 20]

CONFIG defaults to the demo Mask R-CNN; without a checkpoint the detector is randomly initialised as in
tests/test_export_detector.py (sizes, memory and switch cost do not depend on the weights; latency does, through the
number of detections the heads process, printed beside it). One intra-op thread throughout. Writes
all_depths_onnx.json and prints a markdown table.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmadn.deploy.all_depths import session_footprint, skip_tensor, switch_cost  # noqa: E402
from mmadn.deploy.detector_export import (DeployableDetector, build_detector, export_detector,  # noqa: E402
                                          test_input_shape)
from mmadn.deploy.runtime import make_session  # noqa: E402
from mmadn.utils import load_config  # noqa: E402
from mmadn.utils.timing import measure_latency  # noqa: E402

DEMO = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'


def random_detector(cfg):
    """The config's detector, randomly initialised with norm statistics and class scores spread (the tests' tiny
    detector)."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.zero_init_residual = False
    import logging

    from mmengine.logging import MMLogger
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every parameter
    model.init_weights()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
        model.roi_head.bbox_head.fc_cls.weight.normal_(0, 0.03)
        model.rpn_head.rpn_cls.weight.normal_(0, 0.3)
    return model.eval()


def mmdet_predict(model, image):
    from mmdet.structures import DetDataSample
    shape = tuple(image.shape[-2:])
    meta = dict(img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))
    data = model.data_preprocessor(dict(inputs=[image[0]], data_samples=[DetDataSample(metainfo=meta)]), False)
    return model(**data, mode='predict')[0].pred_instances


def median_ms(fn, runs):
    """Median ms of ``runs`` calls after one warm-up, on the CPU (the sessions and PyTorch run at one thread)."""
    return measure_latency(fn, 'cpu', warmup=1, runs=runs)['median_ms']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default=DEMO)
    parser.add_argument('--checkpoint')
    parser.add_argument('--out-dir', default='work_dirs/all_depths_onnx')
    parser.add_argument('--runs', type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    model = build_detector(cfg, args.checkpoint) if args.checkpoint else random_detector(cfg)
    shape = test_input_shape(cfg)
    os.makedirs(osp.join(args.out_dir, 'per_depth'), exist_ok=True)
    skips = model.backbone.subnets()
    super_net, base_net = skips[0], skips[-1]

    start = time.perf_counter()
    all_path = export_detector(DeployableDetector(model, shape, all_depths=True),
                               osp.join(args.out_dir, 'all_depths.onnx'))
    export_s = time.perf_counter() - start
    paths = {}
    # one file per depth, as export_detector.py writes them (norms folded, torch's default exporter: the legacy
    # one's Mask R-CNN of the trained demo detector failed in ONNX Runtime on some val images, a fixed Reshape)
    for skip in skips:
        model.backbone.skip = skip
        paths[skip] = export_detector(DeployableDetector(model, shape), osp.join(args.out_dir, 'per_depth',
                                                                               f'{skip}.onnx'))
    unfused_super = osp.join(args.out_dir, 'per_depth', f'{super_net}_unfused.onnx')
    model.backbone.skip = super_net
    export_detector(DeployableDetector(model, shape, fuse=False), unfused_super)

    image = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(0)) * 255
    image_shape = np.array(shape, np.float32)
    run_all = make_session(all_path, 'onnxruntime', threads=1)
    parity = {}
    for skip in skips:
        model.backbone.skip = skip
        with torch.no_grad():
            expected = mmdet_predict(model, image)
        got = run_all(image.numpy(), image_shape, skip_tensor(skip).numpy())
        n = int(got[3][0])
        same = n == len(expected) and np.array_equal(got[2][0, :n], expected.labels.numpy())
        parity[skip] = dict(num=n, num_mmdet=len(expected), labels_equal=bool(same),
                            max_box_error=float(np.abs(got[0][0, :n] - expected.bboxes.numpy()).max())
                            if same and n else 0.0)

    feed = lambda skip: dict(image=image.numpy(), image_shape=image_shape)  # noqa: E731
    memory = dict(
        all_depths=session_footprint([all_path], [(0, dict(**feed(s), skip=skip_tensor(s).numpy()))
                                                  for s in (super_net, base_net)]),
        super_net=session_footprint([paths[super_net]], [(0, feed(super_net))]),
        base_net=session_footprint([paths[base_net]], [(0, feed(base_net))]),
        every_depth_file=session_footprint([paths[s] for s in skips], [(i, feed(s)) for i, s in enumerate(skips)]))

    switching = switch_cost(run_all, [(image.numpy(), image_shape, skip_tensor(s).numpy())
                                      for s in (super_net, base_net)], args.runs)
    latency = {}
    for skip in (super_net, base_net):
        run_one = make_session(paths[skip], 'onnxruntime', threads=1)
        model.backbone.skip = skip
        with torch.no_grad():
            latency[skip] = dict(
                one_depth_file_ms=median_ms(lambda: run_one(image.numpy(), image_shape), args.runs),
                all_depths_ms=median_ms(lambda: run_all(image.numpy(), image_shape, skip_tensor(skip).numpy()),
                                        args.runs),
                pytorch_eager_ms=median_ms(lambda: mmdet_predict(model, image), args.runs),
                detections=parity[skip]['num'])

    mib = lambda p: osp.getsize(p) / 2**20  # noqa: E731
    result = dict(
        config=args.config, checkpoint=args.checkpoint or 'random init', input_shape=shape,
        threads=1, export_s=export_s,
        size_mib=dict(all_depths=mib(all_path), super_net=mib(paths[super_net]), super_net_unfused=mib(unfused_super),
                      every_depth_files=sum(mib(p) for p in paths.values())),
        memory_mib=memory, switching=switching, latency=latency, parity=parity)
    with open(osp.join(args.out_dir, 'all_depths_onnx.json'), 'w') as f:
        json.dump(result, f, indent=1)

    size = result['size_mib']
    print(f'## all-depths ONNX model: {args.config} ({result["checkpoint"]}), input {shape}, 1 thread\n')
    print('| | all depths, one file | super-net file | super-net, unfused | 16 files |')
    print('|---|---|---|---|---|')
    print(f'| on disk (MiB) | {size["all_depths"]:.1f} | {size["super_net"]:.1f} | {size["super_net_unfused"]:.1f} | '
          f'{size["every_depth_files"]:.1f} |')
    print(f'| resident after runs (MiB) | {memory["all_depths"]["again_mib"]:.1f} | '
          f'{memory["super_net"]["again_mib"]:.1f} | | {memory["every_depth_file"]["again_mib"]:.1f} |')
    print(f'\nall-depths on disk / super-net file: {size["all_depths"] / size["super_net"]:.2f}; resident / one '
          f'super-net session: {memory["all_depths"]["again_mib"] / memory["super_net"]["again_mib"]:.2f}')
    print(f'switch cost (alternating {super_net}/{base_net} minus repeated): {switching["switch_ms"]:+.2f} ms '
          f'(repeated {switching["repeated_ms"]}, alternating {switching["alternating_ms"]})')
    print('\n| depth | detections | one-depth file (ms) | all-depths (ms) | PyTorch eager (ms) |')
    print('|---|---|---|---|---|')
    for skip, row in latency.items():
        print(f'| {skip} | {row["detections"]} | {row["one_depth_file_ms"]:.1f} | {row["all_depths_ms"]:.1f} | '
              f'{row["pytorch_eager_ms"]:.1f} |')
    bad = [s for s, p in parity.items() if not (p['labels_equal'] and p['max_box_error'] < 1e-3)]
    print(f'\nparity with mmdet at all {len(skips)} depths: '
          + ('ok' if not bad else f'DIFFERS at {bad}') + f' (max box error '
          f'{max(p["max_box_error"] for p in parity.values()):.1e} px)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
