"""Evaluate a multi-exit classifier: anytime accuracy of every exit and budgeted batch classification.

    python tools/imta/evaluate_budgets.py CONFIG CHECKPOINT --out-dir DIR [--flops-convention mmengine|msdnet]
        [--qs 0.05 0.1 ...] [--cfg-options k=v ...]

Runs the model once over the config's ``holdout_dataloader`` (a held-out part of the training set, where the
exit thresholds are fitted) and its ``test_dataloader``, then writes to DIR:

- ``anytime.md``: per exit, cumulative FLOPs and parameters (mmengine's analysis) and test top-1/top-5;
- ``budget.md`` / ``budget.tsv``: per budget parameter q, expected FLOPs per image, test and held-out top-1, the
  share of test images leaving at each exit;
- ``budget_curve.png``: test top-1 against expected FLOPs per image, with the single exits as reference points;
- ``results.json``: all of the above.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.apis import add_model_arguments, check_device  # noqa: E402
from mmadn.imta import budget_sweep, exit_accuracies, exit_costs  # noqa: E402
from mmadn.imta.budgeted import DEFAULT_QS  # noqa: E402
from mmadn.imta.loading import load_for_budgets  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, device=True)
    parser.add_argument('--out-dir', required=True, help='where the tables, the curve and results.json go')
    parser.add_argument('--flops-convention', choices=['mmengine', 'msdnet'], default='mmengine',
                        help="mmengine's default count, or MSDNet's counter convention (the papers' figures)")
    parser.add_argument('--qs', type=float, nargs='+', default=None,
                        help='budget parameters q (default: p / 20 for p = 1..40, as the public code)')
    args = parser.parse_args()
    check_device(parser, args.device)
    return args


def collect(model, loader, device):
    """Every exit's softmax scores (N x k x C) and the labels (N) over a data loader."""
    scores, labels = [], []
    with torch.no_grad():
        for data in loader:
            for sample in model.test_step(data):
                if 'exit_scores' not in sample:
                    raise SystemExit('The model does not output every exit\'s scores (`exit_scores`): use '
                                     'MultiExitClassifier with MultiExitClsHead (configs/imta/).')
                scores.append(sample.exit_scores.float().cpu())
                labels.append(sample.gt_label.cpu())
    return torch.stack(scores), torch.cat(labels)


def input_shape(model, loader):
    data = model.data_preprocessor(next(iter(loader)), False)
    return tuple(data['inputs'].shape[1:])


def fmt_flops(flops, unit):
    return f'{flops / unit:.3f}'


def write_outputs(out_dir, anytime, rows, costs, topk, unit, unit_name, convention):
    os.makedirs(out_dir, exist_ok=True)
    flops, params = costs
    lines = [f'| exit | {unit_name}FLOPs (cumulative, {convention}) | params (M) | ' +
             ' | '.join(f'top-{k} (%)' for k in topk) + ' |', '|---' * (3 + len(topk)) + '|']
    for i in range(len(flops)):
        accs = ' | '.join(f'{anytime[i][j]:.2f}' for j in range(len(topk)))
        lines.append(f'| {i + 1} | {fmt_flops(flops[i], unit)} | {params[i] / 1e6:.3f} | {accs} |')
    anytime_md = '\n'.join(lines) + '\n'
    with open(osp.join(out_dir, 'anytime.md'), 'w') as f:
        f.write(anytime_md)

    k = len(flops)
    head = ['q', f'expected {unit_name}FLOPs', 'test top-1 (%)', 'held-out top-1 (%)'] + \
        [f'exit {i + 1} share' for i in range(k)]
    md = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    tsv = ['\t'.join(head)]
    for r in rows:
        cells = [f"{r['q']:.2f}", fmt_flops(r['expected_flops'], unit), f"{r['accuracy']:.2f}",
                 f"{r['val_accuracy']:.2f}"] + [f'{s:.3f}' for s in r['exit_shares']]
        md.append('| ' + ' | '.join(cells) + ' |')
        tsv.append('\t'.join(cells))
    budget_md = '\n'.join(md) + '\n'
    with open(osp.join(out_dir, 'budget.md'), 'w') as f:
        f.write(budget_md)
    with open(osp.join(out_dir, 'budget.tsv'), 'w') as f:
        f.write('\n'.join(tsv) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r['expected_flops'] / unit for r in rows], [r['accuracy'] for r in rows], 'o-', ms=3,
            label='budgeted (thresholds from held-out split)')
    ax.plot([f / unit for f in flops], [a[0] for a in anytime], 's', color='tab:red', label='single exits')
    ax.set_xlabel(f'expected {unit_name}FLOPs per image ({convention} count)')
    ax.set_ylabel('test top-1 accuracy (%)')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'budget_curve.png'), dpi=120)
    plt.close(fig)

    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(flops_convention=convention, exit_flops=flops, exit_params=params,
                       anytime={f'top{k}': [a[j] for a in anytime] for j, k in enumerate(topk)},
                       budget=rows), f, indent=1)
    return anytime_md, budget_md


def main():
    args = parse_args()
    cfg, model = load_for_budgets(args.config, args.checkpoint, args.device, args.cfg_options)

    holdout_loader = Runner.build_dataloader(cfg.holdout_dataloader)
    test_loader = Runner.build_dataloader(cfg.test_dataloader)
    val_scores, val_labels = collect(model, holdout_loader, args.device)
    test_scores, test_labels = collect(model, test_loader, args.device)

    num_classes = test_scores.size(-1)
    topk = tuple(k for k in (1, 5) if k <= num_classes)
    anytime = exit_accuracies(test_scores, test_labels, topk).tolist()
    costs = exit_costs(model, input_shape(model, test_loader), convention=args.flops_convention)
    rows = budget_sweep(val_scores.numpy(), val_labels.numpy(), test_scores.numpy(), test_labels.numpy(), costs[0],
                        args.qs or DEFAULT_QS)
    unit, unit_name = (1e9, 'G') if costs[0][-1] >= 1e9 else (1e6, 'M')
    anytime_md, budget_md = write_outputs(args.out_dir, anytime, rows, costs, topk, unit, unit_name,
                                          args.flops_convention)
    print(f'held-out split: {len(val_labels)} images, test: {len(test_labels)} images\n')
    print('Anytime prediction (test):\n' + anytime_md)
    print('Budgeted batch classification (test):\n' + budget_md)
    print(f'wrote anytime.md, budget.md, budget.tsv, budget_curve.png and results.json to {args.out_dir}')


if __name__ == '__main__':
    main()
