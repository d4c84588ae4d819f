"""Convert ResNet / ResNet-ADN checkpoints between the released, mmpretrain and mmdet layouts.

    python tools/model_converters/resnet_adn_converter.py SRC DST --to mmpretrain|mmdet|released

SRC may be a released ADN model, a torchvision ResNet, an mmpretrain classifier or an mmdet detector checkpoint;
its layout is detected. The output is an mmengine-style checkpoint (``{'meta': ..., 'state_dict': ...}``);
with ``--to released`` it is a bare state dict, as released.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.models.backbones.resnet_adn_layouts import convert, detect_layout, unwrap_state_dict  # noqa: E402
from mmadn.utils import safe_torch_load  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--to', required=True, choices=['mmpretrain', 'mmdet', 'released'])
    args = parser.parse_args(argv)

    state_dict = unwrap_state_dict(safe_torch_load(args.src))
    source = detect_layout(state_dict)
    converted = convert(state_dict, args.to)
    out = converted if args.to == 'released' else dict(
        meta=dict(converted_from=source, source_file=osp.basename(args.src)), state_dict=converted)
    torch.save(out, args.dst)
    print(f'{args.src} ({source} layout, {len(state_dict)} tensors) -> {args.dst} '
          f'({args.to} layout, {len(converted)} tensors)')


if __name__ == '__main__':
    main()
