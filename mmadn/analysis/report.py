"""Write a sub-network benchmark as Markdown, CSV, JSON and a PNG of quality against cost (Pareto front marked)."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List

from .measure import pareto_front


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return '' if value is None else str(value)


def write_report(rows: List[Dict], out_dir: str, quality_key: str, title: str = '') -> Dict[str, str]:
    """``rows``: one dict per sub-network (same keys). Returns the paths written. The JSON holds everything;
    list- and dict-valued columns (the timed runs, the memory-format timings) stay out of the Markdown and CSV."""
    os.makedirs(out_dir, exist_ok=True)
    keys = [k for k in rows[0] if not any(isinstance(r.get(k), (list, tuple, dict)) for r in rows)]
    paths = {k: osp.join(out_dir, f'subnets.{k}') for k in ('md', 'csv', 'json', 'png')}
    with open(paths['json'], 'w') as f:
        json.dump(dict(title=title, quality_key=quality_key, subnets=rows), f, indent=2)
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    with open(paths['md'], 'w') as f:
        if title:
            f.write(f'{title}\n\n')
        f.write('| ' + ' | '.join(keys) + ' |\n|' + '---|' * len(keys) + '\n')
        for row in rows:
            f.write('| ' + ' | '.join(_fmt(row[k]) for k in keys) + ' |\n')
    _plot(rows, paths['png'], quality_key, title)
    return paths


def _plot(rows: List[Dict], path: str, quality_key: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    costs = [('gflops', 'GFLOPs'), ('latency_ms', 'latency (ms, median)')]
    fig, axes = plt.subplots(1, len(costs), figsize=(6 * len(costs), 4.5))
    quality = [r[quality_key] for r in rows]
    for ax, (key, label) in zip(axes, costs):
        cost = [r[key] for r in rows]
        front = pareto_front(list(zip(cost, quality)))
        ax.scatter(cost, quality, color='tab:blue', zorder=2, label='sub-network')
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
