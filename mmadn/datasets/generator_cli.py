"""The command line of mmadn's data generators (``tools/misc/make_*.py``, ``tools/odn/make_dotted_lines.py``,
``tools/imta/make_synthetic_data.py``): the arguments every set of one layout takes, declared once, and the ending
they share (what the maker refuses ends as the parser's error, exit code 2, not as a traceback).
"""
import argparse
from typing import Callable, Dict, Optional, Sequence, Tuple, Type

from .scene_coco import SceneSplits


def folder_set_parser(doc: str, root: str, train_per_class: int, val_per_class: int,
                      size: Optional[int] = None) -> argparse.ArgumentParser:
    """``ROOT`` (default ``root``), ``--train-per-class``, ``--val-per-class``, ``--size`` (where ``size`` is
    given) and ``--seed`` of a class-folder set (mmpretrain's CustomDataset layout), ``doc`` as the help."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default=root)
    parser.add_argument('--train-per-class', type=int, default=train_per_class)
    parser.add_argument('--val-per-class', type=int, default=val_per_class)
    if size is not None:
        parser.add_argument('--size', type=int, default=size)
    parser.add_argument('--seed', type=int, default=0)
    return parser


def coco_set_parser(doc: str, root: str, num_train: int = 400, num_val: int = 100,
                    size: Tuple[int, int] = (160, 160)) -> argparse.ArgumentParser:
    """``ROOT`` (default ``root``), ``--num-train``, ``--num-val``, ``--size W H`` and ``--seed`` of a COCO-format
    detection set, ``doc`` as the help."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', nargs='?', default=root)
    parser.add_argument('--num-train', type=int, default=num_train)
    parser.add_argument('--num-val', type=int, default=num_val)
    parser.add_argument('--size', type=int, nargs=2, default=size, metavar=('W', 'H'))
    parser.add_argument('--seed', type=int, default=0)
    return parser


def scene_splits(args: argparse.Namespace) -> SceneSplits:
    """The splits a :func:`coco_set_parser` command line asks for."""
    return SceneSplits(args.num_train, args.num_val, tuple(args.size), args.seed)


def written_splits(paths: Dict[str, str]) -> str:
    """``split: path`` a line, for the annotation files a COCO-format maker returns."""
    return '\n'.join(f'{split}: {path}' for split, path in paths.items())


def run_generator(parser: argparse.ArgumentParser,
                  make: Callable[[argparse.Namespace], str],
                  argv: Optional[Sequence[str]] = None,
                  refusals: Tuple[Type[Exception], ...] = (ValueError, )) -> None:
    """Parse ``argv`` (default: the command line), run ``make(args)`` and print what it says it wrote; an error
    of ``refusals`` (a size the maker cannot draw, a missing optional package) ends as ``parser.error``."""
    args = parser.parse_args(argv)
    try:
        written = make(args)
    except refusals as err:
        parser.error(str(err))
    print(written)
