"""Convert ADN checkpoints between the authors' released layout and mmpretrain / mmdet.

    python tools/model_converters/adn_converter.py SRC DST --to mmpretrain|mmdet|released [--arch ARCH]

ARCH is an architecture whose registered backbone declares its ``checkpoint_layouts`` (resnet, mobilenet_v2, vit,
swin); by default the one whose layouts recognise SRC's keys. SRC may be a released ADN model (or the torchvision
model it is built on), an mmpretrain classifier or, for ``--to released`` / ``mmdet``, a ResNet detector. Every
conversion is a pure function next to its model (``mmadn/models/backbones/*_layouts.py``) and round-trips
bit-exactly. The output is an mmengine-style checkpoint (``{'meta': ..., 'state_dict': ...}``); with
``--to released`` it is a bare state dict, as released.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.models.utils.checkpoint_layout import CheckpointLayouts, unwrap_state_dict  # noqa: E402
from mmadn.registry import MMPRETRAIN_MODELS  # noqa: E402
from mmadn.utils import safe_torch_load  # noqa: E402

# every registered backbone that declares its checkpoint layouts, by architecture
ARCHS = {
    cls.checkpoint_layouts.arch: cls.checkpoint_layouts
    for cls in MMPRETRAIN_MODELS.module_dict.values()
    if isinstance(getattr(cls, 'checkpoint_layouts', None), CheckpointLayouts)
}


def detect_arch(state_dict):
    """(arch, layout) of the one architecture whose layouts recognise ``state_dict``, or a ValueError."""
    found, reasons = [], []
    for arch, layouts in ARCHS.items():
        try:
            found.append((arch, layouts.detect(state_dict)))
        except ValueError as err:
            reasons.append(f'  {arch}: {str(err).splitlines()[0]}')
    if len(found) > 1:
        raise ValueError(f'Several architectures recognise this checkpoint ({found}); choose one with --arch.')
    if not found:
        raise ValueError('No ADN architecture recognises this checkpoint:\n' + '\n'.join(reasons))
    return found[0]


def convert(state_dict, to, arch=None):
    """(arch, source layout, converted state dict)."""
    if arch is None:
        arch, source = detect_arch(state_dict)
    else:
        source = ARCHS[arch].detect(state_dict)
    return arch, source, ARCHS[arch].convert(state_dict, to)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--to', required=True, choices=['mmpretrain', 'mmdet', 'released'])
    parser.add_argument('--arch', choices=sorted(ARCHS), help='default: detected from the keys')
    args = parser.parse_args(argv)

    state_dict = unwrap_state_dict(safe_torch_load(args.src))
    try:
        arch, source, converted = convert(state_dict, args.to, args.arch)
    except ValueError as err:
        raise SystemExit(f'{args.src}: {err}') from None
    out = converted if args.to == 'released' else dict(
        meta=dict(converted_from=source, arch=arch, source_file=osp.basename(args.src)), state_dict=converted)
    torch.save(out, args.dst)
    print(f'{args.src} ({arch}, {source} layout, {len(state_dict)} tensors) -> {args.dst} '
          f'({args.to} layout, {len(converted)} tensors)')


if __name__ == '__main__':
    main()
