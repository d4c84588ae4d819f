"""Switch on ADN's Algorithm-1 training from a config: ``custom_hooks=[dict(type='ADNDistillHook')]``.

Why the hook replaces ``model.loss``: a runner hook runs around ``train_step``, whose forward, backward and
optimizer step happen in one call, so it cannot change the loss afterwards. Every wrapper's ``train_step``
(``BaseModel`` and ``MMDistributedDataParallel`` alike) ends in ``model(..., mode='loss')``, which calls
``model.loss``. Setting an instance attribute ``loss`` on the unwrapped model puts the objective on that path
for every detector and classifier, wrapped or not, with no subclass. It holds no parameters, so nothing of the
hook reaches the state dict, and ``after_train`` removes it.
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmadn.models.distillers import SubPathDistillation
from mmadn.registry import register_hook


@register_hook
class ADNDistillHook(Hook):
    """Installs :class:`SubPathDistillation` as the model's loss for the training, and removes it after.

    Args:
        **distiller_cfg: the distiller's options (``alpha``, ``temperature``, ``features``, ``teacher``,
            ``student``, ...), documented by ``SubPathDistillation``; an unknown name fails when the hook is built.
    """

    priority = 'NORMAL'

    def __init__(self, **distiller_cfg) -> None:
        SubPathDistillation.options(distiller_cfg)  # a misspelt option fails with the config, not at training
        self.distiller_cfg = distiller_cfg
        self.objective: Optional[SubPathDistillation] = None

    @staticmethod
    def _unwrap(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._unwrap(runner)
        if 'loss' in vars(model):
            raise RuntimeError('model.loss is already replaced (two ADNDistillHooks in custom_hooks?).')
        self.objective = SubPathDistillation(model, model.loss, **self.distiller_cfg)
        model.loss = self.objective
        runner.logger.info(f'ADNDistillHook: {self.objective.summary()}.')

    def after_train(self, runner) -> None:
        model = self._unwrap(runner)
        if vars(model).get('loss') is self.objective:
            del model.loss
