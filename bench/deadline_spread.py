"""Where a deadline demo's slow calls come from: the images, or the machine (issue 32).

    python bench/deadline_spread.py work_dirs/.../deadline_demo.json

A fixed policy runs every image once per phase at the same depth, so each image has one call per phase. The
fastest of an image's calls is its own cost (what the heads spend on its detections, which a controller cannot
know before the call); a call's time over that fastest is what the machine added (other processes, a slow spell).
Prints, per fixed policy, the spread of all calls, of the images' own costs and of the machine's share, as
nearest-rank p90 / p99 / max over the median.
"""
import argparse
import json
import statistics
import sys


def rank(values, fraction):
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def spread(values):
    median = statistics.median(values)
    return f'median {median:.1f}, p90 {rank(values, 0.9) / median:.2f}x, p99 {rank(values, 0.99) / median:.2f}x, ' \
        f'max {max(values) / median:.2f}x'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('result', help='deadline_demo.json (with per-call times_ms)')
    result = json.load(open(parser.parse_args(argv).result))
    for policy in dict.fromkeys(p['policy'] for p in result['phases'] if p['policy'] != 'controller'):
        phases = [p['times_ms'] for p in result['phases'] if p['policy'] == policy]
        if len(phases) < 2:
            continue
        own = [min(calls) for calls in zip(*phases)]
        added = [t / fastest for calls, fastest in zip(zip(*phases), own) for t in calls]
        print(f'{policy}, {len(phases)} calls per image ({result.get("backend", "pytorch")}):')
        print(f'  every call (ms): {spread([t for calls in phases for t in calls])}')
        print(f'  each image\'s fastest call (ms): {spread(own)}')
        print(f'  a call over its image\'s fastest: p90 {rank(added, 0.9):.2f}x, p99 {rank(added, 0.99):.2f}x, '
              f'max {max(added):.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
