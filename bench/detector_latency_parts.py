"""Where a two-stage detector's latency goes, per sub-network: backbone, neck, RPN, box head, mask head.

    python bench/detector_latency_parts.py CONFIG CHECKPOINT [--skips FFFF TTTT ...] [--images 8] [--runs 10]
        [--cfg-options model.test_cfg.rcnn.score_thr=0.3 ...]

The depth changes only the backbone, but the RoI heads run once per proposal (box head) and once per detection
(mask head), and a shallower sub-network, less sure of itself, keeps more detections above ``score_thr``: its
heads can cost more than the super-net's and hide what the backbone saved. This prints, per sub-network, the
median time of each part and the detections per image over the first ``--images`` test images (one at a time,
as ``benchmark_subnets.py`` times them), timed in rounds over the sub-networks so that a machine whose speed
drifts slows every depth alike. ``--cfg-options`` changes the config, e.g. the test-time thresholds.
"""
import argparse
import os.path as osp
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmadn.analysis.benchmark import canonical_skips  # noqa: E402
from mmadn.models import adaptive_backbones, subnet  # noqa: E402
from mmadn.utils import load_config  # noqa: E402
from mmadn.utils.timing import time_once  # noqa: E402

PARTS = ('backbone', 'neck', 'rpn', 'bbox_head', 'mask_head', 'whole')


def single_images(runner, num):
    """The first ``num`` test images, each preprocessed as a batch of one."""
    model, images = runner.model, []
    for batch in runner.test_dataloader:
        for i in range(len(batch['inputs'])):
            data = model.data_preprocessor({k: v[i:i + 1] for k, v in batch.items()}, False)
            images.append((data['inputs'], data['data_samples']))
            if len(images) == num:
                return images
    return images


def time_parts(model, inputs, samples, device):
    """One pass through the detector, part by part (ms each), and the number of detections."""
    metas = [s.metainfo for s in samples]
    out, times = {}, {}
    steps = [('backbone', lambda: model.backbone(inputs)),
             ('neck', lambda: model.neck(out['backbone'])),
             ('rpn', lambda: model.rpn_head.predict(out['neck'], samples, rescale=False)),
             ('bbox_head', lambda: model.roi_head.predict_bbox(out['neck'], metas, out['rpn'], model.roi_head.test_cfg,
                                                               rescale=False)),
             ('mask_head', lambda: model.roi_head.predict_mask(out['neck'], metas, out['bbox_head'], rescale=True)),
             ('whole', lambda: model(inputs, samples, mode='predict'))]
    for name, fn in steps:
        times[name] = time_once(lambda: out.__setitem__(name, fn()), device)
    return times, sum(len(r) for r in out['bbox_head'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--skips', nargs='+', default=['super', 'base'])
    parser.add_argument('--images', type=int, default=8, help='test images, timed one at a time')
    parser.add_argument('--runs', type=int, default=10, help='timed rounds (after 2 warm-up rounds)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.work_dir = osp.join('work_dirs', 'detector_latency_parts')
    cfg.load_from = args.checkpoint
    cfg.custom_hooks = []
    cfg.model.backbone.init_cfg = None  # the checkpoint holds the backbone too
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    device = torch.device(args.device)
    model = runner.model.to(device).eval()
    if not model.with_mask:
        parser.error(f'{args.config}: this benchmark times the mask head too; the model has none.')
    skips = canonical_skips(args.skips, len(adaptive_backbones(model)[0].skip))
    images = [(x.to(device), s) for x, s in single_images(runner, args.images)]
    times = {skip: defaultdict(list) for skip in skips}
    detections = {}
    with torch.no_grad():
        for round_index in range(2 + args.runs):
            for skip in skips:
                with subnet(model, skip):
                    dets = 0
                    for inputs, samples in images:
                        parts, n = time_parts(model, inputs, samples, device)
                        dets += n
                        if round_index >= 2:
                            for name, ms in parts.items():
                                times[skip][name].append(ms)
                    detections[skip] = dets / len(images)
    print(f'{osp.basename(args.config)}, {len(images)} test images one at a time, median ms over {args.runs} rounds'
          + (f'; {args.cfg_options}' if args.cfg_options else ''))
    print('| skip | ' + ' | '.join(PARTS) + ' | heads (rpn + bbox + mask) | detections / image |')
    print('|---' * (len(PARTS) + 3) + '|')
    for skip in skips:
        med = {name: statistics.median(values) for name, values in times[skip].items()}
        heads = med['rpn'] + med['bbox_head'] + med['mask_head']
        print(f'| {skip} | ' + ' | '.join(f'{med[name]:.1f}' for name in PARTS) + f' | {heads:.1f} | '
              f'{detections[skip]:.2f} |')


if __name__ == '__main__':
    main()
