"""Print the whole config, its bases merged in (mmdet's and mmpretrain's tools/misc/print_config.py).

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--save-path FILE.py]

mmadn is imported first, so ``mmadn::`` bases resolve and the ``--cfg-options`` are checked as by
``tools/train.py`` (a top-level key that neither the config nor mmengine's Runner has is an error, with a
suggestion).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmadn  # noqa: E402,F401  registers the modules
import mmadn.utils.config_scope  # noqa: E402,F401  mmadn:: base configs
from mmadn.apis import add_model_arguments  # noqa: E402
from mmadn.utils import load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Print the whole config')
    add_model_arguments(parser, checkpoint=None)
    parser.add_argument('--save-path', help='also write the merged config to this file (.py, .json or .yml)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'print_config.py: {err}') from None
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        if not args.save_path.endswith(('.py', '.json', '.yml', '.yaml')):
            raise SystemExit(f'--save-path {args.save_path}: the file must end in .py, .json, .yml or .yaml')
        cfg.dump(args.save_path)
        print(f'Config saving at {args.save_path}')


if __name__ == '__main__':
    main()
