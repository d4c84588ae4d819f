"""Convert ADN checkpoints between the authors' released layout and mmpretrain / mmdet.

    python tools/model_converters/adn_converter.py SRC DST --to mmpretrain|mmdet|released [--arch ARCH]

ARCH is resnet, mobilenet_v2, vit or swin; by default it is detected from SRC's keys. SRC may be a released ADN
model (or the torchvision model it is built on), an mmpretrain classifier or, for ``--to released`` / ``mmdet``,
a detector. Every conversion is a pure function next to its model (``mmadn/models/backbones/*_layouts.py``) and
round-trips bit-exactly. The output is an mmengine-style checkpoint (``{'meta': ..., 'state_dict': ...}``);
with ``--to released`` it is a bare state dict, as released.
"""
import argparse
import importlib
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.models.backbones.resnet_adn_layouts import unwrap_state_dict  # noqa: E402
from mmadn.models.utils import classifier_backbone_state  # noqa: E402
from mmadn.utils import safe_torch_load  # noqa: E402

# Tried in this order: Swin's probe (a relative position table) is specific, while ViT's (the patch embedding)
# is one that an mmpretrain Swin checkpoint also has.
ARCHS = {
    'resnet': 'mmadn.models.backbones.resnet_adn_layouts',
    'mobilenet_v2': 'mmadn.models.backbones.mobilenet_v2_adn_layouts',
    'swin': 'mmadn.models.backbones.swin_adn_layouts',
    'vit': 'mmadn.models.backbones.vit_adn_layouts',
}


def layouts_of(arch):
    return importlib.import_module(ARCHS[arch])


def detect_arch(state_dict):
    """The architecture whose layout adapter recognises ``state_dict``, or a ValueError listing what each said."""
    reasons = []
    for arch in ARCHS:
        try:
            return arch, layouts_of(arch).detect_layout(state_dict)
        except ValueError as err:
            reasons.append(f'  {arch}: {str(err).splitlines()[0]}')
    raise ValueError('No ADN architecture recognises this checkpoint:\n' + '\n'.join(reasons))


def convert(state_dict, to, arch=None):
    """(arch, source layout, converted state dict)."""
    if arch is None:
        arch, source = detect_arch(state_dict)
    else:
        source = layouts_of(arch).detect_layout(state_dict)
    layouts = layouts_of(arch)
    if to == 'mmdet' and 'mmdet' not in layouts.LAYOUTS:
        # a detector's backbone is the classifier's backbone: convert, then keep backbone.*
        classifier = state_dict if source == 'mmpretrain' else layouts.convert(state_dict, 'mmpretrain')
        return arch, source, classifier_backbone_state(classifier)
    return arch, source, layouts.convert(state_dict, to)


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
