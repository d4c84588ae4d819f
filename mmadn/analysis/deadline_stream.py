"""The deadline demo's stream (``tools/deployment/deadline_demo.py``): the run-time controller against the fixed
super-net and the fixed base-net, on the test set once per deadline, each scored by the config's evaluator.

Each image is handed to the three policies back to back (each call timed alone: data preprocessing and inference,
``model.test_step``), so a machine whose speed drifts slows them alike. The controller
(``mmadn.deploy.DeadlineController``) sets the depth before each call from the table ``benchmark_subnets.py``
measured; the fixed policies run one depth throughout. The depth reaches the model through a depth runner
(``mmadn.deploy.depth_runners``): the PyTorch model switched in place, or a runtime's all-depths model fed it.
"""
import contextlib
import json
import os
import os.path as osp
import statistics
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.utils import ProgressBar

from mmadn.deploy.depth_runners import PYTORCH
from mmadn.deploy.memory_format import memory_format
from mmadn.deploy.selection import latency_percentile, row_cost
from mmadn.models import adaptive_backbones, set_subnet
from mmadn.utils.timing import time_once
from .benchmark import QUALITY_KEYS


def default_deadlines(table: Dict) -> List[float]:
    """Two deadlines from a benchmark table: a generous one (1.25 x the super-net's p90), then one between the
    base-net's p90 and the super-net's median; a ValueError when the table cannot separate them."""
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


def run_deadline_stream(runner, table: Dict, deadlines: Sequence[float], run_at, controller, device, task: str,
                        warmup: int = 3) -> Dict:
    """Stream the test set through the three policies once per deadline. ``run_at(data, skip)`` runs one call at
    a depth; ``controller`` (its depth chosen per call) is one policy. Returns ``phases`` (one row per phase and
    policy: deadlines met, median / p90 ms, depths used, per-call times, quality), ``summary``
    (:func:`summarize`) and ``controller_calls`` (every planned call)."""
    model = runner.model
    subnets = adaptive_backbones(model)[0].subnets()
    superset, base = subnets[0], subnets[-1]
    policies = {f'fixed super-net ({superset})': superset, f'fixed base-net ({base})': base, 'controller': None}
    loader, quality_keys = runner.test_dataloader, QUALITY_KEYS[task]
    dataset = loader.dataset

    def call(policy_skip, data, deadline):
        if policy_skip is None:
            outputs = controller.run(lambda skip: run_at(data, skip), deadline)
            return outputs, controller.records[-1].elapsed_ms, controller.records[-1].skip
        outputs = []
        elapsed = time_once(lambda: outputs.append(run_at(data, policy_skip)), device)
        return outputs[0], elapsed, policy_skip

    fmt = table['subnets'][0].get('memory_format', 'contiguous')  # as the table was timed
    layout = memory_format(model, fmt) if run_at.backend == PYTORCH else contextlib.nullcontext()
    calls, results = [], []
    with torch.no_grad(), layout:
        first = next(iter(loader))
        for _ in range(warmup):
            for skip in policies.values():
                call(skip, first, deadlines[0])
        controller.records.clear()
        progress = ProgressBar(len(deadlines) * len(loader))
        for phase, deadline in enumerate(deadlines):
            evaluators = {name: runner.build_evaluator(runner.cfg.test_evaluator) for name in policies}
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
    return dict(phases=results, summary=summarize(results, policies, quality_keys), controller_calls=calls)


def summarize(results: List[Dict], policies: Sequence[str], quality_keys: Sequence[str]) -> List[Dict]:
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


def write_deadline_report(out_dir: str, stream: Dict, heading: str, settings: Dict) -> Tuple[str, List[str]]:
    """Write ``deadline_demo.md`` (``heading``, the phases' table and the whole stream's) and ``deadline_demo.json``
    (``settings``, e.g. the deadlines and the controller's, then everything :func:`run_deadline_stream` returned):
    ``(the Markdown text, the paths)``."""
    os.makedirs(out_dir, exist_ok=True)
    results, summary = stream['phases'], stream['summary']
    quality = [k for k in summary[0] if k not in ('policy', 'calls', 'hits', 'hit_rate')]
    lines = [heading, '', '| phase | deadline (ms) | policy | deadlines met | median / p90 (ms) | depths used | '
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
        json.dump(dict(settings, phases=results, summary=summary, controller_calls=stream['controller_calls']), f,
                  indent=1)
    return text, [md, js]
