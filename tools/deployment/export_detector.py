"""Write a trained ADN detector at one depth as one ONNX model: image in, detections out (no PyTorch to run it).

    python tools/deployment/export_detector.py CONFIG CKPT --skip TTTT --out model.onnx \
        [--shape H W] [--no-fuse] [--legacy-exporter] [--cfg-options KEY=VALUE ...]
    python tools/deployment/export_detector.py CONFIG CKPT --all-depths --out all_depths.onnx

With --all-depths, one model holds every depth (weights stored once, norms unfolded) and takes a third input,
skip: one bool per stage, True = skip the stage's skippable blocks, chosen per call inside the runtime.

Two-stage detectors with an RPN and a StandardRoIHead (Faster / Mask R-CNN) and RetinaNet (RetinaHead). The input
is one image of the exported size (default: the config's test Resize scale), the channel order and 0-255 range the
config loads, with its (h, w) inside the padding; the outputs are boxes / scores / labels / num_detections (+ masks
for Mask R-CNN: per-detection probabilities at the mask head's resolution), max_per_img rows each
(docs/deployment.md, section 5). The model is checked against PyTorch on a
random image before the tool exits (exit 1 if they disagree). Run it with
tools/deployment/onnx_detect_example.py model.onnx image.jpg, which needs only onnxruntime, numpy and OpenCV or
Pillow.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmadn.apis import add_model_arguments, check_checkpoint  # noqa: E402
from mmadn.deploy.all_depths import skip_tensor  # noqa: E402
from mmadn.deploy.detector_export import (DeployableDetector, build_detector, dataset_classes,  # noqa: E402
                                          detection_agreement, export_detector, test_input_shape)
from mmadn.deploy.runtime import make_session  # noqa: E402
from mmadn.utils import load_config  # noqa: E402

# agreement that the check asks for: same detections and labels, boxes within this many pixels
BOX_TOLERANCE_PX = 1e-2


def build_parser():
    parser = argparse.ArgumentParser(description='Export an ADN detector at one depth to one ONNX model')
    add_model_arguments(parser)
    depth = parser.add_mutually_exclusive_group(required=True)
    depth.add_argument('--skip', help="the depth: one T/F flag per stage ('TTTT'), super or base")
    depth.add_argument('--all-depths', action='store_true', help='every depth in one model, chosen per call')
    parser.add_argument('--out', required=True, help='the ONNX file to write')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='input size (default: the config\'s test Resize scale)')
    parser.add_argument('--no-fuse', action='store_true', help='keep the BatchNorms unfolded')
    parser.add_argument('--legacy-exporter', action='store_true',
                        help='torch\'s TorchScript-based exporter (deprecated, 5-10x faster to export) instead of '
                        'its default dynamo exporter; for quick checks: its Mask R-CNN of the trained demo detector '
                        'failed in ONNX Runtime on some images (a Reshape fixed at tracing)')
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_checkpoint(parser, args.checkpoint)
    try:
        cfg = load_config(args.config, args.cfg_options)
        shape = tuple(args.shape) if args.shape else test_input_shape(cfg)
        model = build_detector(cfg, args.checkpoint, args.skip)
        if args.all_depths and (args.legacy_exporter or args.no_fuse):
            raise ValueError('--all-depths needs the default exporter (torch.cond -> ONNX If) and keeps the norms '
                             'unfolded: leave out --legacy-exporter / --no-fuse')
        detector = DeployableDetector(model, shape, fuse=not args.no_fuse, all_depths=args.all_depths)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        parser.error(str(err))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    meta = dict(classes=json.dumps(dataset_classes(cfg)), config=osp.basename(args.config))
    if not args.all_depths:
        meta['skip'] = model.backbone.skip
    export_detector(detector, args.out, meta, dynamo=not args.legacy_exporter)
    print(f'written: {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, depth '
          f'{"all" if args.all_depths else model.backbone.skip}, inputs {", ".join(detector.input_names)}, image '
          f'1x3x{shape[0]}x{shape[1]}, outputs {", ".join(detector.output_names)})')
    # checked against the module in PyTorch on a random image (the super-net and the base-net of an all-depths one)
    image = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(0)) * 255
    run = make_session(args.out, 'onnxruntime')
    skips = model.backbone.subnets() if args.all_depths else [None]
    failed = False
    for skip in (skips[0], skips[-1]) if args.all_depths else skips:
        extra = (skip_tensor(skip), ) if skip else ()
        with torch.no_grad():
            expected = [t.numpy() for t in detector(image, None, *extra)]
        agreement = detection_agreement(expected, run(image.numpy(), np.array(shape, np.float32),
                                                      *[t.numpy() for t in extra]))
        print(f'onnxruntime against PyTorch on a random image{f" at {skip}" if skip else ""}: '
              + json.dumps(agreement))
        failed |= not (agreement['labels_equal'] and agreement['max_box_error'] <= BOX_TOLERANCE_PX)
    if failed:
        print(f'export_detector: onnxruntime disagrees with PyTorch (boxes within {BOX_TOLERANCE_PX} px and the '
              'same labels expected)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
