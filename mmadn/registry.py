"""Register mmadn's modules in the registries of both libraries.

mmdet configs build from ``mmdet.registry`` (scope ``mmdet``) and mmpretrain configs from
``mmpretrain.registry`` (scope ``mmpretrain``); an ADN backbone or hook must be found from either.
"""
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS


def _register_in(*registries):

    def decorator(cls):
        for registry in registries:
            registry.register_module(module=cls)
        return cls

    return decorator


register_model = _register_in(MMDET_MODELS, MMPRETRAIN_MODELS)
register_hook = _register_in(MMDET_HOOKS, MMPRETRAIN_HOOKS)
