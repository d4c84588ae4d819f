"""Frozen norm statistics: BatchNorm layers kept in eval mode while the model around them trains.

``nn.Module.train()`` puts every layer back in training mode, and a BatchNorm layer in training mode updates its
running statistics on each forward, with or without gradients. A frozen part (``norm_eval``, a frozen backbone or
head) therefore calls :func:`batch_norms_to_eval` from its own ``train()``, after ``super().train(mode)``.
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norms_to_eval(module: nn.Module) -> None:
    """Put every BatchNorm layer in ``module`` (itself included) in eval mode; other layers keep their mode."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
