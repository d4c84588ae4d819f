"""Detection by detection, how far the whole exported detector in ONNX Runtime is from mmdet's predict on a test set
(issue 32): what lies under the AP parity of benchmark_subnets.py --backend onnxruntime, which COCO rounds to 1e-3.

    python bench/onnx_detection_parity.py CONFIG CKPT MODEL.onnx [--skips FFFF TTTT] [--out parity.json]

MODEL.onnx: written by tools/deployment/export_detector.py (or benchmark_subnets.py under <out-dir>/onnx/), one depth
or all depths. Both sides are mapped back to the original images (mmdet's predict with rescale; the runtime by
mmadn.deploy.runtime_detector.RuntimeDetector). Per depth: images whose detection count and labels agree, the
largest box (px) and score differences over those, and the mask pixels that differ. One intra-op thread.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from mmadn.deploy.detector_export import build_detector  # noqa: E402
from mmadn.deploy.runtime_detector import RuntimeDetector  # noqa: E402
from mmadn.utils import load_config  # noqa: E402


def compare(model, runtime, loader, skip):
    stats = dict(images=0, detections=0, runtime_detections=0, same_count_and_labels=0, max_box_error_px=0.0,
                 max_score_error=0.0, mask_pixels=0, mask_pixels_differing=0)
    for batch in loader:
        with torch.no_grad():
            expected = model.test_step(batch)
        got = runtime.predict(batch['inputs'], [s.clone() for s in batch['data_samples']],
                              skip if runtime.all_depths else None)
        for want, have in zip(expected, got):
            want, have = want.pred_instances, have.pred_instances
            stats['images'] += 1
            stats['detections'] += len(want)
            stats['runtime_detections'] += len(have)
            if len(want) != len(have) or not torch.equal(want.labels, have.labels):
                continue
            stats['same_count_and_labels'] += 1
            if not len(want):
                continue
            stats['max_box_error_px'] = max(stats['max_box_error_px'],
                                            float((want.bboxes - have.bboxes).abs().max()))
            stats['max_score_error'] = max(stats['max_score_error'], float((want.scores - have.scores).abs().max()))
            if 'masks' in want:
                stats['mask_pixels'] += int(want.masks.sum())
                stats['mask_pixels_differing'] += int((want.masks != have.masks).sum())
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('onnx')
    parser.add_argument('--skips', nargs='+', default=['FFFF', 'TTTT'])
    parser.add_argument('--out', help='also write the figures here (JSON)')
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg = load_config(args.config)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        loader = Runner.build_dataloader(cfg.test_dataloader)
    model = build_detector(cfg, args.checkpoint)
    runtime = RuntimeDetector(args.onnx, threads=1)
    results = {}
    for skip in args.skips:
        if not runtime.all_depths and skip != runtime.skip:
            parser.error(f'{args.onnx} holds depth {runtime.skip}, not {skip}')
        model.backbone.skip = skip
        results[skip] = compare(model, runtime, loader, skip)
        print(skip, json.dumps(results[skip]))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, onnx=args.onnx, parity=results), f,
                      indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
