"""Whether a training config leaves ADN parameters without a gradient, so that DDP must look for unused ones.

DDP's wrapper is built, with or without ``find_unused_parameters``, before the model runs and before any hook
exists: the answer is read from the config alone, from the backbone's ``skip`` or the distiller's options.
"""
from typing import Optional

from mmpretrain.registry import MODELS

from mmadn.models.distillers import SubPathDistillation
from mmadn.models.utils import AdaptiveDepthMixin
from mmadn.models.utils.adaptive_depth import trains_every_path
from .distill_config import distill_hooks


def unused_parameters_reason(cfg) -> Optional[str]:
    """Why a training config leaves parameters of its ADN backbone without a gradient in every step (``None``:
    it does not). The trained sub-networks are the ADNDistillHook's teacher and student, or without the hook the
    backbone's own ``skip``. (Distilled features that do not depend on every stage also leave twins unused; that
    is not visible here.)"""
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    backbone_type = backbone.get('type')
    if isinstance(backbone_type, str):
        backbone_type = MODELS.get(backbone_type.split('.')[-1])  # ADN backbones are in both registries
    if not (isinstance(backbone_type, type) and issubclass(backbone_type, AdaptiveDepthMixin)):
        return None
    hooks = distill_hooks(cfg)
    if hooks:
        subnets = SubPathDistillation.trained_subnets(
            {k: v for k, v in hooks[0].items() if k not in ('type', 'priority')})
        trained = f'ADNDistillHook trains {" and ".join(map(str, subnets))}'
    else:
        subnets = [backbone.get('skip', 'super')]
        trained = f'without ADNDistillHook only the backbone\'s skip ({subnets[0]}) trains'
    if trains_every_path(subnets):
        return None
    return f'{trained}, which leaves skippable blocks or twin norms without a gradient'
