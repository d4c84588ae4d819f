"""The cost of a depth switch (``backbone.skip = ...``) for every ADN backbone family, and whether it allocates.

    python bench/bench_switch.py [--against OTHER_CHECKOUT] [--rounds 3]

With ``--against`` (e.g. a ``git worktree`` of an older commit), the same measurement runs on both trees,
alternating, ``--rounds`` times each, and the ratio of the best times is printed: one run, one machine, so the ratio
holds even when the machine is noisy.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
import tracemalloc

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAMILIES = {  # the released sizes: a switch walks every stage and norm
    'ResNet-50': ('ResNetADN', dict(depth=50)),
    'MobileNetV2': ('MobileNetV2ADN', dict()),
    'Swin-T': ('SwinTransformerADN', dict(arch='tiny')),
    'ViT-b/16': ('VisionTransformerADN', dict(arch='b', img_size=224, patch_size=16)),
}
SWITCHES = 20000


def measure() -> dict:
    import mmadn.models as models
    out = {}
    for name, (cls, kwargs) in FAMILIES.items():
        model = getattr(models, cls)(**kwargs)
        n = model.num_skip_flags
        skips = ['T' * n, 'F' * n, ('TF' * n)[:n], ('FT' * n)[:n]]
        model.skip = skips[0]
        tracemalloc.start()
        for i in range(64):
            model.skip = skips[i & 3]
        allocated = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        start = time.perf_counter()
        for i in range(SWITCHES):
            model.skip = skips[i & 3]
        out[name] = dict(us=(time.perf_counter() - start) / SWITCHES * 1e6, peak_bytes=allocated)
    return out


def run_in(tree: str) -> dict:
    env = {**os.environ, 'PYTHONPATH': tree, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, osp.abspath(__file__), '--measure'], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--against', help='another checkout of mmadn to compare with')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--measure', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return
    trees = {'this tree': ROOT, **({'other tree': osp.abspath(args.against)} if args.against else {})}
    best = {label: {} for label in trees}
    for _ in range(args.rounds):
        for label, tree in trees.items():
            for name, row in run_in(tree).items():
                best[label][name] = min(best[label].get(name, row), row, key=lambda r: r['us'])
    print(f'Depth switch, best of {args.rounds} rounds of {SWITCHES} switches (us per switch; peak bytes traced by '
          'tracemalloc over 64 switches: Python objects a switch creates)\n')
    print('| backbone | ' + ' | '.join(f'{t} us | {t} bytes' for t in trees) + (' | this / other |' if args.against
                                                                               else ' |'))
    print('|---' * (1 + 2 * len(trees) + bool(args.against)) + '|')
    for name in FAMILIES:
        cells = [f'{best[t][name]["us"]:.1f} | {best[t][name]["peak_bytes"]}' for t in trees]
        if args.against:
            cells.append(f'{best["this tree"][name]["us"] / best["other tree"][name]["us"]:.2f}')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')

if __name__ == '__main__':
    main()
