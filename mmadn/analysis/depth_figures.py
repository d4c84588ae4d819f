"""The figures of ``tools/analysis_tools/analyze_depth.py`` (matplotlib, Agg): one function per picture, each
taking the numbers the analysis wrote to its JSON, so a figure can be redrawn from a saved report."""
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ['plot_subnet_quality', 'plot_norm_distance', 'plot_stage_divergence', 'plot_gradcam_grid']

_SUPER, _BASE, _OTHER, _FIRST = 'tab:red', 'tab:green', 'tab:blue', 'tab:orange'


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str, title: str) -> str:
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_subnet_quality(rows: List[Dict], quality_key: str, path: str, title: str = '') -> str:
    """Bars of ``quality_key`` for every sub-network (the paper's Fig. 3a), super-net and base-net coloured."""
    plt = _pyplot()
    skips = [r['skip'] for r in rows]
    values = [r.get(quality_key) for r in rows]
    values = [np.nan if v is None else v for v in values]
    colors = [_SUPER if set(s) == {'F'} else _BASE if set(s) == {'T'} else _OTHER for s in skips]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows) + 2), 4))
    bars = ax.bar(range(len(rows)), values, color=colors)
    for bar, value in zip(bars, values):
        if not np.isnan(value):
            ax.annotate(f'{value:.3g}', (bar.get_x() + bar.get_width() / 2, value), ha='center', va='bottom',
                        fontsize=7, xytext=(0, 2), textcoords='offset points')
    ax.set_xticks(range(len(rows)), skips, rotation=60, fontsize=8, family='monospace')
    ax.set_ylabel(quality_key)
    ax.set_xlabel('sub-network (T: stage skips its skippable blocks)')
    finite = [v for v in values if not np.isnan(v)]
    if finite:
        ax.set_ylim(0, max(finite) * 1.3 or 1)
    ax.grid(axis='y', alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (_SUPER, _BASE, _OTHER)]
    ax.legend(handles, ['super-net', 'base-net', 'mixed (never trained)'], loc='upper center', ncol=3, fontsize=8)
    return _save(fig, path, title)


def plot_norm_distance(rows: List[Dict], path: str, title: str = '',
                       keys: Sequence[str] = ('mean_abs', 'normalized')) -> str:
    """Per stage, the distance of each twin norm's mean from its shared norm's (the paper's Fig. 3b), one row of
    panels per figure in ``keys``; the stage's first layer is the orange bar."""
    plt = _pyplot()
    keys = [k for k in keys if any(r.get(k) is not None for r in rows)]
    stages = list(dict.fromkeys(r['stage'] for r in rows))
    labels = {'mean_abs': 'mean |mu_shared - mu_twin|', 'normalized': 'same / std_shared',
              'rms': 'rms(mu_shared - mu_twin)', 'var_log_ratio': 'mean |log var_twin / var_shared|'}
    fig, axes = plt.subplots(len(keys), len(stages), figsize=(2.6 * len(stages) + 1, 2.6 * len(keys) + 0.6),
                             squeeze=False)
    for col, stage in enumerate(stages):
        layers = [r for r in rows if r['stage'] == stage]
        names = [r['shared'][len(r['stage_name']) + 1:] if r['stage_name'] else r['shared'] for r in layers]
        for row, key in enumerate(keys):
            ax = axes[row][col]
            values = [np.nan if r[key] is None else r[key] for r in layers]
            colors = [_FIRST if stage is not None and i == 0 else _OTHER for i in range(len(layers))]
            ax.bar(range(len(layers)), values, color=colors, edgecolor='black', linewidth=0.5)
            ax.set_xticks(range(len(layers)), names, rotation=60, fontsize=7)
            ax.grid(axis='y', alpha=0.3)
            if row == 0:
                name = layers[0]['stage_name'] or 'outside the stages'
                untrained = sum(1 for r in layers if r.get('twin_updates') == 0)
                ax.set_title(name + (f'\n({untrained} twins never updated)' if untrained else ''), fontsize=9)
            if col == 0:
                ax.set_ylabel(labels.get(key, key), fontsize=8)
    return _save(fig, path, title)


def plot_stage_divergence(rows: List[Dict], path: str, title: str = '') -> str:
    """Per stage, how far the base-net's output is from the super-net's (KL of the pooled softmax, relative
    distance), beside the sub-network skipping that stage alone when it was measured."""
    plt = _pyplot()
    kl_key = 'kl_pooled' if 'kl_pooled' in rows[0] else 'kl_tokens'
    panels = [(kl_key, f'KL(super || sub), {kl_key[3:]}'), ('rel_l2', '||h_sub - h_super|| / ||h_super||')]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    x = np.arange(len(rows))
    for ax, (key, label) in zip(axes, panels):
        isolated = 'isolated_' + key in rows[0]
        width = 0.38 if isolated else 0.6
        ax.bar(x - (width / 2 if isolated else 0), [r[key] for r in rows], width, color=_BASE, label='base-net')
        if isolated:
            ax.bar(x + width / 2, [r['isolated_' + key] for r in rows], width, color=_OTHER,
                   label='only this stage skips')
        ax.set_xticks(x, [r['module'].split('.')[-1] for r in rows])
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis='y', alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, title)


def plot_gradcam_grid(images: np.ndarray, cams: Dict[str, Dict[str, np.ndarray]], path: str, title: str = '',
                      captions: Optional[Sequence[str]] = None) -> str:
    """One row per image: the image, then the Grad-CAM of every block for each sub-network of ``cams``
    (``{'super-net': {block: (N, H, W)}, 'base-net': {...}}``), over the image."""
    plt = _pyplot()
    columns = [(None, None)] + [(net, block) for net, maps in cams.items() for block in maps]
    n = len(images)
    fig, axes = plt.subplots(n, len(columns), figsize=(1.7 * len(columns), 1.8 * n + 0.5), squeeze=False)
    for i in range(n):
        for j, (net, block) in enumerate(columns):
            ax = axes[i][j]
            ax.imshow(images[i])
            if net is not None:
                ax.imshow(cams[net][block][i], cmap='jet', alpha=0.5, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title('image' if net is None else f'{net}\n{block}', fontsize=8)
            if j == 0 and captions is not None:
                ax.set_ylabel(captions[i], fontsize=7)
    return _save(fig, path, title)
