"""Gradient Equilibrium (GE): an identity in the forward pass whose backward pass rescales the gradient.

Without GE the gradient reaching block i of a k-exit network is the *sum* of what exits i..k send back, so its
variance grows with the number of exits. GE places two rescaling identities after block i: the features going to
classifier i get 1/(k-i+1), those going on to block i+1 get (k-i)/(k-i+1). The factors telescope, and block i
then receives the *mean* of its exits' gradients. The loss stays the plain sum of the exits' losses.

Where the identities sit is MSDNet's ``ge_scope``: on the coarsest-scale tensor only (the public code, default), or
on every scale a block hands on (the paper's eq. 5 for the block's parameters, opt-in).
"""
from typing import Tuple

import torch


class _ScaleGradient(torch.autograd.Function):
    """y = x; dL/dx = scale * dL/dy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        # a view, not ``x`` itself: autograd needs a distinct output to attach this node to
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Return ``x`` unchanged; gradients flowing back through the result are multiplied by ``scale``."""
    if scale == 1.0:
        return x
    return _ScaleGradient.apply(x, float(scale))


def ge_factors(exit_index: int, num_exits: int) -> Tuple[float, float]:
    """GE's two gradient scales after block ``exit_index`` (0-based) of ``num_exits``.

    Returns ``(to_classifier, to_next_block)`` = (1/(k-i+1), (k-i)/(k-i+1)) with i = exit_index + 1.
    """
    if not 0 <= exit_index < num_exits:
        raise ValueError(f'exit_index must be in [0, {num_exits}), got {exit_index}')
    remaining = num_exits - exit_index  # exits i..k, the ones that read block i's features
    return 1.0 / remaining, (remaining - 1) / remaining
