"""One-for-all knowledge distillation (OFA): the last exit teaches every earlier one.

L_i = (1 - gamma) * CE_i + gamma * T^2 * KL_i for i < k, L_k = CE_k, with the teacher logits z_t detached (the
last exit's own, or a frozen phase-I final exit), and the loss of the model the plain sum over exits.

How KL_i is normalised decides what gamma means. The defaults (CIFAR gamma 0.9, T 3; ImageNet gamma 0.1, T 1) were
tuned with the public code's ``nn.KLDivLoss()`` times ``gamma * T * T``, which averages the pointwise terms
p_t (log p_t - log p_i) over the batch AND the classes:

- ``kl_reduction='mean'`` (default): KL_i = 1/(N C) sum_n sum_c p_t,nc (log p_t,nc - log p_i,nc), the public code;
- ``kl_reduction='batchmean'``: KL_i = 1/N sum_n sum_c (...), the per-sample KL divergence of the paper's formula.
  It is C times the public code's term (100x on CIFAR-100, 1000x on ImageNet), so it needs its own, C times
  smaller gamma to train what the defaults train.
"""
from typing import Callable, List, Optional, Sequence

import torch

from mmadn.models.losses import logits_kl


def one_for_all_losses(logits: Sequence[torch.Tensor],
                       cross_entropy: Callable[[torch.Tensor], torch.Tensor],
                       gamma: Optional[float] = None,
                       temperature: float = 1.0,
                       teacher: Optional[torch.Tensor] = None,
                       kl_reduction: str = 'mean') -> List[torch.Tensor]:
    """Per-exit losses. ``cross_entropy(z)`` returns the CE of logits ``z`` against the labels.

    ``gamma=None`` gives the plain multi-exit loss (CE at every exit). ``teacher`` defaults to the last exit.
    ``kl_reduction``: ``'mean'`` (the public code's normalisation, which the default gamma and T assume) or
    ``'batchmean'`` (see the module docstring).
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
