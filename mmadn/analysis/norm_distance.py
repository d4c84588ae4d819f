"""How far each twin norm has moved from its shared norm: the ADN paper's Fig. 3b, from a model's own statistics.

A twin (``bnK_skip``) is used only while its stage skips, so its running statistics are those of the base-net's
features at that layer and the shared norm's those of the super-net's. The paper's observation: at a stage's first
layer the two means nearly coincide (the previous stages' skippable sub-paths kept the feature level), inside the
stage they part (the mandatory blocks must do the whole stage's work alone, so the twins are needed there).

Norms without running statistics (LayerNorm families) are compared by their bias, the shift the twin learnt.
"""
from typing import Dict, List, Optional

import torch
from torch import nn

from mmadn.models.utils import AdaptiveDepthMixin

__all__ = ['twin_norm_distances', 'first_layer_check']

_EPS = 1e-5


def _stage_of(name: str, stage_names: List[str]) -> Optional[int]:
    """Index of the stage whose module ``name`` belongs to (``'layer3.0.bn1'`` -> 2), None outside every stage."""
    for index, stage in enumerate(stage_names):
        if name == stage or name.startswith(stage + '.'):
            return index
    return None


def _pair_distance(shared: nn.Module, twin: nn.Module) -> Dict:
    mean_s, mean_t = getattr(shared, 'running_mean', None), getattr(twin, 'running_mean', None)
    if mean_s is None or mean_t is None:  # LayerNorm: no statistics, the learnt shift instead
        if getattr(shared, 'bias', None) is None:
            raise ValueError(f'{type(shared).__name__} has neither running statistics nor a bias to compare.')
        diff = (shared.bias - twin.bias).detach().float().abs()
        return dict(statistic='bias', mean_abs=diff.mean().item(), rms=diff.pow(2).mean().sqrt().item(),
                    normalized=None, var_log_ratio=None, shared_updates=None, twin_updates=None)
    diff = (mean_s - mean_t).float().abs()
    var_s, var_t = shared.running_var.float(), twin.running_var.float()

    def updates(norm):
        tracked = getattr(norm, 'num_batches_tracked', None)
        return None if tracked is None else int(tracked)

    return dict(statistic='running_mean',
                mean_abs=diff.mean().item(),
                rms=diff.pow(2).mean().sqrt().item(),
                # how many of the shared norm's standard deviations the two means are apart, averaged
                normalized=(diff / (var_s + _EPS).sqrt()).mean().item(),
                var_log_ratio=(var_t + _EPS).log().sub((var_s + _EPS).log()).abs().mean().item(),
                shared_updates=updates(shared), twin_updates=updates(twin))


@torch.no_grad()
def twin_norm_distances(backbone: nn.Module) -> List[Dict]:
    """One row per (shared, twin) norm pair of an ADN backbone, in module order.

    Each row: ``stage`` (0-based index into ``backbone.stage_module_names()``, None for a norm outside every
    stage), ``layer`` (its index among the stage's twin norms: 0 is the stage's first layer), the two module
    names, and the distances of the twin's mean from the shared one over channels: ``mean_abs`` (mean of
    ``|mu_shared - mu_twin|``, the primary figure), ``rms``, ``normalized`` (in units of the shared norm's
    standard deviation), ``var_log_ratio`` (mean ``|log var_twin / var_shared|``), and how many batches updated
    each (``num_batches_tracked``; a twin at 0 was never trained).
    """
    if not isinstance(backbone, AdaptiveDepthMixin):
        raise TypeError(f'{type(backbone).__name__} is not an ADN backbone: it has no twin norms to compare; '
                        'set model.backbone.type to an ADN backbone such as ResNetADN.')
    stage_names = backbone.stage_module_names()
    modules = dict(backbone.named_modules())
    rows, seen = [], {}
    for twin, shared in backbone.twin_norm_names():
        stage = _stage_of(shared, stage_names)
        layer = seen.get(stage, 0)
        seen[stage] = layer + 1
        rows.append(dict(stage=stage, stage_name=None if stage is None else stage_names[stage], layer=layer,
                         shared=shared, twin=twin, **_pair_distance(modules[shared], modules[twin])))
    if not rows:
        raise ValueError(f'{type(backbone).__name__} has no twin norms (no stage has a skippable part).')
    return rows


def first_layer_check(rows: List[Dict], key: str = 'mean_abs') -> List[Dict]:
    """Per stage with at least two twin norms: is the first layer's distance (``key``) below every inner one's?

    Returns one dict per stage: ``stage``, ``first``, ``inner_min``, ``inner_mean`` and ``first_below_inner``
    (first < every inner layer).
    """
    by_stage: Dict[int, List[Dict]] = {}
    for row in rows:
        if row['stage'] is not None and row[key] is not None:
            by_stage.setdefault(row['stage'], []).append(row)
    checks = []
    for stage, layers in sorted(by_stage.items()):
        if len(layers) < 2:
            continue
        first, inner = layers[0][key], [r[key] for r in layers[1:]]
        checks.append(dict(stage=stage, stage_name=layers[0]['stage_name'], first=first, inner_min=min(inner),
                           inner_mean=sum(inner) / len(inner), first_below_inner=first < min(inner)))
    return checks
