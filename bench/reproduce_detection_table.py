"""The ADN paper's detection table (Mask R-CNN, super-net / base-net, ADN against individual networks), reproduced
at small scale on the embedded generated data with the demo's recipe (scripts/demo.sh).

    python bench/reproduce_detection_table.py [--seeds 0 1] [--work-dir work_dirs/repro] [--out FILE.md]
        [--pretrain-cfg-options model.backbone.zero_init_residual=True]   (e.g. the earlier demo pretraining)
        [--detectors adn --det-cfg-options "custom_hooks.0.features.neck=[spatial,pooled]" --tag pooled]
                                         (a variant of some detectors, beside the others: det_adn-pooled/)
        [--work-dir work_dirs/repro_r34 --backbone-options depth=34]
                                         (another backbone for every run: pretraining, detection, measurement)

Per seed (the runs' ``randomness.seed``; the data is the demo's, fixed):
  pretraining   adn:   ResNet-18-ADN classifier with Algorithm 1 (configs/demo/resnet18_adn_shapes_cls.py)
                plain: the same network trained as an ordinary classifier (no hook): the individual full-depth net
                base:  the base-net's depth trained on its own (skip=TTTT throughout, no hook)
  detection     adn:          Mask R-CNN from the adn classifier with ADNDistillHook (the demo)
                individual:   from the plain classifier, no hook (an ordinary detector at full depth)
                individual_base: from the base classifier at skip=TTTT, no hook (an ordinary detector at that depth)
                adn_no_fpn_kl: from the adn classifier, no hook (ablation: what the FPN term itself adds)
Each detector is measured with tools/analysis_tools/benchmark_subnets.py (COCO bbox / segm AP through pycocotools,
GFLOPs). Finished runs are reused. Prints (and with --out writes) the table: mean and spread (min-max) over seeds.
Not part of CI: about 15 minutes per seed on 2 CPU cores.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS_CONFIG = 'configs/demo/resnet18_adn_shapes_cls.py'
DET_CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'
ADN_ONLY_ARGS = ('skip', 'mandatory_blocks', 'train_twin_stats')

# name: how the config differs from the demo's (plain: an ordinary ResNet-18, no twins, no hook; base: ResNet-18-ADN
# trained only at skip TTTT, no hook)
PRETRAININGS = {'adn': {}, 'plain': dict(plain=True), 'base': dict(skip='TTTT', hook=False)}
DETECTORS = {  # name: (pretraining, config changes, skips to evaluate)
    'individual': ('plain', dict(plain=True), ('FFFF', 'TTTT')),
    'individual_base': ('base', dict(skip='TTTT', hook=False), ('TTTT', )),
    'adn_no_fpn_kl': ('adn', dict(hook=False), ('FFFF', 'TTTT')),
    'adn': ('adn', {}, ('FFFF', 'TTTT')),
}
ROWS = [  # (label, detector, skip)
    ('ADN super-net (FFFF)', 'adn', 'FFFF'),
    ('ADN base-net (TTTT)', 'adn', 'TTTT'),
    ('individual, full depth', 'individual', 'FFFF'),
    ('individual, base depth (trained at TTTT)', 'individual_base', 'TTTT'),
    ('individual full-depth net run with skip TTTT', 'individual', 'TTTT'),
    ('ablation: ADN pretraining, detection without the hook, FFFF', 'adn_no_fpn_kl', 'FFFF'),
    ('ablation: ADN pretraining, detection without the hook, TTTT', 'adn_no_fpn_kl', 'TTTT'),
]


def run(*args):
    print('$ ' + ' '.join(args), flush=True)
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '2'), 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'failed ({proc.returncode}): {" ".join(args)}\n{(proc.stdout + proc.stderr)[-4000:]}')
    return proc.stdout


def derived_config(config, work_dir, plain=False, skip=None, hook=True, **updates):
    """Write WORK_DIR/config.py: CONFIG as a plain network (mmdet / mmpretrain ``ResNet``, no hook), at a fixed
    ``skip`` and / or without ADNDistillHook."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    backbone = cfg.model.backbone
    if plain:
        backbone.type = 'ResNet'
        for key in ADN_ONLY_ARGS:
            backbone.pop(key, None)
    if skip is not None:
        backbone.skip = skip
    if plain or not hook:
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'ADNDistillHook']
    cfg.merge_from_dict(updates)
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path


def train(config, work_dir, seed, **changes):
    """Train once; the final checkpoint's path is kept in WORK_DIR/done and reused afterwards."""
    done = osp.join(work_dir, 'done')
    if not osp.exists(done):
        run('tools/train.py', derived_config(config, work_dir, **changes), '--work-dir', work_dir,
            '--cfg-options', f'randomness.seed={seed}')
        with open(osp.join(work_dir, 'last_checkpoint')) as f, open(done, 'w') as out:
            out.write(f.read().strip())
    with open(done) as f:
        return f.read().strip()


def benchmark(checkpoint, out_dir, skips, arch=None):
    """Every detector is measured as the demo's ResNet-18-ADN detector (with the ``arch`` config changes): a plain
    ResNet checkpoint loads into it with its norms as the twins, which is what a user gets who skips blocks of an
    ordinary network."""
    path = osp.join(out_dir, 'subnets.json')
    if not osp.exists(path):
        options = [f'{k}={v}' for k, v in (arch or {}).items()]
        run('tools/analysis_tools/benchmark_subnets.py', DET_CONFIG, checkpoint, '--out-dir', out_dir, '--skips',
            *skips, '--runs', '3', '--warmup', '1', *(['--cfg-options', *options] if options else []))
    with open(path) as f:
        return {row['skip']: row for row in json.load(f)['subnets']}


def run_seed(seed, work_dir, pretrain_options=None, detectors=tuple(DETECTORS), det_options=None, tag='',
             backbone_options=None):
    arch = {f'model.backbone.{k}': v for k, v in (backbone_options or {}).items()}
    pretrain_options = {**arch, **(pretrain_options or {})}
    backbones = {}
    for name, changes in PRETRAININGS.items():
        if not any(DETECTORS[d][0] == name for d in detectors):
            continue
        work = osp.join(work_dir, f'seed{seed}', f'pretrain_{name}')
        ckpt = train(CLS_CONFIG, work, seed, **changes, **pretrain_options)
        init = osp.join(work, 'backbone_for_detection.pth')
        if not osp.exists(init):  # checked against the detector that will load it
            det_config = derived_config(DET_CONFIG, osp.join(work, 'handoff'), **changes, **arch)
            run('tools/model_converters/cls_to_det_backbone.py', ckpt, det_config, init)
        backbones[name] = init
    results = {}
    for name in detectors:
        pretraining, changes, skips = DETECTORS[name]
        work = osp.join(work_dir, f'seed{seed}', f'det_{name}' + (f'-{tag}' if tag else ''))
        init_cfg = {'model.backbone.init_cfg.checkpoint': backbones[pretraining]}
        ckpt = train(DET_CONFIG, work, seed, **changes, **init_cfg, **arch, **(det_options or {}))
        results[name] = benchmark(ckpt, osp.join(work, 'subnets'), skips, arch)
    return results


def fmt(values):
    mean = statistics.mean(values)
    return f'{mean:.3f}' + (f' ({min(values):.3f}-{max(values):.3f})' if len(values) > 1 else '')


def table(per_seed, seeds):
    lines = [f'Seeds {", ".join(map(str, seeds))}: mean (min-max). Generated val split (data/synthetic_coco, '
             '100 images), COCO AP from pycocotools.', '',
             '| row | bbox mAP | segm mAP | GFLOPs (whole detector, 160x160) |', '|---|---|---|---|']
    for label, detector, skip in ROWS:
        if detector not in per_seed[0]:
            continue
        rows = [r[detector][skip] for r in per_seed]
        lines.append(f'| {label} | {fmt([r["bbox_mAP"] for r in rows])} | {fmt([r["segm_mAP"] for r in rows])} | '
                     f'{statistics.mean(r["gflops"] for r in rows):.3f} |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--work-dir', default='work_dirs/repro')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    parser.add_argument('--pretrain-cfg-options', nargs='+', action=DictAction, default={},
                        help='changes to every pretraining config, e.g. model.backbone.zero_init_residual=True')
    parser.add_argument('--detectors', nargs='+', choices=list(DETECTORS), default=list(DETECTORS),
                        help='train and measure only these detectors (and the pretrainings they start from)')
    parser.add_argument('--det-cfg-options', nargs='+', action=DictAction, default={},
                        help='changes to those detectors\' configs, e.g. custom_hooks.0.alpha=0.3 (with --tag)')
    parser.add_argument('--tag', default='', help='suffix of the changed detectors\' work dirs (det_NAME-TAG)')
    parser.add_argument('--backbone-options', nargs='+', action=DictAction, default={},
                        help='changes to model.backbone of every run, e.g. depth=34 (with its own --work-dir)')
    args = parser.parse_args()
    if args.backbone_options and args.work_dir == parser.get_default('work_dir'):
        parser.error('--backbone-options changes every run: give it its own --work-dir, so that the default '
                     'runs are not reused for it (or overwritten)')
    if args.det_cfg_options and not args.tag:
        parser.error('--det-cfg-options changes the detectors: name the variant with --tag, so that the default '
                     'runs in the same work dir are not reused for it (or overwritten)')
    for tool, cmd in (('data/synthetic_coco/annotations/instances_val2017.json', 'tools/misc/make_synthetic_coco.py'),
                      ('data/synthetic_crops/val', 'tools/misc/make_synthetic_crops.py')):
        if not osp.exists(osp.join(ROOT, tool)):
            run(cmd)
    per_seed = [run_seed(seed, args.work_dir, args.pretrain_cfg_options, args.detectors, args.det_cfg_options,
                         args.tag, args.backbone_options) for seed in args.seeds]
    text = table(per_seed, args.seeds)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
