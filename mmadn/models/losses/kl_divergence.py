"""KL terms of ADN's self-distillation: the super-net's distributions teach the base-net's.

Every function takes the teacher (super-net) first, detaches it, and returns
``T^2 * KL(p_teacher || p_student)`` averaged over the batch (and over positions or channels for maps).
"""
from typing import Optional

import torch
import torch.nn.functional as F

FEATURE_MODES = ('channel', 'spatial', 'pooled', 'tokens')


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over ``dim`` of p_t (log p_t - log p_s), for every other index."""
    log_p_t = F.log_softmax(teacher_logits.detach(), dim=dim)
    log_p_s = F.log_softmax(student_logits, dim=dim)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=dim)


def feature_kl(teacher: torch.Tensor, student: torch.Tensor, mode: str = 'channel',
               temperature: float = 1.0) -> torch.Tensor:
    """KL between feature maps (N, C, H, W) turned into distributions.

    Modes: ``'channel'``: softmax over channels at each position, averaged over positions (the dense form of
    the paper's pooled term); ``'spatial'``: softmax over positions for each channel, averaged over channels
    (channel-wise distillation for dense prediction); ``'pooled'``: softmax over channels of the globally
    average-pooled map (the released classification recipe, spec section 5); ``'tokens'``: the same for a
    transformer's token sequence (N, L, C), averaged over the tokens.
    """
    if teacher.shape != student.shape:
        raise ValueError(f'teacher and student features differ in shape: {tuple(teacher.shape)} vs '
                         f'{tuple(student.shape)}')
    t, s = teacher / temperature, student / temperature
    if mode == 'pooled':
        kl = _kl(t.flatten(2).mean(-1), s.flatten(2).mean(-1), dim=1)  # (N,)
    elif mode == 'tokens':
        if t.dim() != 3:
            raise ValueError(f"mode 'tokens' expects (N, L, C) token features, got shape {tuple(t.shape)}")
        kl = _kl(t.mean(1), s.mean(1), dim=1)  # (N,)
    elif mode == 'channel':
        kl = _kl(t.flatten(2), s.flatten(2), dim=1).mean(-1)  # (N, HW) -> (N,)
    elif mode == 'spatial':
        kl = _kl(t.flatten(2), s.flatten(2), dim=2).mean(-1)  # (N, C) -> (N,)
    else:
        raise ValueError(f'Unknown feature distillation mode {mode!r}; choose from {FEATURE_MODES}.')
    return kl.mean() * temperature**2


def logits_kl(teacher: torch.Tensor, student: torch.Tensor, temperature: float = 1.0,
              topk: Optional[int] = None) -> torch.Tensor:
    """KL between class distributions; with ``topk``, over the teacher's top-k classes only (as released)."""
    if topk is not None and topk < teacher.shape[1]:
        index = teacher.detach().topk(topk, dim=1).indices
        teacher, student = teacher.gather(1, index), student.gather(1, index)
    return _kl(teacher / temperature, student / temperature, dim=1).mean() * temperature**2
