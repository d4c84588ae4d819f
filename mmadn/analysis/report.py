"""Write a sub-network benchmark as Markdown, CSV, JSON and a PNG of quality against cost (Pareto front marked,
and the sub-networks that a subset of their own blocks beats, ``check_depths``)."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Set

from .measure import check_depths, pareto_front


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return '' if value is None else str(value)


def write_report(rows: List[Dict], out_dir: str, quality_key: str, title: str = '') -> Dict[str, str]:
    """``rows``: one dict per sub-network (same keys). Returns the paths written. The JSON holds everything;
    list- and dict-valued columns (the timed runs, the memory-format timings) stay out of the Markdown and CSV.

    The Markdown marks the latency Pareto front (``latency_pareto``) and every sub-network that one running a
    subset of its blocks beats (``beaten_by``: which, by how much), with a summary line under the table; the JSON
    has the same as ``depth_check``."""
    os.makedirs(out_dir, exist_ok=True)
    keys = [k for k in rows[0] if not any(isinstance(r.get(k), (list, tuple, dict)) for r in rows)]
    paths = {k: osp.join(out_dir, f'subnets.{k}') for k in ('md', 'csv', 'json', 'png')}
    check = check_depths(rows, quality_key)
    with open(paths['json'], 'w') as f:
        json.dump(dict(title=title, quality_key=quality_key, subnets=rows, depth_check=check.to_dict()), f,
                  indent=2)
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    with open(paths['md'], 'w') as f:
        if title:
            f.write(f'{title}\n\n')
        beaten = check.beaten_by()
        header = keys + ['latency_pareto', 'beaten_by']
        f.write('| ' + ' | '.join(header) + ' |\n|' + '---|' * len(header) + '\n')
        for row in rows:
            by = ', '.join(f'{skip} (-{deficit:.4g})' for skip, deficit in beaten.get(row['skip'], ()))
            marks = ['yes' if row['skip'] in check.front else '', by]
            f.write('| ' + ' | '.join([_fmt(row[k]) for k in keys] + marks) + ' |\n')
        f.write(f'\n{check.summary()}\n')
    _plot(rows, paths['png'], quality_key, title, set(check.beaten_by()))
    return paths


def _plot(rows: List[Dict], path: str, quality_key: str, title: str, beaten: Set[str] = frozenset()) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    costs = [('gflops', 'GFLOPs'), ('latency_ms', 'latency (ms, median)')]
    fig, axes = plt.subplots(1, len(costs), figsize=(6 * len(costs), 4.5))
    quality = [r[quality_key] for r in rows]
    for ax, (key, label) in zip(axes, costs):
        cost = [r[key] for r in rows]
        front = pareto_front(list(zip(cost, quality)))
        flagged = [r['skip'] in beaten for r in rows]
        ax.scatter([c for c, b in zip(cost, flagged) if not b], [q for q, b in zip(quality, flagged) if not b],
                   color='tab:blue', zorder=2, label='sub-network')
        if any(flagged):
            ax.scatter([c for c, b in zip(cost, flagged) if b], [q for q, b in zip(quality, flagged) if b],
                       marker='x', s=60, color='tab:orange', zorder=4,
                       label='beaten by a subset of its blocks')
        ax.plot([cost[i] for i in front], [quality[i] for i in front], '-o', color='tab:red', zorder=3,
                label='Pareto front')
        for r, c, q in zip(rows, cost, quality):
            ax.annotate(r['skip'], (c, q), textcoords='offset points', xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(quality_key)
        ax.grid(alpha=0.3)
        ax.legend(loc='lower right')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
