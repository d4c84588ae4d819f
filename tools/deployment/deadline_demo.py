"""Run an ADN model on a stream of images under a deadline that changes midway: the run-time controller against
the fixed super-net and the fixed base-net.

    python tools/deployment/deadline_demo.py CONFIG CHECKPOINT --table work_dirs/demo/subnets/subnets.json \
        [--deadlines 60 45] [--percentile 99] [--window 50] [--headroom 0.95] [--images-per-call N] [--out-dir DIR]
        [--backend pytorch|onnxruntime|openvino [--onnx ALL_DEPTHS.onnx] [--threads N]] [--cfg-options ...]

The stream is the test set once per deadline (phase): the budget changes between the passes, so every phase is
scored on the whole test set by the config's own evaluator (COCO AP / top-1). Each image is handed to the three
policies back to back (each call timed alone: data preprocessing and inference, ``model.test_step``), so a
machine whose speed drifts slows them alike (``mmadn.analysis.deadline_stream``). The controller
(``mmadn.deploy.DeadlineController``) sets the depth before each call from the table measured by
benchmark_subnets.py. Default deadlines, from the table: a generous
one (1.25 x the super-net's p90), then one between the base-net's p90 and the super-net's median. Writes
deadline_demo.{md,json} to the output directory. The backbone + neck run in the memory format the table was
measured in (its ``memory_format`` column). A deadline below every sub-network's median in the table (nothing
fits, as select_subnet.py --budget latency=... would say) is still run, the controller at its cheapest depth, and
the tool then exits with mmadn.deploy.selection.NO_SUBNET_FITS (3), as every tool that takes a budget does.

--backend onnxruntime|openvino runs a Faster / Mask R-CNN or RetinaNet whole in the runtime, all three policies in
one all-depths ONNX model (``--onnx``, else exported from the checkpoint into OUT_DIR/onnx before the stream):
each call feeds its depth as the model's ``skip`` input (``mmadn.deploy.depth_runners.RuntimeDepths``), so no
PyTorch model runs in the loop. The table must then be the runtime's (benchmark_subnets.py --backend
onnxruntime), as its times are.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.analysis.deadline_stream import default_deadlines, run_deadline_stream, write_deadline_report  # noqa: E402
from mmadn.apis import add_model_arguments, at_least, build_eval_runner, check_adn_model  # noqa: E402
from mmadn.deploy import DeadlineController, load_table  # noqa: E402
from mmadn.deploy.depth_runners import PYTORCH, depth_runner, table_backend  # noqa: E402
from mmadn.deploy.runtime import BACKENDS  # noqa: E402
from mmadn.deploy.selection import Budget, exit_code, select_subnet  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='ADN depth control under a changing deadline')
    add_model_arguments(parser, device=True)
    parser.add_argument('--table', required=True, help='subnets.json of benchmark_subnets.py (same model)')
    parser.add_argument('--deadlines', type=float, nargs='+', metavar='MS',
                        help='one deadline (ms) per pass over the test set (default: from the table)')
    parser.add_argument('--percentile', type=float, default=99,
                        help='percentile of the recent calls\' time ratios the controller plans on')
    parser.add_argument('--window', type=at_least(0), default=50,
                        help='how many recent calls the controller learns from')
    parser.add_argument('--headroom', type=float, default=0.95, help='fraction of a deadline a plan may use')
    parser.add_argument('--warmup', type=at_least(0), default=3, help='untimed calls per policy before the stream')
    parser.add_argument('--images-per-call', type=at_least(1), default=1, metavar='N',
                        help='images handed to the model per call (a frame of N cameras; the table should be '
                        'measured with benchmark_subnets.py --batch-size N)')
    parser.add_argument('--out-dir', help='default: the table\'s folder')
    parser.add_argument('--backend', choices=BACKENDS, default=PYTORCH,
                        help='where the detector runs: a runtime runs it whole, every depth in one ONNX model whose '
                        'depth is an input of each call (the table must be timed there too)')
    parser.add_argument('--onnx', metavar='ALL_DEPTHS.onnx',
                        help='with --backend: the all-depths model of this checkpoint (export_detector.py '
                        '--all-depths, or benchmark_subnets.py\'s OUT/onnx/all_depths.detector.onnx); default: '
                        'exported into OUT_DIR/onnx before the stream')
    parser.add_argument('--threads', type=at_least(1), default=torch.get_num_threads(),
                        help='the runtime\'s intra-op threads (default: PyTorch\'s, i.e. OMP_NUM_THREADS)')
    return parser


def check_args(parser, args):
    """The table, the model (``check_adn_model``) and this tool's options, before the runner is built:
    ``(checked model, table, deadlines, one selection per deadline)`` or ``parser.error``."""
    try:
        table = load_table(args.table)
    except (FileNotFoundError, ValueError, KeyError) as err:
        parser.error(str(err))
    checked = check_adn_model(parser, args)
    try:
        deadlines = args.deadlines or default_deadlines(table)
        selections = [select_subnet(table, Budget('latency', deadline)) for deadline in deadlines]
        timed_in = table_backend(table)
    except (ValueError, KeyError) as err:
        parser.error(str(err))
    if timed_in != args.backend:  # the controller plans on the table's times: they must be this backend's
        parser.error(f'the table {args.table} was timed in {timed_in}, the demo runs in {args.backend}: measure it '
                     f'with benchmark_subnets.py --backend {args.backend}' if args.backend != PYTORCH else
                     f'the table {args.table} was timed in {timed_in}: give --backend {timed_in} or a PyTorch table')
    if args.backend != PYTORCH and args.device != 'cpu':
        parser.error(f'--backend {args.backend} runs on the CPU here: add --device cpu')
    if args.onnx and args.backend == PYTORCH:
        parser.error('--onnx is the model of --backend onnxruntime|openvino: give --backend too')
    if args.onnx and not osp.isfile(args.onnx):
        parser.error(f'--onnx {args.onnx} does not exist')
    if not 0 <= args.percentile <= 100:
        parser.error(f'--percentile must be in [0, 100], got {args.percentile:g}')
    measured = {r['skip'] for r in table['subnets']}
    if not measured <= set(checked.backbone.subnets()):
        parser.error(f'the table {args.table} was measured on another model: its skips {sorted(measured)} are '
                     f'not sub-networks of {type(checked.backbone).__name__}')
    return checked, table, deadlines, selections


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    checked, table, deadlines, selections = check_args(parser, args)
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.table))
    checked.cfg.test_dataloader.batch_size = args.images_per_call  # a stream: N images per call
    for selection in selections:
        if not selection.fits:  # said now, before the long run; the exit code says it at the end
            print(f'deadline_demo: {selection.summary()}', file=sys.stderr)
    device = torch.device(args.device)
    runner = build_eval_runner(checked.cfg, args.checkpoint, osp.join(out_dir, 'deadline_runner'), load=True,
                               device=device)
    try:  # exported here, if at all: PyTorch runs before the stream, not in it
        run_at = depth_runner(runner.model.eval(), args.backend, checked.cfg, osp.join(out_dir, 'onnx'), args.onnx,
                              args.threads)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    # the depth is handed to each call: the runner switches the PyTorch model, or feeds the runtime's skip input
    controller = DeadlineController(None, table, percentile=args.percentile, headroom=args.headroom,
                                    window=args.window, device=device)
    stream = run_deadline_stream(runner, table, deadlines, run_at, controller, device, checked.task, args.warmup)
    where = (args.device if args.backend == PYTORCH else
             f'{args.backend} ({args.threads} threads, all depths in one model)')
    heading = (f'{osp.basename(args.config)} in {where}: deadlines {", ".join(f"{d:g} ms" for d in deadlines)} '
               f'(one pass over the test set each), controller at p{args.percentile:g}, headroom {args.headroom:g}')
    text, paths = write_deadline_report(out_dir, stream, heading, dict(
        deadlines_ms=deadlines, percentile=args.percentile, headroom=args.headroom, backend=args.backend,
        onnx=args.onnx))
    print('\n' + text)
    print(f'written: {", ".join(paths)}')
    return exit_code(selections)


if __name__ == '__main__':
    sys.exit(main())
