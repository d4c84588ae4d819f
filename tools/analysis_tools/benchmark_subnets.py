"""Benchmark every sub-network of an ADN model: quality, parameters, FLOPs, latency and peak memory.

    python tools/analysis_tools/benchmark_subnets.py CONFIG CHECKPOINT [--skips FFFF TTTT ...]
        [--out-dir DIR] [--recalibrate N] [--export SKIP [--fuse]] [--runs N] [--warmup N] [--device cpu|cuda]

The model is built and loaded once; depth is switched in place. Quality comes from the config's own test
evaluator (COCO bbox / segm AP for detection, top-1 / top-5 for classification), FLOPs from mmengine's analysis
at the test input size, latency from warm runs (CUDA synchronised). Writes subnets.{md,csv,json,png} to the
output directory; with --export, also the exported static model (checkpoint, config, backbone ONNX) and its
latency beside the adaptive model's.
"""
import argparse
import itertools
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from mmadn.analysis import (active_parameters, count_flops, measure_latency, peak_memory,  # noqa: E402
                            write_report)
from mmadn.deploy import export_backbone, export_model  # noqa: E402
from mmadn.models import adaptive_backbones, recalibrated, subnet  # noqa: E402
from mmadn.utils import check_dataset_paths, load_config, task_of  # noqa: E402

QUALITY_KEYS = {'detection': ('coco/bbox_mAP', 'coco/segm_mAP'), 'classification': ('accuracy/top1', 'accuracy/top5')}


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark the sub-networks of an ADN model')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--skips', nargs='+', help='sub-networks to measure (default: all)')
    parser.add_argument('--out-dir', help='default: work_dirs/<config>/subnet_benchmark')
    parser.add_argument('--recalibrate', type=int, default=0, metavar='N',
                        help='re-estimate each sub-network\'s norm statistics from N training batches first')
    parser.add_argument('--export', metavar='SKIP', help='also export this sub-network as a static model')
    parser.add_argument('--fuse', action='store_true', help='fold the norms into the convs of the export')
    parser.add_argument('--runs', type=int, default=10, help='timed runs per latency figure')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=1, help='images per latency / memory measurement')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def first_batch(runner, batch_size):
    batch = next(iter(runner.test_dataloader))
    batch = {k: v[:batch_size] for k, v in batch.items()}
    return runner.model.data_preprocessor(batch, False)


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    check_dataset_paths(cfg, ('test', 'train') if args.recalibrate else ('test', ))
    out_dir = args.out_dir or osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0], 'subnet_benchmark')
    cfg.work_dir = osp.join(out_dir, 'runner')
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ADNDistillHook']
    if not torch.cuda.is_available() and args.device == 'cuda':
        raise SystemExit('--device cuda requested but CUDA is not available.')

    runner = Runner.from_cfg(cfg)
    model = runner.model
    backbone = adaptive_backbones(model)[0]
    skips = args.skips or backbone.subnets()
    for skip in skips:  # validate every skip before hours of evaluation
        with backbone.switch(skip):
            pass
    device = torch.device(args.device)
    model.to(device).eval()
    data = first_batch(runner, args.batch_size)
    inputs = data['inputs'].to(device)
    samples = data['data_samples']
    predict = (lambda: model(inputs, samples, mode='predict'))
    run_backbone = (lambda: model.backbone(inputs))
    train_batches = (list(itertools.islice(iter(runner.train_dataloader), args.recalibrate))
                     if args.recalibrate else None)

    rows, progress = [], ProgressBar(len(skips))
    for skip in skips:
        context = recalibrated(model, train_batches, skip) if train_batches else subnet(model, skip)
        with context:
            metrics = runner.test() if not rows else runner.test_loop.run()
            model.to(device).eval()
            row = dict(skip=skip, blocks=len(backbone.active_blocks()))
            for key in QUALITY_KEYS[task]:
                if key in metrics:
                    row[key.split('/')[-1]] = float(metrics[key])
            row['params_m'] = active_parameters(model, predict) / 1e6
            row['gflops'] = count_flops(model, lambda x: model(x, samples, mode='tensor'), inputs) / 1e9
            row['backbone_gflops'] = count_flops(model, model.backbone, inputs) / 1e9
            row.update({f'latency_{k}': v for k, v in measure_latency(predict, device, args.warmup, args.runs).items()})
            row['latency_ms'] = row.pop('latency_median_ms')
            row['backbone_latency_ms'] = measure_latency(run_backbone, device, args.warmup, args.runs)['median_ms']
            with torch.no_grad():
                row['peak_mem_mib'] = peak_memory(predict, device)
            if skip == args.export:
                row.update(export_and_time(model, cfg, inputs, samples, device, args, out_dir))
        rows.append(row)
        progress.update()
    if args.export and not any('export_latency_ms' in r for r in rows):
        raise SystemExit(f'--export {args.export} is not among the measured sub-networks {skips}.')
    keys = list(dict.fromkeys(k for r in rows for k in r))
    rows = [{k: r.get(k) for k in keys} for r in rows]
    quality = QUALITY_KEYS[task][0].split('/')[-1]
    title = (f'{osp.basename(args.config)} on {args.device}, batch {args.batch_size}'
             + (f', norms recalibrated on {args.recalibrate} batches' if args.recalibrate else ''))
    paths = write_report(rows, out_dir, quality, title)
    print(open(paths['md']).read())
    print('written: ' + ', '.join(paths.values()))


def export_and_time(model, cfg, inputs, samples, device, args, out_dir):
    """Export the active sub-network, save it (checkpoint, config, backbone ONNX) and time it."""
    from mmengine.registry import DefaultScope
    from mmengine.registry import MODELS as ROOT_MODELS
    export_dir = osp.join(out_dir, f'export_{args.export}')
    new_cfg, state = export_model(model, cfg, fuse=False)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        static = ROOT_MODELS.build(new_cfg.model)
    static.load_state_dict(state, strict=True)
    static.to(device).eval()
    if args.fuse:
        _, static.backbone = export_backbone(model.backbone, fuse=True)
        static.backbone.to(device).eval()
        new_cfg.model.backbone.fused = True
        state = {k: v for k, v in state.items() if not k.startswith('backbone.')}
        state.update({'backbone.' + k: v for k, v in static.backbone.state_dict().items()})
    os.makedirs(export_dir, exist_ok=True)
    new_cfg.dump(osp.join(export_dir, 'config.py'))
    torch.save(dict(meta=dict(exported_from=args.checkpoint, skip=args.export, fused=args.fuse),
                    state_dict=state), osp.join(export_dir, 'model.pth'))
    onnx_path = osp.join(export_dir, 'backbone.onnx')
    torch.onnx.export(static.backbone.cpu(), (inputs.cpu(), ), onnx_path, dynamo=True, input_names=['input'])
    static.to(device)
    backbone_ms = measure_latency(lambda: static.backbone(inputs), device, args.warmup, args.runs)['median_ms']
    whole_ms = measure_latency(lambda: static(inputs, samples, mode='predict'), device, args.warmup,
                               args.runs)['median_ms']
    print(f'exported {args.export} to {export_dir}')
    return dict(export_latency_ms=whole_ms, export_backbone_latency_ms=backbone_ms)


if __name__ == '__main__':
    main()
