"""What an ODN run decided, as numbers and as a picture: read from the ``odn_result.json`` ``ODNTrainLoop`` writes.

:func:`expansion_summary` cuts the decision log into one segment per depth (epochs, best accuracy and when,
learning-rate decays, how the depth ended) and says when the target was reached; :func:`plot_expansion` draws
every epoch's validation accuracy per depth against the target and the patience window that ended each depth.
``tools/odn/plot_expansion.py`` wraps both.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from .expansion import WARMUP

RESULT_FILE = 'odn_result.json'


def load_result(path: str) -> dict:
    """``odn_result.json`` from its path or from the work dir that holds it."""
    file = osp.join(path, RESULT_FILE) if osp.isdir(path) else path
    if not osp.isfile(file):
        raise FileNotFoundError(f'{file} does not exist: give the work dir of an ODN run (ODNTrainLoop writes '
                                f'{RESULT_FILE} there when training ends or stops) or the file itself')
    with open(file) as f:
        result = json.load(f)
    if 'history' not in result or 'settings' not in result:
        raise ValueError(f'{file} has no decision log with its settings: it was written by another tool or an older '
                         'mmadn; train again to get one')
    return result


def expansion_summary(result: dict) -> dict:
    """One entry per depth trained (in order), the warm-up, and when the target was reached.

    Times are seconds since the start of training, measured after the epoch's validation (``None`` when the
    run did not record them).
    """
    history: List[dict] = result['history']
    elapsed: Sequence[Optional[float]] = result.get('elapsed_s') or [None] * len(history)
    settings = result['settings']
    warmup = [h for h in history if h['phase'] == WARMUP]
    depths: List[dict] = []
    for h, t in zip(history, elapsed):
        if h['phase'] == WARMUP:
            continue
        if not depths or depths[-1]['depth'] != h['level']:
            depths.append(dict(depth=h['level'], first_epoch=h['epoch'], epochs=0, best=None, best_epoch=None,
                               lr_decays=0, end=None, end_epoch=None, end_time_s=None))
        seg = depths[-1]
        seg['epochs'] += 1
        if h['improved']:
            seg['best'], seg['best_epoch'] = h['accuracy'], h['epoch']
        seg['lr_decays'] += h['action'] == 'decay'
        seg['last_epoch'] = h['epoch']
        if h['action'] in ('expand', 'stop'):
            seg['end'], seg['end_epoch'], seg['end_time_s'] = h['action'], h['epoch'], t
        if h['action'] == 'finetune':
            seg['reached_target_epoch'] = h['epoch']
    reached = [(h['epoch'], t) for h, t in zip(history, elapsed) if h['action'] == 'finetune']
    return dict(
        depth=result['depth'],
        num_levels=result['num_levels'],
        finished=result['finished'],
        accuracy=result['accuracy'],
        target=result['target'],
        threshold=result['target'] - result['tolerance'],
        restart_from_warmup=settings['restart_from_warmup'],
        patience=settings['patience'],
        lr_patience=settings['lr_patience'],
        warmup_epochs=len(warmup),
        warmup_accuracy=warmup[-1]['accuracy'] if warmup else None,
        depths=depths,
        deepened=sum(h['action'] == 'expand' for h in history),
        target_reached_epoch=reached[0][0] if reached else None,
        target_reached_s=reached[0][1] if reached else None,
        epochs=len(history),
        total_s=elapsed[-1] if history else None)


def summary_markdown(summaries: Dict[str, dict]) -> str:
    """A table of the runs side by side: depth chosen, accuracy, epochs and time to the target and in all."""

    def fmt(value, spec='.1f'):
        return '-' if value is None else format(value, spec)

    lines = [
        '| run | chosen depth | best val. acc. | best per depth | target reached (epoch, s) | epochs | total s |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, s in summaries.items():
        per_depth = ', '.join(f'{d["depth"]}: {fmt(d["best"], ".2f")}' for d in s['depths'])
        lines.append(f'| {name} | {s["depth"]} of {s["num_levels"]} | {fmt(s["accuracy"], ".2f")} | {per_depth} | '
                     f'{fmt(s["target_reached_epoch"], "d")}, {fmt(s["target_reached_s"])} | {s["epochs"]} | '
                     f'{fmt(s["total_s"])} |')
    return '\n'.join(lines) + '\n'


def plot_expansion(results: Union[dict, Dict[str, dict]], path: str) -> str:
    """Validation accuracy of every epoch per depth, the target, and the patience window that ended each depth.

    ``results``: one run's result, or ``{label: result}`` for runs drawn one above the other on a shared axis.
    Left: the timeline (warm-up shaded grey, each depth its colour, best-so-far as a step, learning-rate decays
    as ticks, the ``patience`` stale epochs that made the rule deepen or stop shaded in that depth's colour).
    Right: the best accuracy each depth reached against ``target - tolerance``, the chosen depth outlined.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if 'history' in results:
        results = {'': results}
    rows = len(results)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 3.6 * rows), squeeze=False, sharex='col',
                             gridspec_kw=dict(width_ratios=(3, 1)))
    colours = plt.get_cmap('tab10')
    for (label, result), (ax, bar_ax) in zip(results.items(), axes):
        s = expansion_summary(result)
        history = result['history']
        target, threshold, patience = s['target'], s['threshold'], s['patience']
        if s['warmup_epochs']:
            warmup = [h for h in history if h['phase'] == WARMUP]
            ax.axvspan(0.5, s['warmup_epochs'] + 0.5, color='0.85', lw=0)
            ax.plot([h['epoch'] for h in warmup], [h['accuracy'] for h in warmup], 'o-', ms=3, lw=1, color='0.4',
                    label=f'warm-up (full depth {s["num_levels"]})')
        for seg in s['depths']:
            colour = colours((seg['depth'] - 1) % 10)
            epochs = [h for h in history if h['phase'] != WARMUP and seg['first_epoch'] <= h['epoch'] <=
                      seg['last_epoch']]
            x = [h['epoch'] for h in epochs]
            ax.plot(x, [h['accuracy'] for h in epochs], 'o-', ms=3, lw=1, color=colour, label=f'depth {seg["depth"]}')
            ax.step(x, [h['best'] for h in epochs], where='post', lw=0.8, ls=':', color=colour)
            for h in epochs:
                if h['action'] == 'decay':
                    ax.plot(h['epoch'], h['accuracy'], 'v', ms=6, mfc='none', color=colour)
            if seg['end']:
                # the stale epochs that ended this depth: the patience window
                ax.axvspan(seg['end_epoch'] - patience + 0.5, seg['end_epoch'] + 0.5, color=colour, alpha=0.12, lw=0)
                word = f'deepen to {seg["depth"] + 1}' if seg['end'] == 'expand' else f'stop: depth {seg["depth"]}'
                ax.annotate(f'{patience} epochs\nwithout gain:\n{word}', (seg['end_epoch'] + 0.4, 0.98),
                            xycoords=ax.get_xaxis_transform(), ha='right', va='top', fontsize=7, color=colour)
            for h in epochs:
                if h['action'] == 'finetune':
                    ax.plot(h['epoch'], h['accuracy'], '*', ms=12, color=colour, mec='k')
        accuracies = [h['accuracy'] for h in history]
        # room above the target line for the patience labels
        low, high = min(accuracies + [threshold]) - 3, max(accuracies + [target])
        ax.set_ylim(low, high + 0.22 * (high - low + 3))
        ax.axhline(target, color='k', lw=1, label=f'target {target:g}')
        ax.axhline(threshold, color='k', lw=1, ls='--', label=f'target - tolerance {threshold:g}')
        init = 'from the warm-up weights' if s['restart_from_warmup'] else 'continuing from the current weights'
        title = f'{label + ": " if label else ""}each new depth {init}; chosen depth {s["depth"]} of {s["num_levels"]}'
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('epoch (v: learning rate x lr_factor, *: target - tolerance reached)')
        ax.set_ylabel('validation accuracy (%)')
        ax.legend(fontsize=7, loc='lower right', ncol=2)
        ax.grid(alpha=0.3)

        names = [str(seg['depth']) for seg in s['depths']]
        values = [seg['best'] or 0.0 for seg in s['depths']]
        bars = bar_ax.bar(names, values, color=[colours((seg['depth'] - 1) % 10) for seg in s['depths']])
        for seg, bar in zip(s['depths'], bars):
            if seg['depth'] == s['depth']:
                bar.set_edgecolor('k')
                bar.set_linewidth(2)
            bar_ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f'{bar.get_height():.1f}', ha='center',
                        va='bottom', fontsize=7)
        bar_ax.axhline(threshold, color='k', lw=1, ls='--')
        bar_ax.axhline(target, color='k', lw=1)
        bar_ax.set_xlabel('depth (residual blocks)')
        bar_ax.set_ylabel('best validation accuracy (%)')
        bar_ax.set_ylim(0, 105)
        bar_ax.set_title(f'{len(s["depths"])} depths trained, {s["deepened"]} deepenings', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
