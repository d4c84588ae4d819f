"""Run an ADN model on a stream of images under a deadline that changes midway: the run-time controller against
the fixed super-net and the fixed base-net.

    python tools/deployment/deadline_demo.py CONFIG CHECKPOINT --table work_dirs/demo/subnets/subnets.json \
        [--deadlines 60 45] [--percentile 99] [--window 50] [--headroom 0.95] [--images-per-call N] [--out-dir DIR]
        [--backend pytorch|onnxruntime|openvino [--onnx ALL_DEPTHS.onnx] [--threads N]] [--cfg-options ...]

The stream is the test set once per deadline (phase): the budget changes between the passes, so every phase is
scored on the whole test set by the config's own evaluator (COCO AP / top-1). Each image is handed to the three
policies back to back (each call timed alone: data preprocessing and inference, ``model.test_step``), so a
machine whose speed drifts slows them alike. The controller (``mmadn.deploy.DeadlineController``) sets the depth
before each call from the table measured by benchmark_subnets.py. Default deadlines, from the table: a generous
one (1.25 x the super-net's p90), then one between the base-net's p90 and the super-net's median. Writes
deadline_demo.{md,json} to the output directory. The backbone + neck run in the memory format the table was
measured in (its ``memory_format`` column). A deadline below every sub-network's median in the table (nothing
fits, as select_subnet.py --budget latency=... would say) is still run, the controller at its cheapest depth, and
the tool then exits with mmadn.deploy.selection.NO_SUBNET_FITS (3), as every tool that takes a budget does.

--backend onnxruntime|openvino runs a Faster / Mask R-CNN or RetinaNet whole in the runtime, all three policies in one all-depths
ONNX model (``--onnx``, else exported from the checkpoint into OUT_DIR/onnx before the stream): each call feeds its
depth as the model's ``skip`` input (``mmadn.deploy.depth_runners.RuntimeDepths``), so no PyTorch model runs in the
loop. The table must then be the runtime's (benchmark_subnets.py --backend onnxruntime), as its times are.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import statistics
import sys
from collections import Counter

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from mmadn.analysis import QUALITY_KEYS  # noqa: E402
from mmadn.apis import at_least  # noqa: E402
from mmadn.deploy import DeadlineController, load_table  # noqa: E402
from mmadn.deploy.depth_runners import PYTORCH, depth_runner, table_backend  # noqa: E402
from mmadn.deploy.memory_format import memory_format  # noqa: E402
from mmadn.deploy.selection import Budget, exit_code, latency_percentile, row_cost, select_subnet  # noqa: E402
from mmadn.deploy.runtime import BACKENDS  # noqa: E402
from mmadn.models import adaptive_backbones, set_subnet  # noqa: E402
from mmadn.utils import check_dataset_paths, load_config, task_of  # noqa: E402
from mmadn.utils.timing import time_once  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='ADN depth control under a changing deadline')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
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
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--backend', choices=BACKENDS, default=PYTORCH,
                        help='where the detector runs: a runtime runs it whole, every depth in one ONNX model whose '
                        'depth is an input of each call (the table must be timed there too)')
    parser.add_argument('--onnx', metavar='ALL_DEPTHS.onnx',
                        help='with --backend: the all-depths model of this checkpoint (export_detector.py '
                        '--all-depths, or benchmark_subnets.py\'s OUT/onnx/all_depths.detector.onnx); default: '
                        'exported into OUT_DIR/onnx before the stream')
    parser.add_argument('--threads', type=at_least(1), default=torch.get_num_threads(),
                        help='the runtime\'s intra-op threads (default: PyTorch\'s, i.e. OMP_NUM_THREADS)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def default_deadlines(table):
    rows = {r['skip']: r for r in table['subnets']}
    num_flags = len(next(iter(rows)))
    superset, base = 'F' * num_flags, 'T' * num_flags
    if superset not in rows or base not in rows:
        raise ValueError(f'the table lacks {superset} or {base}: give --deadlines')
    super_median, super_tail = row_cost(rows[superset], 'latency'), row_cost(rows[superset], 'latency', 90)
    base_tail = row_cost(rows[base], 'latency', 90)
    if base_tail >= super_median:
        raise ValueError(f'the table\'s base-net p90 ({base_tail:.1f} ms) is not below the super-net\'s median '
                         f'({super_median:.1f} ms): no deadline separates them; give --deadlines')
    return [round(1.25 * super_tail, 1), round((base_tail + super_median) / 2, 1)]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        table = load_table(args.table)
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
        check_dataset_paths(cfg, ('test', ))
        deadlines = args.deadlines or default_deadlines(table)
        selections = [select_subnet(table, Budget('latency', deadline)) for deadline in deadlines]
        timed_in = table_backend(table)
    except (FileNotFoundError, ValueError, KeyError) as err:
        parser.error(str(err))
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} does not exist.')
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
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.table))
    cfg.work_dir = osp.join(out_dir, 'deadline_runner')
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ADNDistillHook']
    if not 0 <= args.percentile <= 100:
        parser.error(f'--percentile must be in [0, 100], got {args.percentile:g}')
    cfg.test_dataloader.batch_size = args.images_per_call  # a stream: N images per call
    for selection in selections:
        if not selection.fits:  # said now, before the long run; the exit code says it at the end
            print(f'deadline_demo: {selection.summary()}', file=sys.stderr)
    device = torch.device(args.device)

    runner = Runner.from_cfg(cfg)
    runner.call_hook('before_run')
    runner.load_or_resume()
    model = runner.model.to(device).eval()
    backbone = adaptive_backbones(model)[0]
    measured = {r['skip'] for r in table['subnets']}
    if not measured <= set(backbone.subnets()):
        parser.error(f'the table {args.table} was measured on another model: its skips {sorted(measured)} are '
                     f'not sub-networks of {type(backbone).__name__}')
    superset, base = backbone.subnets()[0], backbone.subnets()[-1]
    try:  # exported here, if at all: PyTorch runs before the stream, not in it
        runner_at = depth_runner(model, args.backend, cfg, osp.join(out_dir, 'onnx'), args.onnx, args.threads)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    # the depth is handed to each call: the runner switches the PyTorch model, or feeds the runtime's skip input
    controller = DeadlineController(None, table, percentile=args.percentile, headroom=args.headroom,
                                    window=args.window, device=device)
    policies = {f'fixed super-net ({superset})': superset, f'fixed base-net ({base})': base, 'controller': None}
    loader = runner.test_dataloader
    dataset = loader.dataset
    quality_keys = QUALITY_KEYS[task]

    def call(policy_skip, data, deadline):
        if policy_skip is None:
            outputs = controller.run(lambda skip: runner_at(data, skip), deadline)
            return outputs, controller.records[-1].elapsed_ms, controller.records[-1].skip
        outputs = []
        elapsed = time_once(lambda: outputs.append(runner_at(data, policy_skip)), device)
        return outputs[0], elapsed, policy_skip

    fmt = table['subnets'][0].get('memory_format', 'contiguous')  # as the table was timed
    layout = memory_format(model, fmt) if args.backend == PYTORCH else contextlib.nullcontext()
    calls = []
    with torch.no_grad(), layout:
        first = next(iter(loader))
        for _ in range(args.warmup):
            for skip in policies.values():
                call(skip, first, deadlines[0])
        controller.records.clear()
        results = []
        progress = ProgressBar(len(deadlines) * len(loader))
        for phase, deadline in enumerate(deadlines):
            evaluators = {name: runner.build_evaluator(cfg.test_evaluator) for name in policies}
            times = {name: [] for name in policies}
            depths = {name: Counter() for name in policies}
            for evaluator in evaluators.values():
                evaluator.dataset_meta = dataset.metainfo
            for data in loader:
                for name, skip in policies.items():
                    outputs, elapsed, used = call(skip, data, deadline)
                    evaluators[name].process(data_samples=outputs, data_batch=data)
                    times[name].append(elapsed)
                    depths[name][used] += 1
                progress.update()
            calls += [dict(phase=phase, skip=r.skip, deadline_ms=r.deadline_ms, elapsed_ms=r.elapsed_ms,
                           predicted_ms=r.predicted_ms) for r in controller.records]
            controller.records.clear()
            for name in policies:
                metrics = evaluators[name].evaluate(len(dataset))
                hits = sum(t <= deadline for t in times[name])
                results.append(dict(phase=phase, deadline_ms=deadline, policy=name, calls=len(times[name]),
                                    hits=hits, hit_rate=hits / len(times[name]),
                                    median_ms=statistics.median(times[name]),
                                    p90_ms=latency_percentile(times[name], 90),
                                    depths=dict(depths[name].most_common()),
                                    times_ms=[round(t, 3) for t in times[name]],  # per call, in the stream's order
                                    **{k.split('/')[-1]: float(metrics[k]) for k in quality_keys if k in metrics}))
    set_subnet(model, superset)
    runner.call_hook('after_run')
    summary = summarize(results, policies, quality_keys)
    write(results, summary, out_dir, args, deadlines, calls)
    return exit_code(selections)


def summarize(results, policies, quality_keys):
    """Every policy over the whole stream: hit rate and the quality averaged over the phases."""
    rows = []
    for name in policies:
        mine = [r for r in results if r['policy'] == name]
        calls, hits = sum(r['calls'] for r in mine), sum(r['hits'] for r in mine)
        row = dict(policy=name, calls=calls, hits=hits, hit_rate=hits / calls)
        for key in (k.split('/')[-1] for k in quality_keys):
            if all(key in r for r in mine):
                row[key] = statistics.mean(r[key] for r in mine)
        rows.append(row)
    return rows


def write(results, summary, out_dir, args, deadlines, calls):
    os.makedirs(out_dir, exist_ok=True)
    quality = [k for k in summary[0] if k not in ('policy', 'calls', 'hits', 'hit_rate')]
    where = (args.device if args.backend == PYTORCH else
             f'{args.backend} ({args.threads} threads, all depths in one model)')
    lines = [f'{osp.basename(args.config)} in {where}: deadlines {", ".join(f"{d:g} ms" for d in deadlines)} '
             f'(one pass over the test set each), controller at p{args.percentile:g}, headroom {args.headroom:g}',
             '', '| phase | deadline (ms) | policy | deadlines met | median / p90 (ms) | depths used | '
             + ' | '.join(quality) + ' |', '|' + '---|' * (6 + len(quality))]
    for r in results:
        used = ', '.join(f'{s} x{n}' for s, n in r['depths'].items())
        lines.append(f'| {r["phase"] + 1} | {r["deadline_ms"]:g} | {r["policy"]} | {r["hits"]}/{r["calls"]} '
                     f'({100 * r["hit_rate"]:.1f} %) | {r["median_ms"]:.1f} / {r["p90_ms"]:.1f} | {used} | '
                     + ' | '.join(f'{r.get(k, float("nan")):.4g}' for k in quality) + ' |')
    lines += ['', '| policy | deadlines met (all phases) | ' + ' | '.join(f'{k} (mean of phases)' for k in quality)
              + ' |', '|' + '---|' * (2 + len(quality))]
    for r in summary:
        lines.append(f'| {r["policy"]} | {r["hits"]}/{r["calls"]} ({100 * r["hit_rate"]:.1f} %) | '
                     + ' | '.join(f'{r.get(k, float("nan")):.4g}' for k in quality) + ' |')
    text = '\n'.join(lines) + '\n'
    md, js = osp.join(out_dir, 'deadline_demo.md'), osp.join(out_dir, 'deadline_demo.json')
    with open(md, 'w') as f:
        f.write(text)
    with open(js, 'w') as f:
        json.dump(dict(deadlines_ms=deadlines, percentile=args.percentile, headroom=args.headroom,
                       backend=args.backend, onnx=args.onnx, phases=results, summary=summary,
                       controller_calls=calls), f, indent=1)
    print('\n' + text)
    print(f'written: {md}, {js}')


if __name__ == '__main__':
    sys.exit(main())
