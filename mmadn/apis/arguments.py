"""The command line the tools share: the model's arguments (config, checkpoint, ``--cfg-options``, ``--device``)
with mmdet's flags and help, the launcher's of ``train.py`` / ``test.py``, and the argparse types and checks.

A tool adds what only it takes; what two tools take is declared here once, so it reads and fails alike in all.
"""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import DictAction

CFG_OPTIONS_HELP = ('override some settings in the used config, the key-value pair in xxx=yyy format will be '
                    'merged into config file. e.g. model.backbone.skip=TTFF')
CHECKPOINT_PLACES = ('positional', 'option', None)


def default_device() -> str:
    """``'cuda'`` where a GPU is visible, else ``'cpu'``: the tools' ``--device`` default."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_model_arguments(parser: argparse.ArgumentParser,
                        checkpoint: Optional[str] = 'positional',
                        device: bool = False,
                        config_help: str = 'config file path',
                        checkpoint_help: str = 'checkpoint file') -> argparse.ArgumentParser:
    """Add ``config``, the checkpoint (``'positional'``; ``'option'``: ``--checkpoint``; None: none),
    ``--cfg-options`` and, with ``device``, ``--device`` to ``parser``, as mmdet's tools name them."""
    if checkpoint not in CHECKPOINT_PLACES:
        raise ValueError(f'checkpoint={checkpoint!r}: expected one of {CHECKPOINT_PLACES}')
    parser.add_argument('config', help=config_help)
    if checkpoint == 'positional':
        parser.add_argument('checkpoint', help=checkpoint_help)
    elif checkpoint == 'option':
        parser.add_argument('--checkpoint', help=checkpoint_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=CFG_OPTIONS_HELP)
    if device:
        parser.add_argument('--device', default=default_device(),
                            help='device used for inference (default: cuda when available, else cpu)')
    return parser


def add_launcher_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--launcher`` and the rank ``torch.distributed.launch`` passes (``--local-rank``; torchrun sets
    ``LOCAL_RANK`` instead): the distributed arguments of ``train.py`` and ``test.py``."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def add_data_check_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--skip-data-check``: the dataset pre-flight (``mmadn.utils.dataset_preflight``) checks the paths only."""
    parser.add_argument('--skip-data-check', action='store_true',
                        help='check only the dataset paths, not the annotations and images (the pre-flight)')
    return parser


def export_local_rank(args: argparse.Namespace) -> None:
    """Hand ``--local-rank`` on as ``LOCAL_RANK``, where mmengine reads it (unless torchrun has set it)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def at_least(minimum: int):
    """An argparse ``type``: an integer of at least ``minimum``, or an error that says which (exit code 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """``parser.error`` (exit code 2) for a CUDA device on a machine without one."""
    if device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {device} requested but CUDA is not available; use --device cpu.')


def check_checkpoint(parser: argparse.ArgumentParser, path: str) -> None:
    """``parser.error`` (exit code 2) for a checkpoint file that is not there."""
    if not osp.isfile(path):
        parser.error(f'checkpoint {path} does not exist.')
