"""Show what an ODN run decided: ``python tools/odn/plot_expansion.py WORK_DIR [WORK_DIR ...] --out PNG``.

Reads each run's ``odn_result.json`` (written by ODNTrainLoop) and writes PNG (validation accuracy of every epoch
per depth against the target and the patience window that ended each depth; the best accuracy per depth), beside
it the same name with ``.json`` (per depth: epochs, best accuracy and its epoch, learning-rate decays, how it
ended; when the target was reached) and ``.md`` (the runs side by side), and prints the table.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.odn.report import expansion_summary, load_result, plot_expansion, summary_markdown  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('runs', nargs='+', help='work dirs of ODN runs (or their odn_result.json files)')
    parser.add_argument('--labels', nargs='+', help='one name per run (default: the work dir names)')
    parser.add_argument('--out', required=True, help='the PNG to write')
    args = parser.parse_args()
    labels = args.labels or [osp.basename(osp.normpath(r if osp.isdir(r) else osp.dirname(r))) for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f'--labels names {len(labels)} runs but {len(args.runs)} were given')
    if not args.out.endswith('.png'):
        parser.error(f'--out must name a .png file, got {args.out}')
    results = {label: load_result(run) for label, run in zip(labels, args.runs)}
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot_expansion(results, args.out)
    summaries = {label: expansion_summary(r) for label, r in results.items()}
    stem = args.out[:-len('.png')]
    with open(f'{stem}.json', 'w') as f:
        json.dump(summaries, f, indent=1)
    table = summary_markdown(summaries)
    with open(f'{stem}.md', 'w') as f:
        f.write(table)
    print(table)
    for label, s in summaries.items():
        steps = '; '.join(f'depth {d["depth"]}: {d["epochs"]} epochs, best {d["best"]:.2f} (epoch {d["best_epoch"]}), '
                          f'{d["lr_decays"]} LR decay(s), {d["end"] or "last"}' for d in s['depths'])
        print(f'{label}: {steps}')
    print(f'wrote {args.out}, {stem}.json, {stem}.md')


if __name__ == '__main__':
    main()
