"""The ADN paper's three depth analyses of one checkpoint, as ``tools/analysis_tools/analyze_depth.py`` runs them.

1. quality of every sub-network (Fig. 3a): the config's own test loop and evaluator per skip string, or the table
   that ``benchmark_subnets.py`` wrote (``subnets.json``);
2. the twin norms against the shared ones (Fig. 3b), from the checkpoint's running statistics
   (``norm_distance``), and on data, the per-stage divergence of the base-net's stage outputs from the super-net's
   (``stage_divergence``);
3. Grad-CAM of every block of one stage for the super-net and the base-net (Fig. 4, ``gradcam``).

Everything is returned as plain numbers (the JSON report) plus the images and maps the Grad-CAM figure needs.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmadn.models.utils import adaptive_backbones, subnet
from .benchmark import QUALITY_KEYS
from .depth_figures import plot_gradcam_grid, plot_norm_distance, plot_stage_divergence, plot_subnet_quality
from .gradcam import grad_cam, target_score
from .norm_distance import first_layer_check, twin_norm_distances
from .stage_divergence import stage_divergence

__all__ = ['evaluate_subnets', 'read_subnet_table', 'analyze_depth', 'write_depth_report']


def evaluate_subnets(runner, skips: Sequence[str], task: str) -> List[Dict]:
    """One row per sub-network: ``skip``, ``blocks`` and the config's quality metrics (``top1``, ``bbox_mAP``,
    ... named as in ``benchmark_subnets.py``'s table), from the runner's test loop. The checkpoint must be loaded.
    """
    backbone = adaptive_backbones(runner.model)[0]
    rows = []
    for skip in skips:
        with subnet(runner.model, skip):
            metrics = runner.test_loop.run()
            row = dict(skip=skip, blocks=len(backbone.active_blocks()))
        row.update({key.split('/')[-1]: float(metrics[key]) for key in QUALITY_KEYS[task] if key in metrics})
        rows.append(row)
    return rows


def read_subnet_table(path: str) -> Tuple[List[Dict], str]:
    """The rows and quality key of a ``benchmark_subnets.py`` report (``subnets.json``), or of an earlier
    ``depth_analysis.json`` (to redo the other analyses without evaluating every sub-network again)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--table {path} does not exist; it is the subnets.json that '
                                'tools/analysis_tools/benchmark_subnets.py writes to its --out-dir (or the '
                                'depth_analysis.json of an earlier analyze_depth.py run).')
    try:
        with open(path) as f:
            report = json.load(f)
        if isinstance(report.get('subnets'), dict):  # depth_analysis.json
            rows, key = report['subnets']['rows'], report['subnets']['quality_key']
        else:
            rows, key = report['subnets'], report['quality_key']
        if not rows or not all('skip' in r and key in r for r in rows):
            raise KeyError(key)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f'--table {path} is not a benchmark_subnets.py report (a JSON with "quality_key" and '
                         f'"subnets" rows holding "skip" and that key) nor a depth_analysis.json: '
                         f'{type(err).__name__}: {err}') from None
    return rows, key


def _quality_key(rows: List[Dict], task: str) -> str:
    for key in QUALITY_KEYS[task]:
        if all(key.split('/')[-1] in r for r in rows):
            return key.split('/')[-1]
    raise ValueError(f'The test evaluator reported none of {QUALITY_KEYS[task]}: set test_evaluator to the '
                     "task's usual metric (Accuracy, CocoMetric).")


def _test_batches(runner, max_images: Optional[int] = None):
    """Preprocessed test batches (dicts with ``inputs`` and ``data_samples``), up to ``max_images`` images."""
    seen = 0
    for batch in runner.test_dataloader:
        data = runner.model.data_preprocessor(batch, False)
        if max_images is not None:
            left = max_images - seen
            data = dict(inputs=data['inputs'][:left], data_samples=data['data_samples'][:left])
        yield data
        seen += len(data['inputs'])
        if max_images is not None and seen >= max_images:
            return


def _spread_batch(runner, num: int) -> Dict:
    """``num`` test images evenly spread over the test set (a class-sorted folder then shows several classes), as
    one preprocessed batch."""
    loader = runner.test_dataloader
    indices = np.linspace(0, len(loader.dataset) - 1, min(num, len(loader.dataset))).round().astype(int)
    batch = loader.collate_fn([loader.dataset[int(i)] for i in indices])
    return runner.model.data_preprocessor(batch, False)


def _display_images(model, inputs: torch.Tensor) -> np.ndarray:
    """Undo the data preprocessor's normalisation: uint8 (N, H, W, 3) in its channel order (RGB when it converts)."""
    pre = model.data_preprocessor
    x = inputs.detach().float().cpu()
    if getattr(pre, '_enable_normalize', False):
        x = x * pre.std.cpu() + pre.mean.cpu()
    return x.clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def _correlation(a: torch.Tensor, b: torch.Tensor) -> Optional[float]:
    """Mean over images of the Pearson correlation of two stacks of maps (N, H, W), over the images where neither
    map is constant (an all-zero Grad-CAM has no pattern to compare); None when there is no such image."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    norms = a.norm(dim=1) * b.norm(dim=1)
    valid = norms > 1e-12
    if not valid.any():
        return None
    # rounding can carry a correlation of two equal maps just past 1; the clamp keeps it a correlation
    return float(((a * b).sum(1)[valid] / norms[valid]).clamp(-1, 1).mean())


def stage_gradcam(model, task: str, stage: int, batches) -> Dict:
    """Grad-CAM of every block of ``stage`` (0-based) for the super-net and the base-net on the images of
    ``batches``.

    Returns ``images`` (uint8 N, H, W, 3), ``labels`` (one caption per image), ``cams``
    (``{'super-net': {block: (N, H, W)}, 'base-net': {...}}``, full model names) and ``similarity``: mean
    correlations of the maps, between the last mandatory block and the stage's last block in the super-net (what
    the skippable blocks change) and between the super-net's and the base-net's last blocks (images where a map is
    all zero left out; None if every one is).
    """
    backbone = adaptive_backbones(model)[0]
    prefix = next(n for n, m in model.named_modules() if m is backbone)
    prefix = prefix + '.' if prefix else ''
    stage_name = backbone.stage_module_names()[stage]
    blocks = [prefix + b for b in backbone.active_blocks('super') if b.startswith(stage_name + '.')]
    nets = {'super-net': 'super', 'base-net': 'base'}
    images, labels, cams = [], [], {net: {} for net in nets}
    was_training = model.training
    model.eval()
    try:
        for data in batches:
            images.append(_display_images(model, data['inputs']))
            for i in range(len(data['inputs'])):  # one image at a time: each map explains its own image only
                x = data['inputs'][i:i + 1].clone().requires_grad_()  # a gradient even through frozen stages
                samples = data['data_samples'][i:i + 1]
                labels.append(_caption(samples[0], task))
                for net, skip in nets.items():
                    with subnet(model, skip):
                        maps = grad_cam(model, blocks, lambda: target_score(model, x, samples, task), x.shape[-2:])
                    for block, cam in maps.items():
                        cams[net].setdefault(block, []).append(cam)
    finally:
        model.train(was_training)
    cams = {net: {b: torch.cat(v) for b, v in maps.items()} for net, maps in cams.items()}
    similarity = {}
    if cams['base-net']:  # the base-net runs the stage's mandatory blocks, the super-net all of them
        last_mandatory, last = list(cams['base-net'])[-1], list(cams['super-net'])[-1]
        similarity = {
            f'super-net {last_mandatory} vs super-net {last}': _correlation(cams['super-net'][last_mandatory],
                                                                            cams['super-net'][last]),
            f'super-net {last} vs base-net {last_mandatory}': _correlation(cams['super-net'][last],
                                                                           cams['base-net'][last_mandatory]),
        }
    return dict(stage=stage, stage_name=prefix + stage_name, images=np.concatenate(images), labels=labels,
                cams=cams, similarity=similarity)


def _caption(sample, task: str) -> str:
    if task == 'classification':
        label = getattr(sample, 'gt_label', None)
        return '' if label is None else f'label {int(label.view(-1)[0])}'
    instances = getattr(sample, 'gt_instances', None)
    return '' if instances is None else f'{len(instances)} objects'


def analyze_depth(runner, task: str, skips: Sequence[str], table: Optional[str] = None, stage: int = 2,
                  num_images: int = 4, kl_images: Optional[int] = None) -> Dict:
    """Run the three analyses on ``runner.model`` (its checkpoint is loaded here, as ``load_from`` says).

    ``skips`` are the sub-networks to evaluate (unless ``table`` gives their quality); ``stage`` is 0-based;
    ``kl_images`` caps the test images of the stage divergence (default: the whole test set).
    """
    model = runner.model
    runner.call_hook('before_run')
    runner.load_or_resume()
    try:
        if table is not None:
            rows, quality_key = read_subnet_table(table)
            source = f'table {table}'
        else:
            rows = evaluate_subnets(runner, skips, task)
            quality_key, source = _quality_key(rows, task), 'test loop'
        model.eval()
        backbone = adaptive_backbones(model)[0]
        norms = twin_norm_distances(backbone)
        divergence = stage_divergence(model, (d['inputs'] for d in _test_batches(runner, kl_images)))
        cam = stage_gradcam(model, task, stage, [_spread_batch(runner, num_images)])
    finally:
        runner.call_hook('after_run')
    return dict(
        task=task,
        backbone=type(backbone).__name__,
        subnets=dict(quality_key=quality_key, source=source, rows=rows),
        norm_distance=dict(layers=norms, first_layer_check={key: first_layer_check(norms, key)
                                                            for key in ('mean_abs', 'normalized')}),
        stage_divergence=divergence,
        gradcam=cam)


def write_depth_report(results: Dict, out_dir: str, title: str = '') -> Dict[str, str]:
    """Write ``depth_analysis.json`` (every number) and the four PNGs; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    cam = results['gradcam']
    stage_label = cam['stage_name'].split('.')[-1]
    paths = dict(json=osp.join(out_dir, 'depth_analysis.json'),
                 subnets=osp.join(out_dir, 'subnet_quality.png'),
                 norm_distance=osp.join(out_dir, 'norm_distance.png'),
                 stage_divergence=osp.join(out_dir, 'stage_divergence.png'),
                 gradcam=osp.join(out_dir, f'gradcam_{stage_label}.png'))
    subnets = results['subnets']
    plot_subnet_quality(subnets['rows'], subnets['quality_key'], paths['subnets'], title)
    plot_norm_distance(results['norm_distance']['layers'], paths['norm_distance'], title)
    plot_stage_divergence(results['stage_divergence'], paths['stage_divergence'], title)
    maps = {net: {block: m.numpy() for block, m in blocks.items()} for net, blocks in cam['cams'].items()}
    plot_gradcam_grid(cam['images'], maps, paths['gradcam'], title, cam['labels'])
    report = {k: v for k, v in results.items() if k != 'gradcam'}
    report['title'] = title
    report['gradcam'] = dict(stage=cam['stage'], stage_name=cam['stage_name'], labels=cam['labels'],
                             blocks={net: list(maps) for net, maps in cam['cams'].items()},
                             similarity=cam['similarity'], num_images=len(cam['images']))
    report['figures'] = {k: osp.basename(v) for k, v in paths.items() if k != 'json'}
    with open(paths['json'], 'w') as f:
        json.dump(report, f, indent=2)
    return paths
