"""Where a config asks for Algorithm 1: its ADNDistillHook entries, and the config without them.

Evaluation, export and the recipe comparison's plain networks run a trained model without its training objective;
the DDP check reads the hook's options. All of them find the hook by :func:`is_distill_hook`, so that a hook named
with a scope (``'mmadn.ADNDistillHook'``) or given as the class is not missed by one of them.
"""
from typing import List

from .hooks import ADNDistillHook


def is_distill_hook(hook) -> bool:
    """Whether a ``custom_hooks`` entry is ADNDistillHook: a config dict naming it (scoped or not), one giving the
    class, or a built hook."""
    if isinstance(hook, ADNDistillHook):
        return True
    kind = hook.get('type') if hasattr(hook, 'get') else None
    return kind is ADNDistillHook or (isinstance(kind, str) and kind.split('.')[-1] == 'ADNDistillHook')


def distill_hooks(cfg) -> List:
    """The ADNDistillHook entries of ``cfg.custom_hooks``, in order."""
    return [h for h in cfg.get('custom_hooks') or [] if is_distill_hook(h)]


def remove_distill_hook(cfg) -> None:
    """Take ADNDistillHook out of ``cfg.custom_hooks`` (in place; the other hooks stay, in order): a trained model
    is evaluated, exported or trained plainly as it is, without Algorithm 1 replacing its loss."""
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or [] if not is_distill_hook(h)]
