"""The ADN paper's detection comparison on any COCO-format data set: one ADN detector against individual networks.

``tools/analysis_tools/compare_recipes.py`` is its command line; ``bench/reproduce_detection_table.py`` is the
demo's preset. Per seed (the runs' ``randomness.seed``), every network trained for the same iterations:

  pretraining  adn:   the classification config with Algorithm 1 (its ADNDistillHook), on crops of the data
                      set's own instances (``mmadn.datasets.instance_crops``)
               plain: the same network as an ordinary classifier (upstream ``ResNet``, no hook)
               base:  the base-net's depth trained on its own (skip at the base-net throughout, no hook)
  detection    adn:             the detection config with ADNDistillHook, from the adn classifier: the ADN
                                super-net and base-net are its two extreme skips
               individual:      from the plain classifier, no hook: the individual full-depth network
               individual_base: from the base classifier at the base-net's skip, no hook: the individual
                                base-depth network
               adn_no_fpn_kl:   from the adn classifier, no hook (ablation: what the detector's hook adds)

Each detector is measured by ``tools/analysis_tools/benchmark_subnets.py`` as the ADN detector of the data's
config (a plain checkpoint loads into it with its norms as the twins, as a user who skips blocks of an ordinary
network gets). Runs live under WORK/seed<N>/{pretrain,det}_<name>/ and a finished one is reused; the settings
every run depends on are kept in WORK/settings.json, and another setting asks for another work dir.
"""
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config, ConfigDict

from mmadn.datasets.instance_crops import coco_class_names, crop_set_cfg_options, make_instance_crop_set
from mmadn.engine import remove_distill_hook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CLS_CONFIG = 'configs/demo/resnet18_adn_shapes_cls.py'
ADN_ONLY_ARGS = ('skip', 'mandatory_blocks', 'train_twin_stats')
PLAIN_BACKBONES = {'ResNetADN': 'ResNet'}  # the ordinary network each ADN backbone extends (same weight names)

# name: how its config differs from the classification config (see the module's docstring)
PRETRAININGS = {'adn': {}, 'plain': dict(plain=True), 'base': dict(skip='base', hook=False)}
DETECTORS = {  # name: (pretraining, config changes, sub-networks measured)
    'individual': ('plain', dict(plain=True), ('super', 'base')),
    'individual_base': ('base', dict(skip='base', hook=False), ('base', )),
    'adn_no_fpn_kl': ('adn', dict(hook=False), ('super', 'base')),
    'adn': ('adn', {}, ('super', 'base')),
}
DEFAULT_DETECTORS = ('adn', 'individual', 'individual_base')  # the four networks of the paper's table
ROWS = [  # (label, detector, sub-network); {super} / {base} become the T/F skips
    ('ADN super-net ({super})', 'adn', 'super'),
    ('ADN base-net ({base})', 'adn', 'base'),
    ('individual, full depth', 'individual', 'super'),
    ('individual, base depth (trained at {base})', 'individual_base', 'base'),
    ('individual full-depth net run with skip {base}', 'individual', 'base'),
    ('ablation: ADN pretraining, detection without the hook, {super}', 'adn_no_fpn_kl', 'super'),
    ('ablation: ADN pretraining, detection without the hook, {base}', 'adn_no_fpn_kl', 'base'),
]
# a detector is evaluated once, by the benchmark, on the same split: not also at the end of its training
NO_VALIDATION = dict(val_dataloader=None, val_cfg=None, val_evaluator=None)
QUALITY_COLUMNS = (('bbox_mAP', 'bbox mAP'), ('segm_mAP', 'segm mAP'))


def resolve(path: Optional[str], base: str = ROOT) -> Optional[str]:
    """``path`` made absolute: as given when it exists from the caller's directory, else under ``base`` (the
    repository root, where OpenMMLab configs' relative paths point)."""
    if not path or osp.isabs(path):
        return path
    return osp.abspath(path) if osp.exists(path) else osp.normpath(osp.join(base, path))


# ---------------------------------------------------------------------------------------------------- configs
def inner_dataset(loader: ConfigDict) -> ConfigDict:
    """The dataset of a dataloader config that holds the annotation file (through wrappers such as
    RepeatDataset, which keep it under ``dataset``)."""
    dataset = loader.dataset
    while 'ann_file' not in dataset and isinstance(dataset.get('dataset'), dict):
        dataset = dataset.dataset
    if 'ann_file' not in dataset:
        raise ValueError(f'cannot find the annotation file of dataset {dataset.get("type")} (a ConcatDataset or a '
                         'dataset without ann_file): give the data set\'s paths to a single COCO dataset config')
    return dataset


def detection_data(cfg: Config,
                   data_root: Optional[str] = None,
                   train_ann: Optional[str] = None,
                   val_ann: Optional[str] = None,
                   train_img: Optional[str] = None,
                   val_img: Optional[str] = None,
                   classes: Optional[Sequence[str]] = None) -> Dict:
    """The absolute paths of a detection config's train / val annotation files and image folders, each taken
    from the arguments when given (the files and folders relative to ``data_root``, as in mmdet configs) and
    from the config otherwise, and the classes: ``classes``, else the train file's categories in order."""
    data = {}
    for split, ann, img in (('train', train_ann, train_img), ('val', val_ann, val_img)):
        dataset = inner_dataset(cfg[f'{split}_dataloader'])
        root = data_root if data_root is not None else dataset.get('data_root', '')
        prefix = dataset.get('data_prefix') or {}
        img = img if img is not None else prefix.get('img', prefix.get('img_path', ''))
        data[f'{split}_ann'] = resolve(osp.join(root, ann if ann is not None else dataset.ann_file))
        data[f'{split}_img'] = resolve(osp.join(root, img))
    for key, path in data.items():
        if not osp.exists(path):
            raise FileNotFoundError(f'the {key.replace("_", " ")} {path} does not exist (from the '
                                    f'{"arguments" if data_root or train_ann or val_ann else "config"})')
    data['classes'] = tuple(classes) if classes else coco_class_names(data['train_ann'])
    return data


def _set_num_classes(node, num_classes: int, path: str = '') -> None:
    """Every ``num_classes`` of a detector's heads (not the RPN's: it classifies object / background)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and 'rpn_head' not in path:
                node[key] = num_classes
            else:
                _set_num_classes(value, num_classes, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for item in node:
            _set_num_classes(item, num_classes, path)


def apply_detection_data(cfg: Config, data: Dict) -> Config:
    """Point ``cfg``'s train / val / test loaders and evaluators at ``data`` (:func:`detection_data`), with its
    classes as the datasets' metainfo and the heads' ``num_classes``. The test split is the val split: that is
    what the benchmark measures."""
    classes = tuple(data['classes'])
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'val')):
        if loader not in cfg:
            continue
        dataset = inner_dataset(cfg[loader])
        metainfo = dict(dataset.get('metainfo') or {}, classes=classes)
        if len(metainfo.get('palette') or ()) != len(classes):
            metainfo.pop('palette', None)
        # assigned, not updated: ConfigDict.update merges into the old metainfo, which would keep its palette
        dataset['data_root'] = ''
        dataset['ann_file'] = data[f'{split}_ann']
        dataset['metainfo'] = metainfo
        dataset['data_prefix'] = dict(dataset.get('data_prefix') or {}, img=data[f'{split}_img'] + os.sep)
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            if isinstance(evaluator, dict) and 'ann_file' in evaluator:
                evaluator.ann_file = data['val_ann']
    _set_num_classes(cfg.model, len(classes))
    return cfg


def _scaled(value, scale: float, limit: int):
    if isinstance(value, (list, tuple)):
        return [_scaled(v, scale, limit) for v in value]
    return min(limit, max(0, int(round(value * scale)))) if isinstance(value, (int, float)) else value


def set_iterations(cfg: Config, iters: int) -> Config:
    """Train ``cfg`` for ``iters`` iterations with its own schedule stretched to them: an iteration-based
    config's scheduler points (begin, end, milestones, T_max) scale by ``iters / max_iters``; an epoch-based
    config becomes iteration-based, its per-epoch points scaled by ``iters / max_epochs`` and its per-iteration
    ones (warm-up) clipped to ``iters``. Validation and the checkpoint come at the end."""
    if iters < 1:
        raise ValueError(f'need at least one iteration, got {iters}')
    loop = cfg.train_cfg
    epoch_based = 'max_epochs' in loop
    old = loop.max_epochs if epoch_based else loop.max_iters
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]:
        per_epoch = epoch_based and scheduler.get('by_epoch', True)
        scale = iters / old if per_epoch or not epoch_based else 1.0
        for key in ('begin', 'end', 'milestones', 'T_max'):
            if key in scheduler:
                scheduler[key] = _scaled(scheduler[key], scale, iters)
        if 'end' in scheduler and scheduler['end'] <= scheduler.get('begin', 0):
            scheduler['end'] = min(iters, scheduler.get('begin', 0) + 1)
        scheduler['by_epoch'] = False
        scheduler.pop('convert_to_iter_based', None)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
    cfg.merge_from_dict({'default_hooks.checkpoint.by_epoch': False, 'default_hooks.checkpoint.interval': iters,
                         'log_processor.by_epoch': False})
    return cfg


def classification_config(cfg: Config, crops_root: str, classes: Sequence[str]) -> Config:
    """``cfg`` (a CustomDataset classification config) trained and validated on a crop set written by
    :func:`mmadn.datasets.instance_crops.make_instance_crop_set`."""
    options = crop_set_cfg_options(crops_root, classes)
    cfg.merge_from_dict({k: v for k, v in options.items() if k.split('.')[0] in cfg})
    return cfg


def derived_config(cfg: Config, path: str, plain: bool = False, skip: Optional[str] = None, hook: bool = True,
                   **updates) -> str:
    """Write ``cfg`` to ``path`` as a plain network (its backbone's upstream type, no ADN arguments, no hook),
    at a fixed ``skip`` and / or without ADNDistillHook, with ``updates`` (``--cfg-options`` keys) merged."""
    cfg = copy.deepcopy(cfg)  # the caller's stays as it was
    backbone = cfg.model.backbone
    if plain:
        if backbone.type not in PLAIN_BACKBONES:
            raise ValueError(f'no ordinary counterpart of backbone {backbone.type} is known for the individual '
                             f'full-depth network (known: {sorted(PLAIN_BACKBONES)})')
        backbone.type = PLAIN_BACKBONES[backbone.type]
        for key in ADN_ONLY_ARGS:
            backbone.pop(key, None)
    if skip is not None:
        backbone.skip = skip
    if plain or not hook:
        remove_distill_hook(cfg)
    cfg.merge_from_dict(updates)
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


# ---------------------------------------------------------------------------------------------------- runs
def run_python(args: Sequence[str], log: Optional[str] = None) -> str:
    """Run a repository tool as a user would (its own process, from the repository root); its output goes to
    ``log`` too. Raises RuntimeError with the output's end when it fails."""
    print('$ ' + ' '.join(map(str, args)), flush=True)
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '2'), 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if log:
        os.makedirs(osp.dirname(log), exist_ok=True)
        with open(log, 'w') as f:
            f.write(output)
    if proc.returncode != 0:
        raise RuntimeError(f'failed ({proc.returncode}): {" ".join(map(str, args))}\n{output[-4000:]}')
    return output


def hand_over_backbone(checkpoint: str, det_cfg: Config, out: str) -> str:
    """Write the backbone of classifier ``checkpoint`` (twins included) as ``det_cfg``'s backbone init, after
    checking that it loads strictly into the backbone ``det_cfg`` builds: what
    tools/model_converters/cls_to_det_backbone.py does, here in this process (no second start-up per network)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from mmadn.models.utils.backbone_handoff import (check_backbone_fits, classifier_backbone_state,
                                                    detection_only_keys)
    from mmadn.models.utils.checkpoint_layout import unwrap_state_dict
    from mmadn.utils import safe_torch_load

    backbone_cfg = copy.deepcopy(det_cfg.model.backbone)
    backbone_cfg.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(backbone_cfg)
        fresh = detection_only_keys(MODELS.build, backbone_cfg)
    state = classifier_backbone_state(unwrap_state_dict(safe_torch_load(checkpoint)))
    try:
        check_backbone_fits(backbone, state, detection_only=fresh)
    except ValueError as err:
        raise ValueError(f'{checkpoint} does not fit the detector\'s backbone: {err}') from None
    torch.save(dict(meta=dict(handoff_from=checkpoint), state_dict=state), out)
    return out


class RecipeComparison:
    """The runs of one comparison (see the module's docstring): configs derived once, each network trained
    and measured when it has not been already.

    Args:
        det_config: an mmdet config with an ADN backbone and ADNDistillHook.
        work_dir: where every run goes.
        cls_config: the classification config of the pretrainings (mmpretrain, CustomDataset loaders).
        data: :func:`detection_data` of the data set.
        crops_root: an existing classification folder to pretrain on as the config reads it; None: crops of
            the data set's own instances, written to WORK/crops (``crop_args``: make_instance_crop_set's).
        pretrain_iters / det_iters: iterations of every pretraining / detector (None: the configs' own).
        pretrain_options / backbone_options: ``--cfg-options`` of every pretraining / of ``model.backbone`` in
            every run. bench_args: extra benchmark_subnets.py arguments.
    """

    def __init__(self, det_config: str, work_dir: str, data: Dict, cls_config: str = DEFAULT_CLS_CONFIG,
                 crops_root: Optional[str] = None, crop_args: Optional[Dict] = None,
                 pretrain_iters: Optional[int] = None, det_iters: Optional[int] = None,
                 pretrain_options: Optional[Dict] = None, backbone_options: Optional[Dict] = None,
                 bench_args: Sequence[str] = ('--runs', '3', '--warmup', '1')):
        self.work_dir = osp.abspath(work_dir)
        self.data = data
        self.crops_root = resolve(crops_root)
        self.crop_args = {**dict(size=32, context=0.2, min_size=8, max_per_class=None), **(crop_args or {})}
        self.bench_args = list(bench_args)
        arch = {f'model.backbone.{k}': v for k, v in (backbone_options or {}).items()}
        self.settings = dict(det_config=resolve(det_config), cls_config=resolve(cls_config),
                             data={k: list(v) if k == 'classes' else v for k, v in data.items()},
                             crops=self.crops_root or self.crop_args, pretrain_iters=pretrain_iters,
                             det_iters=det_iters, pretrain_options=pretrain_options or {}, backbone_options=arch,
                             bench_args=self.bench_args)
        det = apply_detection_data(Config.fromfile(self.settings['det_config']), data)
        cls = Config.fromfile(self.settings['cls_config'])
        if det_iters:
            set_iterations(det, det_iters)
        if pretrain_iters:
            set_iterations(cls, pretrain_iters)
        det.merge_from_dict(arch)
        cls.merge_from_dict({**arch, **(pretrain_options or {})})
        self.det_cfg, self.cls_cfg = det, cls

    def check_work_dir(self) -> None:
        """Refuse a work dir whose finished runs were made with other settings (they would be reused)."""
        path = osp.join(self.work_dir, 'settings.json')
        settings = json.loads(json.dumps(self.settings))  # as the file holds them (tuples as lists)
        if osp.exists(path):
            with open(path) as f:
                old = json.load(f)
            changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            if changed:
                raise ValueError(f'{self.work_dir} holds runs made with other settings ({", ".join(changed)} '
                                 f'differ; {path}): give another --work-dir, so that they are not reused')
        os.makedirs(self.work_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(settings, f, indent=2)

    def prepare_crops(self) -> None:
        """Crops of the train instances (train) and the val instances (val), once; the classification config
        pointed at them."""
        if self.crops_root:  # an existing folder set: pointed at, its classes counted
            folders = [d for d in os.listdir(osp.join(self.crops_root, 'train'))
                       if osp.isdir(osp.join(self.crops_root, 'train', d))]
            self.cls_cfg.merge_from_dict({k: v for k, v in {
                'train_dataloader.dataset.data_root': self.crops_root,
                'val_dataloader.dataset.data_root': self.crops_root,
                'test_dataloader.dataset.data_root': self.crops_root,
                'model.head.num_classes': len(folders), 'data_preprocessor.num_classes': len(folders)}.items()
                if k.split('.')[0] in self.cls_cfg})
            return
        root = osp.join(self.work_dir, 'crops')
        if not osp.exists(osp.join(root, 'meta.json')):  # written last: a complete set
            print(f'cutting the instances of {self.data["train_ann"]} and {self.data["val_ann"]} into {root}',
                  flush=True)
            make_instance_crop_set(root, self.data['train_ann'], self.data['train_img'],
                                   val_ann_file=self.data['val_ann'], val_img_dir=self.data['val_img'],
                                   classes=self.data['classes'], **self.crop_args)
        with open(osp.join(root, 'meta.json')) as f:
            counts = json.load(f)['counts']
        classes = self.data['classes']
        empty = [c for c, n in zip(classes, counts['train']) if not n]
        if empty:
            print(f'warning: no train crop of {empty} (no instance large enough): the classifiers never see them')
        batch = self.cls_cfg.train_dataloader.get('batch_size', 1)
        drop_last = self.cls_cfg.train_dataloader.get('drop_last', False)
        if not sum(counts['val']) or sum(counts['train']) < (batch if drop_last else 1):
            raise ValueError(f'{root} holds {sum(counts["train"])} train and {sum(counts["val"])} val crops: the '
                             f'pretraining needs a val crop and a full train batch ({batch}); lower '
                             '--crop-min-size or train_dataloader.batch_size (--pretrain-cfg-options)')
        classification_config(self.cls_cfg, root, classes)

    def train(self, cfg: Config, work: str, seed: int, **changes) -> str:
        """Train once; the final checkpoint's path is kept in WORK/done and reused afterwards."""
        done = osp.join(work, 'done')
        if not osp.exists(done):
            config = derived_config(cfg, osp.join(work, 'config.py'), **changes)
            run_python(['tools/train.py', config, '--work-dir', work, '--cfg-options', f'randomness.seed={seed}'],
                       log=osp.join(work, 'train_console.log'))
            with open(osp.join(work, 'last_checkpoint')) as f, open(done, 'w') as out:
                out.write(f.read().strip())
        else:
            print(f'reusing {work}', flush=True)
        with open(done) as f:
            return f.read().strip()

    def benchmark(self, checkpoint: str, out_dir: str, subnets: Sequence[str]) -> Dict[str, dict]:
        """``{'super': row, 'base': row}`` of benchmark_subnets.py's subnets.json, measured once."""
        path = osp.join(out_dir, 'subnets.json')
        if not osp.exists(path):
            config = derived_config(self.det_cfg, osp.join(out_dir, 'config.py'))
            run_python(['tools/analysis_tools/benchmark_subnets.py', config, checkpoint, '--out-dir', out_dir,
                        '--skips', *subnets, *self.bench_args], log=osp.join(out_dir, 'console.log'))
        with open(path) as f:
            rows = json.load(f)['subnets']
        named = {}
        for row in rows:
            flags = set(row['skip'])
            if flags <= {'F'}:
                named['super'] = row
            elif flags <= {'T'}:
                named['base'] = row
        return named

    def run_seed(self, seed: int, detectors: Sequence[str] = DEFAULT_DETECTORS, det_options: Optional[Dict] = None,
                 tag: str = '') -> Dict[str, Dict[str, dict]]:
        """Train (or reuse) and measure ``detectors`` and the pretrainings they start from, for one seed."""
        seed_dir = osp.join(self.work_dir, f'seed{seed}')
        backbones = {}
        for name, changes in PRETRAININGS.items():
            if not any(DETECTORS[d][0] == name for d in detectors):
                continue
            work = osp.join(seed_dir, f'pretrain_{name}')
            checkpoint = self.train(self.cls_cfg, work, seed, **changes)
            init = osp.join(work, 'backbone_for_detection.pth')
            if not osp.exists(init):  # checked against the detector that will load it
                handoff = derived_config(self.det_cfg, osp.join(work, 'handoff', 'config.py'), **changes)
                hand_over_backbone(checkpoint, Config.fromfile(handoff), init)
            backbones[name] = init
        results = {}
        for name in detectors:
            pretraining, changes, subnets = DETECTORS[name]
            work = osp.join(seed_dir, f'det_{name}' + (f'-{tag}' if tag else ''))
            init = {'model.backbone.init_cfg.checkpoint': backbones[pretraining]}
            checkpoint = self.train(self.det_cfg, work, seed, **changes, **init, **NO_VALIDATION,
                                    **(det_options or {}))
            results[name] = self.benchmark(checkpoint, osp.join(work, 'subnets'), subnets)
        return results


# ---------------------------------------------------------------------------------------------------- table
def _fmt(values: List[float]) -> str:
    mean = statistics.mean(values)
    return f'{mean:.3f}' + (f' ({min(values):.3f}-{max(values):.3f})' if len(values) > 1 else '')


def summarize(per_seed: Sequence[Dict], seeds: Sequence[int]) -> List[Dict]:
    """One entry per row of the table whose detector ran: its label, per-seed figures, mean, min and max."""
    rows = []
    for label, detector, subnet in ROWS:
        if detector not in per_seed[0] or subnet not in per_seed[0][detector]:
            continue
        measured = [result[detector][subnet] for result in per_seed]
        keys = [k for k, _ in QUALITY_COLUMNS if all(k in m for m in measured)] + ['gflops']
        skips = {s: next(iter(r[s]['skip'] for r in per_seed[0].values() if s in r)) for s in ('super', 'base')
                 if any(s in r for r in per_seed[0].values())}
        figures = {str(seed): {k: m[k] for k in keys} for seed, m in zip(seeds, measured)}
        stats = {stat: {k: fn([m[k] for m in measured]) for k in keys}
                 for stat, fn in (('mean', statistics.mean), ('min', min), ('max', max))}
        rows.append(dict(label=label.format(**skips), detector=detector, subnet=subnet,
                         skip=measured[0]['skip'], per_seed=figures, **stats))
    return rows


def markdown_table(rows: Sequence[Dict], seeds: Sequence[int], caption: str = '') -> str:
    """The table: mean and spread (min-max) over seeds of each quality column and the whole detector's GFLOPs."""
    columns = [(k, name) for k, name in QUALITY_COLUMNS if any(k in r['mean'] for r in rows)]
    lines = [f'Seeds {", ".join(map(str, seeds))}: mean (min-max).' + (f' {caption}' if caption else ''), '',
             '| row | ' + ' | '.join(name for _, name in columns) + ' | GFLOPs (whole detector) |',
             '|---|' + '---|' * (len(columns) + 1)]
    for row in rows:
        cells = [_fmt([f[k] for f in row['per_seed'].values()]) if k in row['mean'] else 'n/a' for k, _ in columns]
        lines.append(f'| {row["label"]} | ' + ' | '.join(cells) + f' | {row["mean"]["gflops"]:.3f} |')
    return '\n'.join(lines)


def write_outputs(rows: Sequence[Dict], seeds: Sequence[int], caption: str, json_path: str,
                  md_path: Optional[str] = None, settings: Optional[Dict] = None) -> str:
    """Write the per-seed figures as JSON (and the table as Markdown); returns the table."""
    text = markdown_table(rows, seeds, caption)
    os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
    with open(json_path, 'w') as f:
        json.dump(dict(seeds=list(seeds), caption=caption, rows=list(rows), settings=settings or {}), f, indent=2)
    if md_path:
        os.makedirs(osp.dirname(osp.abspath(md_path)), exist_ok=True)
        with open(md_path, 'w') as f:
            f.write(text + '\n')
    return text


def val_caption(data: Dict) -> str:
    """What the AP is measured on: the val annotation file and its number of images."""
    with open(data['val_ann']) as f:
        num_images = len(json.load(f)['images'])
    path = osp.relpath(data['val_ann'], ROOT) if data['val_ann'].startswith(ROOT + os.sep) else data['val_ann']
    return f'Val split {path} ({num_images} images), COCO AP from pycocotools.'
