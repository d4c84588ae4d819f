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
whole, a detector's backbone + neck) and its latency beside the adaptive model's (mmadn.deploy.export_timing);
with --budget, the best sub-network that fits (selection.json; the same from a saved table:
tools/deployment/select_subnet.py); when none fits, the report is still written and the exit code is
mmadn.deploy.selection.NO_SUBNET_FITS (3), as in every tool that takes a budget. Skips are written in their T/F
form ('ttff', 'super', 'base' accepted).

--memory-format (default auto): the backbone + neck run channels-last or contiguous in PyTorch; auto times both
at the first sub-network and keeps the faster. --backend: a detector that exports whole (Faster / Mask R-CNN,
RetinaNet: docs/deployment.md section 5) runs whole in that runtime (CPU) and is scored from the runtime's own
detections, PyTorch's figures beside them (pytorch_*); --runtime-model says which ONNX model: all-depths (one
export, the depth an input of each call), per-depth (one file per depth, norms folded; needed with
--recalibrate) or auto. Any other model has its backbone + neck exported, checked against PyTorch and run in that
runtime (the heads in PyTorch). Every column is described by mmadn.analysis.measure_subnets.

Every argument is checked before the runner is built (mmadn.apis.check_adn_model), the datasets it reads are
loaded and checked once (--skip-data-check: the paths only), and the report is rewritten after every
sub-network: a run stopped midway keeps what it measured (mmadn.analysis.benchmark_report).
"""
import argparse
import importlib.util
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.analysis import RuntimeTarget, recalibration_batches  # noqa: E402
from mmadn.analysis.benchmark import first_batch  # noqa: E402
from mmadn.analysis.benchmark_report import benchmark_title, measure_and_report, quality_column  # noqa: E402
from mmadn.apis import (add_data_check_argument, add_model_arguments, at_least, build_eval_runner,  # noqa: E402
                        check_adn_model, parse_skips)
from mmadn.deploy import select_subnet  # noqa: E402
from mmadn.deploy.export_timing import export_and_time  # noqa: E402
from mmadn.deploy.memory_format import MEMORY_FORMATS  # noqa: E402
from mmadn.deploy.runtime import BACKENDS  # noqa: E402
from mmadn.deploy.runtime_detector import RUNTIME_MODELS  # noqa: E402
from mmadn.deploy.selection import add_budget_arguments, write_selection  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='Benchmark the sub-networks of an ADN model')
    add_model_arguments(parser, device=True)
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
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help='where the model runs (ONNX Runtime / OpenVINO: CPU only): a Faster / Mask R-CNN or '
                        'RetinaNet whole, timed and scored there; any other model\'s backbone + neck')
    parser.add_argument('--runtime-model', choices=RUNTIME_MODELS, default='auto',
                        help='with --backend, the whole detector\'s ONNX model: all depths in one, one per depth, or '
                        'auto (all depths when several are measured without --recalibrate)')
    parser.add_argument('--memory-format', choices=MEMORY_FORMATS, default='auto',
                        help='PyTorch backbone + neck layout; auto: the faster of the two, timed at the first skip')
    add_budget_arguments(parser)
    add_data_check_argument(parser)
    return parser


def check_args(parser, args):
    """This tool's own checks, then the model's (``check_adn_model``): ``(checked model, canonical --export)`` or
    ``parser.error`` (exit code 2) saying what is wrong."""
    if args.percentile is not None and args.budget is None:
        parser.error('--percentile says which latency a budget holds: give --budget latency=... too.')
    if args.fuse and not args.export:
        parser.error('--fuse folds the norms of the exported sub-network: give --export SKIP too.')
    if args.runtime_model != 'auto' and args.backend == 'pytorch':
        parser.error('--runtime-model chooses the ONNX model of --backend onnxruntime|openvino: give --backend too.')
    if args.runtime_model == 'all-depths' and args.recalibrate:
        parser.error('--recalibrate gives every depth its own norm statistics, which one all-depths model cannot '
                     'hold: use --runtime-model per-depth (or auto).')
    if args.backend != 'pytorch':
        if not args.device.startswith('cpu'):
            parser.error(f'--backend {args.backend} runs on the CPU here: add --device cpu (or use --backend '
                         'pytorch on CUDA).')
        if importlib.util.find_spec(args.backend) is None or importlib.util.find_spec('onnx') is None:
            parser.error(f'--backend {args.backend} needs the {args.backend} and onnx packages: '
                         'pip install -r requirements/deploy.txt')
    checked = check_adn_model(parser, args, ('test', 'train') if args.recalibrate else ('test', ), preflight=True)
    export = parse_skips(parser, checked.backbone, [args.export])[0] if args.export else None
    if export is not None and export not in checked.skips:
        parser.error(f'--export {args.export} ({export}) is not among the sub-networks to measure {checked.skips}: '
                     'add it to --skips, or leave --skips out to measure all.')
    return checked, export


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    checked, export = check_args(parser, args)
    out_dir = args.out_dir or osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0], 'subnet_benchmark')
    runner = build_eval_runner(checked.cfg, args.checkpoint, osp.join(out_dir, 'runner'), checked.datasets)
    device = torch.device(args.device)
    batches = recalibration_batches(runner, args.recalibrate) if args.recalibrate else None

    def export_row(row):  # while the sub-network is active, with the statistics it was measured with
        if row['skip'] != export:
            return {}
        data, export_dir = first_batch(runner, args.batch_size), osp.join(out_dir, f'export_{export}')
        timings = export_and_time(runner.model, checked.cfg, data['inputs'].to(device), data['data_samples'],
                                  export_dir, dict(exported_from=args.checkpoint, skip=export), args.fuse, device,
                                  args.warmup, args.runs, row['memory_format'])
        print(f'exported {export} to {export_dir}')
        return timings

    title = benchmark_title(args.config, args.device, args.batch_size, len(batches or ()), args.backend,
                            checked.task, runner.model)
    rows, paths = measure_and_report(
        runner, checked.skips, checked.task, device, out_dir, title, export_row, batch_size=args.batch_size,
        warmup=args.warmup, runs=args.runs, batches=batches, memory_format=args.memory_format,
        runtime=None if args.backend == 'pytorch' else RuntimeTarget(args.backend, osp.join(out_dir, 'onnx'),
                                                                     args.runtime_model))
    print(open(paths['md']).read())
    print('written: ' + ', '.join(paths.values()))
    if args.budget is not None:  # the table is written either way; the exit code says whether anything fits
        selection = select_subnet(rows, args.budget, args.percentile, quality_column(checked.task))
        print(selection.summary())
        print('written: ' + write_selection(selection, osp.join(out_dir, 'selection.json')))
        return selection.exit_code
    return 0


if __name__ == '__main__':
    sys.exit(main())
