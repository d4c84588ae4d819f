"""Benchmark every sub-network of an ADN model: quality, parameters, FLOPs, latency, memory (weights + activations).

    python tools/analysis_tools/benchmark_subnets.py CONFIG CHECKPOINT [--skips FFFF TTTT ...]
        [--out-dir DIR] [--recalibrate N] [--export SKIP [--fuse]] [--runs N] [--warmup N] [--device cpu|cuda]
        [--budget latency=40ms|flops=20G|memory=300MB [--percentile 90]]
        [--backend pytorch|onnxruntime|openvino [--runtime-model auto|all-depths|per-depth]]
        [--memory-format auto|channels_last|contiguous]

The model is built and loaded once; depth is switched in place. Quality comes from the config's own test
evaluator (COCO bbox / segm AP for detection, top-1 / top-5 for classification), FLOPs from mmengine's analysis
at the test input size, latency from warm runs (CUDA synchronised). Writes subnets.{md,csv,json,png} to the
output directory; with --export, also the exported static model (checkpoint, config, and model.onnx: a classifier
whole, a detector's backbone + neck) and its latency beside the adaptive model's; with --budget, the best
sub-network that fits (selection.json; the same from a saved table: tools/deployment/select_subnet.py); when none
fits, the report is still written and the exit code is mmadn.deploy.selection.NO_SUBNET_FITS (3), as in every tool
that takes a budget. Skips are written in their T/F form ('ttff', 'super', 'base' accepted).

--memory-format (default auto): the backbone + neck run channels-last or contiguous in PyTorch; auto times both
at the first sub-network and keeps the faster (recorded per row, the timings in the JSON). --backend: a detector
that exports whole (Faster / Mask R-CNN, RetinaNet: docs/deployment.md section 5) runs whole in that runtime (CPU, as many
threads as PyTorch) and is scored from the runtime's own detections, mapped back to the original images: the
quality columns (bbox_mAP, segm_mAP), latency_ms and the plot are then the runtime's, with PyTorch's beside them
(pytorch_bbox_mAP, ..., pytorch_latency_ms), quality_gap (the largest difference), session_latency_ms (the model
alone) and runtime_detections. --runtime-model says which ONNX model (<out-dir>/onnx/*.detector.onnx): all-depths
(one export, the depth an input of each call), per-depth (one file per depth, norms folded; needed with
--recalibrate) or auto (all depths when several are measured without --recalibrate). Any other model has its
backbone + neck exported (<out-dir>/onnx/SKIP.onnx), checked against PyTorch and run in that runtime; latency_ms is
then the whole model with the runtime's features (heads in PyTorch), beside pytorch_latency_ms, part_latency_ms
(the runtime alone) and pytorch_part_latency_ms, and quality stays PyTorch's.

Every argument is checked before the runner is built, the datasets it reads are loaded and checked once
(mmadn.utils.dataset_preflight; --skip-data-check: the paths only), the checkpoint is loaded once before the first
sub-network (so every row, the first included, runs with its recalibrated statistics and the checkpoint's come
back after it), and the report is rewritten after every sub-network: a run stopped midway keeps what it measured.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from mmadn.analysis import (QUALITY_KEYS, canonical_skips, measure_subnets, recalibration_batches,  # noqa: E402
                            write_report)
from mmadn.analysis.benchmark import first_batch  # noqa: E402
from mmadn.apis import at_least  # noqa: E402
from mmadn.deploy import export_backbone, export_model, select_subnet  # noqa: E402
from mmadn.deploy.memory_format import MEMORY_FORMATS, memory_format  # noqa: E402
from mmadn.deploy.runtime import BACKENDS, DeployablePart, export_onnx  # noqa: E402
from mmadn.deploy.runtime_detector import RUNTIME_MODELS, whole_detector_refusal  # noqa: E402
from mmadn.deploy.selection import add_budget_arguments, write_selection  # noqa: E402
from mmadn.models import AdaptiveDepthMixin  # noqa: E402
from mmadn.utils import hand_over_datasets, load_config, preflight_datasets, task_of  # noqa: E402
from mmadn.utils.timing import measure_latency  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='Benchmark the sub-networks of an ADN model')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--skips', nargs='+', help='sub-networks to measure, e.g. FFFF ttff base (default: all)')
    parser.add_argument('--out-dir', help='default: work_dirs/<config>/subnet_benchmark')
    parser.add_argument('--recalibrate', type=at_least(0), default=0, metavar='N',
                        help='re-estimate each sub-network\'s norm statistics from N training batches first')
    parser.add_argument('--export', metavar='SKIP', help='also export this sub-network (one of --skips) as a static '
                        'model')
    parser.add_argument('--fuse', action='store_true', help='fold the norms into the convs of the export')
    parser.add_argument('--runs', type=at_least(1), default=10, help='timed runs per latency figure')
    parser.add_argument('--warmup', type=at_least(0), default=3)
    parser.add_argument('--batch-size', type=at_least(1), default=1, help='images per latency / memory measurement')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help='where the model runs (ONNX Runtime / OpenVINO: CPU only): a Faster / Mask R-CNN or RetinaNet whole, '
                        'timed and scored there; any other model\'s backbone + neck')
    parser.add_argument('--runtime-model', choices=RUNTIME_MODELS, default='auto',
                        help='with --backend, the whole detector\'s ONNX model: all depths in one, one per depth, or '
                        'auto (all depths when several are measured without --recalibrate)')
    parser.add_argument('--memory-format', choices=MEMORY_FORMATS, default='auto',
                        help='PyTorch backbone + neck layout; auto: the faster of the two, timed at the first skip')
    add_budget_arguments(parser)
    parser.add_argument('--skip-data-check', action='store_true',
                        help='check only the dataset paths, not the annotations and images (the pre-flight)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def check_args(parser, args):
    """Everything that can be wrong with the command line, before the runner is built: canonical ``skips`` and
    ``export``, or ``parser.error`` (exit code 2) saying what is wrong."""
    if args.percentile is not None and args.budget is None:
        parser.error('--percentile says which latency a budget holds: give --budget latency=... too.')
    if args.fuse and not args.export:
        parser.error('--fuse folds the norms of the exported sub-network: give --export SKIP too.')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device} requested but CUDA is not available; use --device cpu.')
    if args.runtime_model != 'auto' and args.backend == 'pytorch':
        parser.error('--runtime-model chooses the ONNX model of --backend onnxruntime|openvino: give --backend too.')
    if args.runtime_model == 'all-depths' and args.recalibrate:
        parser.error('--recalibrate gives every depth its own norm statistics, which one all-depths model cannot '
                     'hold: use --runtime-model per-depth (or auto).')
    if args.backend != 'pytorch':
        if not args.device.startswith('cpu'):
            parser.error(f'--backend {args.backend} runs on the CPU here: add --device cpu (or use --backend '
                         'pytorch on CUDA).')
        module = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}[args.backend]
        if importlib.util.find_spec(module) is None or importlib.util.find_spec('onnx') is None:
            parser.error(f'--backend {args.backend} needs the {module} and onnx packages: '
                         'pip install -r requirements/deploy.txt')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} does not exist.')
    try:
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
        datasets = preflight_datasets(cfg, ('test', 'train') if args.recalibrate else ('test', ),
                                      skip=args.skip_data_check)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            backbone = MODELS.build(cfg.model.backbone)  # alone: it knows its skip grammar
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:  # DatasetCheckError is a ValueError
        parser.error(str(err))
    if not isinstance(backbone, AdaptiveDepthMixin):
        parser.error(f'model.backbone is {type(backbone).__name__}, not an ADN backbone: there are no depths to '
                     'benchmark.')
    name = type(backbone).__name__
    try:
        skips = canonical_skips(args.skips, backbone.num_skip_flags, name) if args.skips else backbone.subnets()
        export = canonical_skips([args.export], backbone.num_skip_flags, name)[0] if args.export else None
    except ValueError as err:
        parser.error(str(err))
    if export is not None and export not in skips:
        parser.error(f'--export {args.export} ({export}) is not among the sub-networks to measure {skips}: add it '
                     'to --skips, or leave --skips out to measure all.')
    return cfg, task, skips, export, datasets


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg, task, skips, export, datasets = check_args(parser, args)
    out_dir = args.out_dir or osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0], 'subnet_benchmark')
    cfg.work_dir = osp.join(out_dir, 'runner')
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ADNDistillHook']
    device = torch.device(args.device)

    runner = Runner.from_cfg(cfg)
    hand_over_datasets(runner, datasets)
    batches = recalibration_batches(runner, args.recalibrate) if args.recalibrate else None
    title = (f'{osp.basename(args.config)} on {args.device}, batch {args.batch_size}'
             + (f', norms recalibrated on {len(batches)} batches' if batches else '')
             + _backend_note(args.backend, task, runner.model))
    quality = QUALITY_KEYS[task][0].split('/')[-1]
    rows, progress, stopped, paths = [], ProgressBar(len(skips)), None, None
    try:
        for row in measure_subnets(runner, skips, task, device, args.batch_size, args.warmup, args.runs, batches,
                                   args.memory_format, args.backend, osp.join(out_dir, 'onnx'),
                                   args.runtime_model):
            if row['skip'] == export:  # while the sub-network is active, with the statistics it was measured with
                row.update(export_and_time(runner, cfg, row['skip'], device, args, out_dir, row['memory_format']))
            rows.append(row)
            paths = _write(rows, out_dir, quality, title)  # as it goes: what was measured survives a failure
            progress.update()
    except BaseException as err:
        stopped = f'{type(err).__name__}: {err}'.strip().rstrip(':')
        raise
    finally:
        if rows and stopped:
            paths = _write(rows, out_dir, quality,
                           f'{title}; stopped after {len(rows)} of {len(skips)} sub-networks ({stopped})')
            print(f'\nwritten what was measured: {", ".join(paths.values())}', file=sys.stderr)
    title += _format_note(rows[0])
    if rows[0].get('runtime_model'):
        title += f'; the whole detector\'s ONNX model: {rows[0]["runtime_model"]}'
    if len(rows) > 1:  # measure_subnets has re-timed every row, interleaved
        paths = _write(rows, out_dir, quality, f'{title}; latencies timed in rounds over all sub-networks')
    print(open(paths['md']).read())
    print('written: ' + ', '.join(paths.values()))
    if args.budget is not None:  # the table is written either way; the exit code says whether anything fits
        selection = select_subnet(rows, args.budget, args.percentile, quality)
        print(selection.summary())
        print('written: ' + write_selection(selection, osp.join(out_dir, 'selection.json')))
        return selection.exit_code
    return 0


def _backend_note(backend, task, model) -> str:
    if backend == 'pytorch':
        return ''
    if task == 'detection' and whole_detector_refusal(model) is None:
        return (f', whole detector in {backend} (quality and latency: {backend}\'s, from its own detections; '
                'PyTorch\'s in pytorch_*)')
    return f', backbone + neck in {backend} (quality: PyTorch\'s)'


def _format_note(row) -> str:
    times = row.get('memory_format_ms')
    if not times:
        return f'; PyTorch backbone + neck {row["memory_format"]}'
    timed = ' vs '.join(f'{name} {ms:.3g} ms' for name, ms in times.items())
    return f'; PyTorch backbone + neck {row["memory_format"]} (auto: {timed} at {row["skip"]})'


def _write(rows, out_dir, quality, title):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return write_report([{k: r.get(k) for k in keys} for r in rows], out_dir, quality, title)


def export_and_time(runner, cfg, skip, device, args, out_dir, fmt='contiguous'):
    """Export the active sub-network ``skip``, save it (checkpoint, config, ONNX of its static part) and time it in the
    memory format ``fmt`` the adaptive model was timed in."""
    model = runner.model
    data = first_batch(runner, args.batch_size)
    inputs, samples = data['inputs'].to(device), data['data_samples']
    export_dir = osp.join(out_dir, f'export_{skip}')
    new_cfg, state = export_model(model, cfg, fuse=False)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        static = MODELS.build(new_cfg.model)
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
    torch.save(dict(meta=dict(exported_from=args.checkpoint, skip=skip, fused=args.fuse),
                    state_dict=state), osp.join(export_dir, 'model.pth'))
    export_onnx(DeployablePart(static, static.backbone), inputs, osp.join(export_dir, 'model.onnx'))
    static.to(device)
    with memory_format(static, fmt):
        backbone_ms = measure_latency(lambda: static.backbone(inputs), device, args.warmup, args.runs)['median_ms']
        whole_ms = measure_latency(lambda: static(inputs, samples, mode='predict'), device, args.warmup,
                                   args.runs)['median_ms']
    print(f'exported {skip} to {export_dir}')
    return dict(export_latency_ms=whole_ms, export_backbone_latency_ms=backbone_ms)


if __name__ == '__main__':
    sys.exit(main())
