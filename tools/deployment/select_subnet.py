"""Pick the sub-network for a budget from a table measured once on the target device (no model is run).

    python tools/deployment/select_subnet.py work_dirs/demo/subnets/subnets.json --budget latency=40ms \
        [--percentile 90] [--out selection.json]

The table is the subnets.json that tools/analysis_tools/benchmark_subnets.py wrote (which also selects with
--budget right after measuring). Prints the chosen sub-network, its quality, cost and the margin left; when nothing
fits, says what the cheapest needs and exits with mmadn.deploy.selection.NO_SUBNET_FITS (3), as every tool that
takes a budget does.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmadn.deploy.selection import add_budget_arguments, load_table, select_subnet, write_selection  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Pick a sub-network for a budget from a measured table')
    parser.add_argument('table', help='subnets.json written by benchmark_subnets.py')
    add_budget_arguments(parser)
    parser.add_argument('--out', help='where to write the selection (default: selection.json beside the table)')
    args = parser.parse_args(argv)
    if args.budget is None:
        parser.error('give --budget METRIC=VALUE, e.g. --budget latency=40ms')
    try:
        selection = select_subnet(load_table(args.table), args.budget, args.percentile)
    except (FileNotFoundError, ValueError, KeyError) as err:
        parser.error(str(err).strip('"'))
    print(selection.summary())
    print('written: ' + write_selection(selection, args.out or osp.join(osp.dirname(osp.abspath(args.table)),
                                                                        'selection.json')))
    return selection.exit_code


if __name__ == '__main__':
    sys.exit(main())
