"""One-for-all knowledge distillation (OFA): the last exit teaches every earlier one.

L_i = (1 - gamma) * CE_i + gamma * T^2 * KL(softmax(z_t / T) || softmax(z_i / T)) for i < k, L_k = CE_k, with the
teacher logits z_t detached (the last exit's own, or a frozen phase-I final exit). The loss of the model is the
plain sum over exits.
"""
from typing import Callable, List, Optional, Sequence

import torch

from mmadn.models.losses import logits_kl


def one_for_all_losses(logits: Sequence[torch.Tensor],
                       cross_entropy: Callable[[torch.Tensor], torch.Tensor],
                       gamma: Optional[float] = None,
                       temperature: float = 1.0,
                       teacher: Optional[torch.Tensor] = None,
                       kl_reduction: str = 'batchmean') -> List[torch.Tensor]:
    """Per-exit losses. ``cross_entropy(z)`` returns the CE of logits ``z`` against the labels.

    ``gamma=None`` gives the plain multi-exit loss (CE at every exit). ``teacher`` defaults to the last exit.
    """
    if gamma is None:
        return [cross_entropy(z) for z in logits]
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f'OFA gamma must be in [0, 1], got {gamma}')
    if temperature <= 0:
        raise ValueError(f'OFA temperature must be > 0, got {temperature}')
    teacher = logits[-1] if teacher is None else teacher
    losses = []
    for z in logits[:-1]:
        kl = logits_kl(teacher, z, temperature, reduction=kl_reduction)
        losses.append((1.0 - gamma) * cross_entropy(z) + gamma * kl)
    losses.append(cross_entropy(logits[-1]))
    return losses
