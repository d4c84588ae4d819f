"""FLOPs and parameters of every sub-network of a model (mmdet's and mmpretrain's tools/analysis_tools/get_flops.py).

    python tools/analysis_tools/get_flops.py CONFIG [--skip FFFF ttff base ...] [--shape H [W]]
        [--checkpoint CKPT] [--out FILE.json] [--cfg-options k=v ...]

Builds the model of the config once and, per sub-network (all of them by default, ``--skip`` chooses), counts
the FLOPs of the whole model and of its backbone with mmengine's analyzer (``mmengine.analysis.FlopAnalyzer``
through ``mmadn.analysis.count_flops``: multiply-adds, fused attention counted as its two products) and the
parameters on the active path (a skipped block's do not count; ``mmadn.analysis.active_parameters``), beside the
parameters of the whole model. The input is the first batch of the test set after the config's test pipeline
when the data is there, or an input of ``--shape`` (classifiers: 224x224 when not given; detectors need the data
or ``--shape``). FLOPs do not depend on the weights; ``--checkpoint`` is only for a model whose structure it
decides. A model without an adaptive-depth backbone gets one row, for the model as it is.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from mmengine.runner import Runner, load_checkpoint  # noqa: E402

import mmadn  # noqa: E402,F401  registers the modules
import mmadn.utils.config_scope  # noqa: E402,F401  mmadn:: base configs
from mmadn.analysis import active_parameters, count_flops  # noqa: E402
from mmadn.apis import add_model_arguments, parse_skips  # noqa: E402
from mmadn.models import adaptive_backbones, subnet  # noqa: E402
from mmadn.utils import check_dataset_paths, load_config, task_of  # noqa: E402

CLASSIFIER_SHAPE = (224, 224)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='FLOPs and parameters of every sub-network')
    add_model_arguments(parser, checkpoint='option',
                        checkpoint_help='load these weights first (FLOPs do not depend on them)')
    parser.add_argument('--skip', nargs='+', help='sub-networks to count, e.g. FFFF ttff base (default: all)')
    parser.add_argument('--shape', type=int, nargs='+', help='input height [width] (default: the first test batch)')
    parser.add_argument('--out', help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H or H W, got {len(args.shape)} numbers')
    return parser, args


def synthetic_batch(model, task: str, shape):
    """An input of ``shape`` (H, W) and, for a detector, the data samples it needs (image meta only)."""
    h, w = shape
    inputs = torch.zeros(1, 3, h, w)
    if task != 'detection':
        return inputs, None
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0))
    return inputs, [DetDataSample(metainfo=meta)]


def first_test_batch(cfg, model):
    loader = Runner.build_dataloader(cfg.test_dataloader)
    batch = next(iter(loader))
    batch = {k: v[:1] for k, v in batch.items()}
    data = model.data_preprocessor(batch, False)
    return data['inputs'], data['data_samples']


def count(model, inputs, samples) -> dict:
    """FLOPs of the whole model and of its backbone, and the parameters the call runs, for the active depth."""

    def forward(x):
        return model(x, samples, mode='tensor')

    return dict(gflops=count_flops(model, forward, inputs) / 1e9,
                backbone_gflops=count_flops(model, model.backbone, inputs) / 1e9,
                params_m=active_parameters(model, lambda: forward(inputs)) / 1e6)


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        if args.checkpoint:
            load_checkpoint(model, args.checkpoint, map_location='cpu')
        model.eval()
        if args.shape is not None:
            shape = tuple(args.shape) * (3 - len(args.shape))
            inputs, samples, source = *synthetic_batch(model, task, shape), f'input {shape[0]}x{shape[1]}'
        else:
            try:
                check_dataset_paths(cfg, ('test', ))
                inputs, samples = first_test_batch(cfg, model)
                source = f'the first test image, {inputs.shape[-2]}x{inputs.shape[-1]} after the test pipeline'
            except FileNotFoundError as err:
                if task == 'detection':
                    parser.error(f'{err}\nOr count at a given input size: --shape H W')
                inputs, samples = synthetic_batch(model, task, CLASSIFIER_SHAPE)
                source = f'input {CLASSIFIER_SHAPE[0]}x{CLASSIFIER_SHAPE[1]} (no test data: {err})'

        backbones = adaptive_backbones(model)
        if backbones:
            skips = parse_skips(parser, backbones[0], args.skip)
        elif args.skip:
            parser.error(f'--skip: model.backbone is {type(model.backbone).__name__}, not an adaptive-depth backbone')
        else:
            skips = [None]

        rows = []
        with torch.no_grad():
            for skip in skips:
                if skip is None:
                    row = dict(skip='-', **count(model, inputs, samples))
                else:
                    with subnet(model, skip):
                        row = dict(skip=skip, blocks=len(backbones[0].active_blocks()),
                                   **count(model, inputs, samples))
                rows.append(row)
    total = sum(p.numel() for p in model.parameters()) / 1e6
    title = (f'{osp.basename(args.config)}: FLOPs (multiply-adds, mmengine\'s analyzer) at {source}; params_m: '
             f'parameters on the active path, of {total:.4g} M in the model')
    keys = list(rows[0])
    print(title + '\n')
    print('| ' + ' | '.join(keys) + ' |\n|' + '---|' * len(keys))
    for row in rows:
        print('| ' + ' | '.join(f'{row[k]:.4g}' if isinstance(row[k], float) else str(row[k]) for k in keys) + ' |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(title=title, config=args.config, input_shape=list(inputs.shape), total_params_m=total,
                           subnets=rows), f, indent=2)
        print(f'written: {args.out}')


if __name__ == '__main__':
    main()
