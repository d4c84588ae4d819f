"""Hand an ADN classifier over to detection: its backbone (twin norms included) as a detector's backbone init.

    python tools/model_converters/cls_to_det_backbone.py CLS_CHECKPOINT DET_CONFIG OUT [--cfg-options ...]

Reads an mmpretrain ImageClassifier checkpoint (e.g. work_dirs/resnet50_adn_4xb64_in1k/epoch_150.pth), keeps
its ``backbone.*`` tensors, checks that they load strictly into the backbone DET_CONFIG builds (so a depth or
architecture mismatch is caught now, not after a silent partial load), and writes OUT: an mmengine checkpoint
of just those tensors. Use it with the detection config's own init:

    --cfg-options model.backbone.init_cfg.checkpoint=OUT   (the configs use prefix='backbone.')

The classifier checkpoint itself also works as that checkpoint (the prefix selects its backbone); this tool adds
the early check and drops the head, optimizer state and message hub.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmadn.models.utils.backbone_handoff import (check_backbone_fits, classifier_backbone_state,  # noqa: E402
                                                detection_only_keys)
from mmadn.models.utils.checkpoint_layout import unwrap_state_dict  # noqa: E402
from mmadn.utils import load_config, safe_torch_load  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='mmpretrain classifier checkpoint with an ADN backbone')
    parser.add_argument('config', help='detection config whose backbone the weights initialise')
    parser.add_argument('out', help='where to write the backbone checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override the detection config')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('default_scope') != 'mmdet':
        raise SystemExit(f'{args.config} is not a detection config (default_scope {cfg.get("default_scope")!r}).')
    init_default_scope('mmdet')
    import mmadn  # noqa: F401  (registers the ADN backbones)
    from mmdet.registry import MODELS

    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)  # built to check the layout only: nothing is loaded into it
    backbone = MODELS.build(backbone_cfg)
    fresh = detection_only_keys(MODELS.build, backbone_cfg)

    checkpoint = safe_torch_load(args.checkpoint)
    state = classifier_backbone_state(unwrap_state_dict(checkpoint))
    try:
        check_backbone_fits(backbone, state, detection_only=fresh)
    except ValueError as err:
        raise SystemExit(f'{args.checkpoint} -> {args.config}: {err}') from None

    meta = dict(handoff_from=osp.basename(args.checkpoint), handoff_config=osp.basename(args.config))
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('meta'), dict):
        meta.update({k: checkpoint['meta'][k] for k in ('epoch', 'iter', 'mmengine_version') if k in checkpoint['meta']})
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state), args.out)
    kept = f'; {len(fresh)} detection-only output-norm tensors keep their init' if fresh else ''
    print(f'{args.checkpoint}: {len(state)} backbone tensors -> {args.out} (fits {backbone_cfg.type} of '
          f'{osp.basename(args.config)}{kept}).\n{next_step(cfg.model.backbone.get("init_cfg"), args.out)}')


def next_step(init_cfg, out: str) -> str:
    """How to train from OUT. ``--cfg-options model.backbone.init_cfg.checkpoint=`` only merges into a config
    whose backbone already has a ``Pretrained`` init_cfg (mmengine refuses to merge keys into None)."""
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        return f'Train the detector with: --cfg-options model.backbone.init_cfg.checkpoint={out}'
    return ('The detection config has no Pretrained backbone init; add to it:\n'
            f"  model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='{out}', prefix='backbone.')))")


if __name__ == '__main__':
    main()
