"""Prepare a trained checkpoint for release (mmdet's and mmpretrain's tools/model_converters/publish_model.py).

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE [--keep-keys meta state_dict]

Keeps only the weights and the meta data (the optimizer state, the message hub and the scheduler states are
dropped: a release is for inference and fine-tuning, not for resuming), saves them and renames the file to
``<OUT_FILE stem>_<YYYYMMDD>-<first 8 hex digits of its sha256>.pth``, the name pattern of OpenMMLab's model zoo,
so that a download can be checked against its name. The input is read with mmadn's weights-only loader.
"""
import argparse
import datetime
import hashlib
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmadn.utils import safe_torch_load  # noqa: E402

DEFAULT_KEEP = ('meta', 'state_dict')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Strip a checkpoint for release and put its hash in its name')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename (the date and hash are added to it)')
    parser.add_argument('--keep-keys', nargs='+', default=list(DEFAULT_KEEP),
                        help=f'top-level keys of the checkpoint to keep (default: {" ".join(DEFAULT_KEEP)})')
    return parser.parse_args(argv)


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def process_checkpoint(in_file: str, out_file: str, keep_keys=DEFAULT_KEEP) -> str:
    """Write the stripped checkpoint; returns the final file name (with date and hash)."""
    checkpoint = safe_torch_load(in_file, map_location='cpu')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise ValueError(f'{in_file} is not an mmengine checkpoint (a dict with a state_dict); it has '
                         f'{sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__}')
    missing = [k for k in keep_keys if k not in checkpoint]
    if missing:
        raise ValueError(f'--keep-keys {" ".join(missing)}: not in {in_file} (it has {", ".join(sorted(checkpoint))})')
    checkpoint = {k: checkpoint[k] for k in keep_keys}
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    tmp = stem + '.publishing.pth'
    torch.save(checkpoint, tmp)
    final = f'{stem}_{datetime.datetime.now().strftime("%Y%m%d")}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final


def main(argv=None):
    args = parse_args(argv)
    try:
        final = process_checkpoint(args.in_file, args.out_file, args.keep_keys)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'publish_model.py: {err}') from None
    before, after = osp.getsize(args.in_file), osp.getsize(final)
    print(f'{final} ({after / 2**20:.2f} MiB, from {before / 2**20:.2f} MiB)')


if __name__ == '__main__':
    main()
