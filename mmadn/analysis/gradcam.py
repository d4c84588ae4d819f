"""Grad-CAM of named modules (Selvaraju et al., 2017), for the ADN paper's Fig. 4: every block of a stage, for the
super-net and the base-net, to see that the skippable blocks only refine what the mandatory ones found.

The activations are captured with forward hooks registered by module name (``FeatureRecorder``) and their
gradients taken with ``torch.autograd.grad`` on those very tensors: nothing accumulates in the parameters'
``.grad`` and the model's code is not touched. A module that does not run (a skipped block) gets no map.

What is explained, per image (``target_score``): a classifier's logit of the image's ground-truth class (its
predicted class when the sample has no label); a two-stage detector's confident detections (the sum of the
pre-softmax score of each proposal whose best foreground probability is at least ``0.5``, the best proposal when
none is); a dense detector's ``topk`` highest classification logits.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmadn.models.utils import FeatureRecorder

__all__ = ['grad_cam', 'target_score']


def _normalize(cam: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] by its own maximum (a map that is zero everywhere stays zero)."""
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)
    return cam / peak[:, None, None]


def grad_cam(model: nn.Module, layer_names: Sequence[str], score_fn: Callable[[], torch.Tensor],
             size: Optional[Sequence[int]] = None) -> Dict[str, torch.Tensor]:
    """Grad-CAM of every module in ``layer_names`` that runs while ``score_fn()`` computes a scalar score.

    For a module's output A (N, C, h, w) and the gradient G of the score: weights ``G.mean((h, w))`` per channel,
    map ``relu(sum_c weight_c * A_c)``, resized to ``size`` (H, W) if given, each scaled to [0, 1]. Returns
    ``name -> (N, H, W)`` maps on the CPU, for the modules that ran, in ``layer_names`` order.
    """
    recorder = FeatureRecorder(model, list(layer_names))
    with torch.enable_grad(), recorder.record():
        score = score_fn()
        ran = [name for name in layer_names if name in recorder.outputs]
        activations = [recorder.last(name) for name in ran]
    if not ran:
        raise ValueError(f'None of {list(layer_names)} ran while computing the score: nothing to explain.')
    bad = [n for n, a in zip(ran, activations) if not (torch.is_tensor(a) and a.dim() == 4)]
    if bad:
        raise ValueError(f'Grad-CAM needs (N, C, H, W) feature maps; {bad} output something else.')
    if not score.requires_grad:
        raise ValueError('The score does not depend on any parameter or input with a gradient; run Grad-CAM with '
                         'the inputs requiring grad (inputs.requires_grad_()) or unfrozen parameters.')
    grads = torch.autograd.grad(score, activations, allow_unused=True)
    cams = {}
    for name, act, grad in zip(ran, activations, grads):
        if grad is None:  # ran, but the score does not depend on it
            grad = torch.zeros_like(act)
        weights = grad.mean((2, 3), keepdim=True)
        cam = F.relu((weights * act).sum(1, keepdim=True))
        if size is not None:
            cam = F.interpolate(cam, size=tuple(size), mode='bilinear', align_corners=False)
        cams[name] = _normalize(cam[:, 0].detach().float()).cpu()
    return cams


def target_score(model: nn.Module, inputs: torch.Tensor, data_samples: Optional[List] = None,
                 task: str = 'classification', score_thr: float = 0.5, topk: int = 10) -> torch.Tensor:
    """The scalar that Grad-CAM explains for one batch (see the module docstring), summed over the images."""
    if task == 'classification':
        logits = model(inputs, data_samples, mode='tensor')
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        index = logits.argmax(1)
        for i, sample in enumerate(data_samples or ()):
            label = getattr(sample, 'gt_label', None)
            if label is not None and label.numel():
                index[i] = label.view(-1)[0]
        return logits.gather(1, index[:, None]).sum()
    if task != 'detection':
        raise ValueError(f"task must be 'classification' or 'detection', got {task!r}")
    outputs = model(inputs, data_samples, mode='tensor')
    head = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    if isinstance(head, (tuple, list)) and torch.is_tensor(head[0]) and head[0].dim() == 2:
        head = head[0]  # mmdet's two-stage detectors: ((cls_score, bbox_pred, ...), ); dense ones: (cls_scores, ...)
    if torch.is_tensor(head) and head.dim() == 2:  # a two-stage detector's RoI head: (proposals, classes + 1)
        if inputs.shape[0] != 1:
            raise ValueError('A two-stage detector pools all images\' proposals into one score table: give Grad-CAM '
                             'one image at a time.')
        probs = head.softmax(-1)[:, :-1]  # mmdet's background class is the last
        best, classes = probs.max(1)
        keep = best >= score_thr
        if not keep.any():
            keep = best == best.max()
        return head[keep].gather(1, classes[keep][:, None]).sum()
    if isinstance(head, (tuple, list)) and all(torch.is_tensor(h) and h.dim() == 4 for h in head):
        # a dense head: per-level (N, anchors * classes, H, W) classification maps
        flat = torch.cat([h.flatten(1) for h in head], 1)
        return flat.topk(min(topk, flat.shape[1]), dim=1).values.sum()
    raise ValueError(f'Do not know which score of {type(model).__name__} to explain: its tensor output is '
                     f'{type(head).__name__}; supported are two-stage detectors (RoI head scores) and dense heads.')
