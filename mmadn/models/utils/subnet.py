"""Switch the sub-network of a whole model (detector, classifier) without knowing where its ADN parts are."""
from contextlib import ExitStack, contextmanager
from typing import Iterator, List

from torch import nn

from .adaptive_depth import AdaptiveDepthMixin, SkipType


def adaptive_backbones(model: nn.Module) -> List[AdaptiveDepthMixin]:
    """All adaptive-depth modules of ``model`` (unwrapping DDP-style wrappers through ``modules()``)."""
    return [m for m in model.modules() if isinstance(m, AdaptiveDepthMixin)]


def _require_adaptive(model: nn.Module) -> List[AdaptiveDepthMixin]:
    found = adaptive_backbones(model)
    if not found:
        raise TypeError(f'{type(model).__name__} has no adaptive-depth backbone (e.g. ResNetADN); '
                        "set model.backbone.type to an ADN backbone in the config.")
    return found


def set_subnet(model: nn.Module, skip: SkipType) -> None:
    """Select the sub-network ``skip`` in every adaptive-depth module of ``model``."""
    for m in _require_adaptive(model):
        m.skip = skip


@contextmanager
def subnet(model: nn.Module, skip: SkipType) -> Iterator[nn.Module]:
    """Temporarily select ``skip`` in every adaptive-depth module of ``model``."""
    with ExitStack() as stack:
        for m in _require_adaptive(model):
            stack.enter_context(m.switch(skip))
        yield model
