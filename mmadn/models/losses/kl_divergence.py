"""KL terms of self-distillation: ADN's super-net teaches its base-net, IMTA's last exit its earlier ones.

Every function takes the teacher first, detaches it, and returns
``T^2 * KL(p_teacher || p_student)`` averaged over the batch (and over positions or channels for maps).
Under mixed precision (``--amp``) they compute in float32: a softmax over an FPN level's thousands of positions
puts ~1e-4 on each, and the difference of two such log-probabilities is below half precision's resolution.
"""
import functools
from typing import Optional

import torch
import torch.nn.functional as F

FEATURE_MODES = ('channel', 'spatial', 'pooled', 'tokens')
KL_REDUCTIONS = ('batchmean', 'mean')


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over ``dim`` of p_t (log p_t - log p_s), for every other index."""
    log_p_t = F.log_softmax(teacher_logits.detach(), dim=dim)
    log_p_s = F.log_softmax(student_logits, dim=dim)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=dim)


def _in_float32(kl_fn):
    """Run ``kl_fn(teacher, student, ...)`` with autocast off, half-precision inputs raised to float32 (float32 and
    float64 ones untouched, so the released recipe stays bit-for-bit); the gradient flows back to the student in its
    own dtype."""

    def at_least_float32(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.promote_types(x.dtype, torch.float32))

    @functools.wraps(kl_fn)
    def wrapper(teacher: torch.Tensor, student: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(student.device.type, enabled=False):
            return kl_fn(at_least_float32(teacher), at_least_float32(student), *args, **kwargs)

    return wrapper


def _standardize(x: torch.Tensor, dim: int, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit variance along ``dim``: the softmax then sees the feature's pattern, not its scale."""
    mean = x.mean(dim, keepdim=True)
    return (x - mean) / (x.var(dim, unbiased=False, keepdim=True) + eps).sqrt()


@_in_float32
def feature_kl(teacher: torch.Tensor, student: torch.Tensor, mode: str = 'channel',
               temperature: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """KL between feature maps (N, C, H, W) turned into distributions.

    Modes: ``'channel'``: softmax over channels at each position, averaged over positions (the dense form of
    the paper's pooled term); ``'spatial'``: softmax over positions for each channel, averaged over channels
    (channel-wise distillation for dense prediction); ``'pooled'``: softmax over channels of the globally
    average-pooled map (the released classification recipe, spec section 5); ``'tokens'``: the same for a
    transformer's token sequence (N, L, C), averaged over the tokens.

    ``normalize``: standardize the logits along the softmax dimension first. An FPN level's values are small
    (std ~0.1-0.5), so its channel softmax is almost uniform and the KL is ~1e-4 whatever the base-net does;
    standardized, the KL measures the difference of the two patterns at a scale of its own (docs/adn.md).
    """
    if teacher.shape != student.shape:
        raise ValueError(f'teacher and student features differ in shape: {tuple(teacher.shape)} vs '
                         f'{tuple(student.shape)}')
    # Without normalize, the maps are divided by T before pooling, as released (bit-for-bit the same recipe);
    # standardizing would cancel that division, so with normalize T applies to the standardized logits.
    scale = 1.0 if normalize else temperature
    t, s = teacher / scale, student / scale
    if mode == 'pooled':
        t, s, dim = t.flatten(2).mean(-1), s.flatten(2).mean(-1), 1  # (N, C)
    elif mode == 'tokens':
        if t.dim() != 3:
            raise ValueError(f"mode 'tokens' expects (N, L, C) token features, got shape {tuple(t.shape)}")
        t, s, dim = t.mean(1), s.mean(1), 1  # (N, C)
    elif mode in ('channel', 'spatial'):
        t, s, dim = t.flatten(2), s.flatten(2), 1 if mode == 'channel' else 2  # (N, C, HW)
    else:
        raise ValueError(f'Unknown feature distillation mode {mode!r}; choose from {FEATURE_MODES}.')
    if normalize:
        t, s = _standardize(t, dim) / temperature, _standardize(s, dim) / temperature
    kl = _kl(t, s, dim=dim)  # (N,) for pooled / tokens; (N, HW) or (N, C) for maps: averaged per sample
    if kl.dim() > 1:
        kl = kl.mean(-1)
    return kl.mean() * temperature**2


@_in_float32
def logits_kl(teacher: torch.Tensor, student: torch.Tensor, temperature: float = 1.0,
              topk: Optional[int] = None, reduction: Optional[str] = None) -> torch.Tensor:
    """KL between class distributions; with ``topk``, over the teacher's top-k classes only (as released).

    ``reduction=None`` is ADN's released sum over classes, averaged over samples. IMTA's public code computes the
    same with ``F.kl_div`` (kept for its rounding): ``'batchmean'`` averages over samples (the paper's formula),
    ``'mean'`` over classes as well (``nn.KLDivLoss()``).
    """
    if reduction is not None and reduction not in KL_REDUCTIONS:
        raise ValueError(f'kl_reduction must be one of {KL_REDUCTIONS}, got {reduction!r}')
    if topk is not None and topk < teacher.shape[1]:
        index = teacher.detach().topk(topk, dim=1).indices
        teacher, student = teacher.gather(1, index), student.gather(1, index)
    teacher, student = teacher / temperature, student / temperature
    if reduction is None:
        return _kl(teacher, student, dim=1).mean() * temperature**2
    kl = F.kl_div(F.log_softmax(student, dim=1), F.softmax(teacher.detach(), dim=1), reduction='batchmean')
    if reduction == 'mean':
        kl = kl / student.size(1)
    return kl * temperature**2
