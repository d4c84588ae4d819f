"""Pretraining-to-detection handoff: an ADN classifier's backbone becomes a detector's backbone init.

The twins' normalization statistics of an ADN detector come from ImageNet pretraining (spec section 6), so the
handoff must carry every backbone tensor, twins included, and fail early when the classifier's backbone is not the
detection config's (another depth, another architecture) rather than after a silent partial load.
"""
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping, Set

import torch
from torch import nn

BACKBONE_PREFIX = 'backbone.'


def classifier_backbone_state(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """The ``backbone.*`` tensors of a classifier (or detector) state dict, keys kept with their prefix."""
    out = OrderedDict((k, v) for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX))
    if not out:
        sample = ', '.join(sorted(state_dict)[:5])
        raise ValueError(f"No '{BACKBONE_PREFIX}*' weights in the checkpoint (keys such as: {sample}). Expected an "
                         'mmpretrain ImageClassifier checkpoint; convert a released ADN model first with '
                         'tools/model_converters/adn_converter.py --to mmpretrain.')
    return out


def check_backbone_fits(backbone: nn.Module, backbone_state: Mapping[str, torch.Tensor],
                        detection_only: Iterable[str] = ()) -> None:
    """Raise a ValueError naming the missing, unexpected and mis-shaped tensors if ``backbone_state``
    (``backbone.*`` keys) would not load strictly into ``backbone``.

    ``detection_only``: tensors a classifier cannot have, such as the output norms a transformer backbone adds
    for every extra ``out_indices`` entry (``norm0``..``norm2`` of Swin); they may be missing and keep their init.
    """
    expected: Dict[str, torch.Tensor] = backbone.state_dict()
    given = {k[len(BACKBONE_PREFIX):]: v for k, v in backbone_state.items()}
    missing = sorted(set(expected) - set(given) - set(detection_only))
    unexpected = sorted(set(given) - set(expected))
    mis_shaped = sorted(k for k in set(expected) & set(given) if expected[k].shape != given[k].shape)
    if not (missing or unexpected or mis_shaped):
        return
    lines = [f'The classifier backbone does not fit the detection backbone {type(backbone).__name__}:']
    for what, keys in (('missing', missing), ('unexpected', unexpected)):
        if keys:
            lines.append(f'  {len(keys)} {what} tensor(s), e.g. {keys[:3]}')
    for key in mis_shaped[:3]:
        lines.append(f'  {key}: checkpoint {tuple(given[key].shape)} vs detector {tuple(expected[key].shape)}')
    lines.append('Make the detection config\'s backbone match the classifier (e.g. --cfg-options '
                 'model.backbone.depth=... model.neck.in_channels=[...]).')
    raise ValueError('\n'.join(lines))


def detection_only_keys(build_backbone: Callable[[dict], nn.Module], backbone_cfg: dict) -> Set[str]:
    """State-dict keys the detection backbone has only because of its ``out_indices`` (output norms of the
    extra outputs): the difference to the same backbone built with the classifier's single last output."""
    detection = build_backbone(backbone_cfg)
    out_indices = getattr(detection, 'out_indices', None)
    if not out_indices:
        return set()
    classifier_like = build_backbone(dict(backbone_cfg, out_indices=(max(out_indices), )))
    return set(detection.state_dict()) - set(classifier_like.state_dict())
