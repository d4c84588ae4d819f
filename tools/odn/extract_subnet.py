"""Extract the optimal-depth network of a trained ODN model as a standalone, smaller mmpretrain classifier.

``python tools/odn/extract_subnet.py CONFIG CKPT [--depth D] [--out-dir DIR] [--shape H W]``

Writes ``DIR/<config name>_depth<D>.py`` (an ``ImageClassifier``: stem, blocks 1..D, head D) and ``.pth``,
checks that its predictions equal the full model's at depth D, and reports parameters, FLOPs and weight memory
against the full network (all blocks, one head). ``--depth`` defaults to the depth stored in the checkpoint by
``ODNTrainLoop`` (``best_depth<D>.pth``). Evaluate the result with ``tools/test.py DIR/<name>.py DIR/<name>.pth``.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules and the safe checkpoint loader
from mmadn.apis import add_model_arguments  # noqa: E402
from mmadn.odn import extract, extracted_model_cfg, model_stats  # noqa: E402
from mmadn.utils import load_config  # noqa: E402

# what only training needs; the extracted config is for evaluation and deployment
TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler', 'auto_scale_lr', 'custom_hooks',
                 'find_unused_parameters', 'resume', 'load_from', 'work_dir')


def parse_args():
    parser = argparse.ArgumentParser(description='Extract the depth-D network of an ODN model')
    add_model_arguments(parser, config_help='the training config of the ODN model',
                        checkpoint_help='a checkpoint of it (e.g. best_depth2.pth written by ODNTrainLoop)')
    parser.add_argument('--depth', type=int, help='depth level to keep (default: the one stored in CKPT)')
    parser.add_argument('--out-dir', help='where to write the config and checkpoint (default: next to CKPT)')
    parser.add_argument('--shape', type=int, nargs=2, default=(32, 32), metavar=('H', 'W'),
                        help='input size for the FLOPs and the prediction check (default: 32 32)')
    return parser.parse_args()


def build(model_cfg: dict, data_preprocessor) -> torch.nn.Module:
    model_cfg = dict(model_cfg)
    if data_preprocessor is not None:
        model_cfg.setdefault('data_preprocessor', data_preprocessor)  # as mmengine's Runner does
    return MODELS.build(model_cfg).eval()


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'Checkpoint {args.checkpoint} does not exist.')
    cfg = load_config(args.config, args.cfg_options)
    if cfg.model.get('type') != 'ODNClassifier':
        raise SystemExit(f'{args.config} is not an ODN config (model.type is {cfg.model.get("type")!r}, expected '
                         "'ODNClassifier')")
    checkpoint = _load_checkpoint(args.checkpoint, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint)
    odn_meta = checkpoint.get('meta', {}).get('odn', {})
    depth = args.depth or odn_meta.get('level')
    if depth is None:
        raise SystemExit(f'{args.checkpoint} does not say which depth was chosen (it is not a best_depth<D>.pth '
                         'of ODNTrainLoop): pass --depth D')
    in_channels = cfg.model.backbone.get('in_channels', 3)
    shape = (in_channels, *args.shape)
    data_preprocessor = cfg.get('data_preprocessor')

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        full = build(cfg.model, data_preprocessor)
        num_levels = full.num_levels
        if not 1 <= depth <= num_levels:
            raise SystemExit(f'--depth must be in [1, {num_levels}] for this model, got {depth}')
        full.load_state_dict(state_dict, strict=True)
        full.level = depth
        model_cfg, small_state = extract(cfg.model, state_dict, depth)

        name = f'{osp.splitext(osp.basename(args.config))[0]}_depth{depth}'
        out_dir = args.out_dir or osp.dirname(osp.abspath(args.checkpoint))
        os.makedirs(out_dir, exist_ok=True)
        cfg_path, ckpt_path = osp.join(out_dir, f'{name}.py'), osp.join(out_dir, f'{name}.pth')
        small_cfg = {k: v for k, v in cfg.to_dict().items() if k not in TRAINING_KEYS}
        small_cfg['model'] = model_cfg
        Config(small_cfg).dump(cfg_path)
        meta = dict(odn=dict(odn_meta, level=depth, num_levels=num_levels, source=osp.abspath(args.checkpoint)))
        torch.save(dict(meta=meta, state_dict=small_state), ckpt_path)

        # the written files, read back as a user would, must predict exactly what the full model does at depth D
        small = build(Config.fromfile(cfg_path).model, data_preprocessor)
        load_checkpoint(small, ckpt_path, map_location='cpu', strict=True, logger='silent')
        inputs = torch.randn(8, *shape)
        with torch.no_grad():
            diff = (small(inputs) - full(inputs)).abs().max().item()
        if diff > 1e-5:
            raise SystemExit(f'the extracted model does not reproduce the full model at depth {depth} '
                             f'(max |logit difference| {diff:.3g})')

        plain_full = build(extracted_model_cfg(cfg.model, num_levels), data_preprocessor)
        stats = dict(full_network=model_stats(plain_full, shape), extracted=model_stats(small, shape))

    f, s = stats['full_network'], stats['extracted']
    reduction = {k: 100.0 * (1 - s[k] / f[k]) for k in f}
    report = dict(depth=depth, num_levels=num_levels, input_shape=list(shape), accuracy=odn_meta.get('accuracy'),
                  metric=odn_meta.get('metric'), max_logit_difference=diff, reduction_percent=reduction,
                  config=cfg_path, checkpoint=ckpt_path, **stats)
    with open(osp.join(out_dir, f'{name}.json'), 'w') as fp:
        json.dump(report, fp, indent=1)

    arch = f'ResNet-{cfg.model.backbone.depth}'
    accuracy = f', {odn_meta["metric"]} {odn_meta["accuracy"]:.2f} at that depth' if 'accuracy' in odn_meta else ''
    print(f'ODN extraction: depth {depth} of {num_levels} ({arch}){accuracy}')
    print(f'{"":16}{"params":>12}{"FLOPs":>12}{"memory":>12}   (input {"x".join(map(str, shape))})')
    for label, st in (('full network', f), (f'depth {depth}', s)):
        print(f'{label:16}{st["params"] / 1e6:>10.3f} M{st["flops"] / 1e6:>10.1f} M'
              f'{st["memory_bytes"] / 2**20:>9.2f} MB')
    print(f'{"reduction":16}{reduction["params"]:>10.2f} %{reduction["flops"]:>10.2f} %'
          f'{reduction["memory_bytes"]:>9.2f} %')
    print(f'predictions equal the full model at depth {depth} (max |logit difference| {diff:.1e} on 8 random '
          'inputs)')
    print(f'wrote {cfg_path}\nwrote {ckpt_path}')


if __name__ == '__main__':
    main()
