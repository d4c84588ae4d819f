"""Where mmadn's modules are registered: every registration goes through the helpers here.

mmdet configs build from ``mmdet.registry`` (scope ``mmdet``) and mmpretrain configs from
``mmpretrain.registry`` (scope ``mmpretrain``); an ADN backbone or hook must be found from either. ODN's loop and
IMTA's dataset wrapper and metric serve classification only, so they go to mmpretrain's registries.
"""
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmpretrain.registry import LOOPS as MMPRETRAIN_LOOPS
from mmpretrain.registry import METRICS as MMPRETRAIN_METRICS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS


def _register_in(*registries):

    def decorator(cls):
        for registry in registries:
            registry.register_module(module=cls)
        return cls

    return decorator


register_model = _register_in(MMDET_MODELS, MMPRETRAIN_MODELS)
register_hook = _register_in(MMDET_HOOKS, MMPRETRAIN_HOOKS)
register_loop = _register_in(MMPRETRAIN_LOOPS)
register_dataset = _register_in(MMPRETRAIN_DATASETS)
register_metric = _register_in(MMPRETRAIN_METRICS)
