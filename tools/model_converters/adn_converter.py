"""Convert ADN checkpoints between the authors' released layout and mmpretrain / mmdet.

    python tools/model_converters/adn_converter.py SRC DST --to mmpretrain|mmdet|released [--arch ARCH]

ARCH is an architecture whose registered backbone declares its ``checkpoint_layouts`` (resnet, mobilenet_v2, vit,
swin); by default the one whose layouts recognise SRC's keys. SRC may be a released ADN model (or the torchvision
model it is built on), an mmpretrain classifier or, for ``--to released`` / ``mmdet``, a ResNet detector. Every
conversion is a pure function next to its model (``mmadn/models/backbones/*_layouts.py``) and round-trips
bit-exactly; detection and dispatch are ``mmadn.models.utils.checkpoint_layout``. The output is an mmengine-style
checkpoint (``{'meta': ..., 'state_dict': ...}``); with ``--to released`` it is a bare state dict, as released.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmadn  # noqa: E402,F401  registers the backbones, whose layouts are read
from mmadn.models.utils.checkpoint_layout import (convert_checkpoint, detect_arch,  # noqa: E402,F401
                                                  registered_layouts, unwrap_state_dict)
from mmadn.utils import safe_torch_load  # noqa: E402

convert = convert_checkpoint  # the converter's API under its earlier names: detect_arch, convert


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--to', required=True, choices=['mmpretrain', 'mmdet', 'released'])
    parser.add_argument('--arch', choices=sorted(registered_layouts()), help='default: detected from the keys')
    args = parser.parse_args(argv)

    state_dict = unwrap_state_dict(safe_torch_load(args.src))
    try:
        arch, source, converted = convert_checkpoint(state_dict, args.to, args.arch)
    except ValueError as err:
        raise SystemExit(f'{args.src}: {err}') from None
    out = converted if args.to == 'released' else dict(
        meta=dict(converted_from=source, arch=arch, source_file=osp.basename(args.src)), state_dict=converted)
    torch.save(out, args.dst)
    print(f'{args.src} ({arch}, {source} layout, {len(state_dict)} tensors) -> {args.dst} '
          f'({args.to} layout, {len(converted)} tensors)')


if __name__ == '__main__':
    main()
