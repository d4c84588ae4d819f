"""How much skipping changes each stage's output, measured on data: the premise of ADN.

Algorithm 1 asks the skippable sub-paths to only refine, so that the base-net's stage outputs stay close to the
super-net's. Here, on real batches, the super-net's and the base-net's stage outputs are recorded (forward hooks by
module name, ``FeatureRecorder``) and compared per stage with the terms the distillation itself uses
(``mmadn.models.losses.feature_kl``, teacher = super-net) and a scale-free distance. ``isolated`` compares the
super-net with the sub-network that skips only that stage, which separates one stage's sub-path from the
accumulated drift of the stages before it.
"""
from typing import Dict, Iterable, List

import torch
from torch import nn

from mmadn.models.losses import feature_kl
from mmadn.models.utils import FeatureRecorder, adaptive_backbones, subnet
from mmadn.models.utils.adaptive_depth import skip_to_str

__all__ = ['stage_divergence']


def _compare(teacher: torch.Tensor, student: torch.Tensor, temperature: float) -> Dict[str, torch.Tensor]:
    """Per-batch sums (so that batches of any size average correctly) of every comparison of two stage outputs."""
    n = teacher.shape[0]
    if teacher.dim() == 3:  # transformer tokens (N, L, C)
        kls = dict(kl_tokens=feature_kl(teacher, student, 'tokens', temperature))
    else:
        kls = dict(kl_pooled=feature_kl(teacher, student, 'pooled', temperature),
                   kl_channel=feature_kl(teacher, student, 'channel', temperature))
    out = {k: v * n for k, v in kls.items()}  # feature_kl averages over the batch
    t, s = teacher.flatten(1).float(), student.flatten(1).float()
    out['rel_l2'] = ((s - t).norm(dim=1) / t.norm(dim=1).clamp_min(1e-12)).sum()
    out['cosine'] = torch.nn.functional.cosine_similarity(s, t, dim=1).sum()
    return out


def _accumulate(sums: Dict[str, float], tag: str, values: Dict[str, torch.Tensor]) -> None:
    for key, value in values.items():
        sums[tag + key] = sums.get(tag + key, 0.0) + float(value)


@torch.no_grad()
def stage_divergence(model: nn.Module,
                     inputs: Iterable[torch.Tensor],
                     teacher: str = 'super',
                     student: str = 'base',
                     temperature: float = 1.0,
                     isolated: bool = True) -> List[Dict]:
    """Per stage of ``model``'s ADN backbone, how far the ``student`` sub-network's output is from the
    ``teacher``'s, averaged over the images of ``inputs`` (preprocessed image batches, e.g.
    ``model.data_preprocessor(batch)['inputs']``).

    Each row: ``stage`` (0-based), ``module`` (name in the model), ``kl_pooled`` (the classification distillation
    term: softmax over channels of the pooled map), ``kl_channel`` (softmax over channels at each position),
    ``rel_l2`` (``||h_student - h_teacher|| / ||h_teacher||``), ``cosine``; for token stages ``kl_tokens`` instead
    of the two KLs. With ``isolated``, the same against the sub-network skipping only that stage, prefixed
    ``isolated_`` (when the backbone has one flag per stage).
    """
    backbones = adaptive_backbones(model)
    if not backbones:
        raise TypeError(f'{type(model).__name__} has no adaptive-depth backbone (e.g. ResNetADN).')
    backbone = backbones[0]
    name = next(n for n, m in model.named_modules() if m is backbone)  # '' when model is the backbone
    prefix = name + '.' if name else ''
    stage_names = [prefix + name for name in backbone.stage_module_names()]
    num_flags = backbone.num_skip_flags
    isolated = isolated and len(stage_names) == num_flags
    recorder = FeatureRecorder(model, stage_names)

    def stage_outputs(x, skip):
        with subnet(model, skip), recorder.record():
            backbone(x)
        return [recorder.last(name) for name in stage_names]

    was_training = model.training
    model.eval()
    sums: List[Dict[str, float]] = [dict() for _ in stage_names]
    count = 0
    try:
        for x in inputs:
            reference = stage_outputs(x, teacher)
            for s, (t, o) in enumerate(zip(reference, stage_outputs(x, student))):
                _accumulate(sums[s], '', _compare(t, o, temperature))
            if isolated:  # the sub-network skipping only stage s, at stage s
                for s in range(num_flags):
                    only = stage_outputs(x, skip_to_str(i == s for i in range(num_flags)))[s]
                    _accumulate(sums[s], 'isolated_', _compare(reference[s], only, temperature))
            count += x.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError('stage_divergence needs at least one batch of images.')
    return [dict(stage=s, module=name, **{k: v / count for k, v in sums[s].items()})
            for s, name in enumerate(stage_names)]
