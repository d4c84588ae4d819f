"""Switch on ADN's Algorithm-1 training from a config: ``custom_hooks=[dict(type='ADNDistillHook')]``.

Why the hook replaces ``model.loss``: a runner hook runs around ``train_step``, whose forward, backward and
optimizer step happen in one call, so it cannot change the loss afterwards. Every wrapper's ``train_step``
(``BaseModel`` and ``MMDistributedDataParallel`` alike) ends in ``model(..., mode='loss')``, which calls
``model.loss``. Setting an instance attribute ``loss`` on the unwrapped model puts the objective on that path
for every detector and classifier, wrapped or not, with no subclass. It holds no parameters, so nothing of the
hook reaches the state dict, and ``after_train`` removes it.
"""
from typing import Dict, Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmadn.models.distillers import SubPathDistillation
from mmadn.models.utils import adaptive_backbones
from mmadn.registry import register_hook


@register_hook
class ADNDistillHook(Hook):
    """Trains the super-net on the task and pulls the base-net's features to the super-net's.

    Args:
        alpha (float): weight of the super-net's task losses; the KL terms get ``1 - alpha``. Default 0.5.
        temperature (float): softmax temperature T; terms are scaled by T^2. Default 1 (as released).
        features (dict, optional): module name -> mode (``'channel'``, ``'spatial'``, ``'pooled'``,
            ``'logits'``) or ``dict(mode=..., levels=..., weight=...)``. Default: detection, every neck level
            with a channel softmax per position; classification, the pooled stage features and the logits.
        logits_topk (int, optional): restrict the logits KL to the super-net's top-k classes (500 in the
            released ImageNet recipe).
        teacher, student (str): the pair of sub-networks trained. Default ``'super'`` and ``'base'``.
        student_task_loss_weight (float): the student's own task loss weight (0: off, as released).
    """

    priority = 'NORMAL'

    def __init__(self,
                 alpha: float = 0.5,
                 temperature: float = 1.0,
                 features: Optional[Dict[str, Union[str, dict]]] = None,
                 logits_topk: Optional[int] = None,
                 teacher: str = 'super',
                 student: str = 'base',
                 student_task_loss_weight: float = 0.0) -> None:
        self.kwargs = dict(alpha=alpha, temperature=temperature, features=features, logits_topk=logits_topk,
                           teacher=teacher, student=student, student_task_loss_weight=student_task_loss_weight)
        self.objective: Optional[SubPathDistillation] = None

    @staticmethod
    def _unwrap(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._unwrap(runner)
        if not adaptive_backbones(model):
            raise TypeError(f'ADNDistillHook needs a model with an adaptive-depth backbone, but '
                            f'{type(model).__name__}.backbone is {type(getattr(model, "backbone", None)).__name__}; '
                            "set model.backbone.type='ResNetADN' (or another ADN backbone).")
        for method in ('loss', 'extract_feat'):
            if not callable(getattr(model, method, None)):
                raise TypeError(f'ADNDistillHook needs {type(model).__name__}.{method}(); use an mmdet detector or '
                                'an mmpretrain ImageClassifier.')
        if 'loss' in vars(model):
            raise RuntimeError('model.loss is already replaced (two ADNDistillHooks in custom_hooks?).')
        self.objective = SubPathDistillation(model, model.loss, **self.kwargs)
        model.loss = self.objective
        runner.logger.info(
            f'ADNDistillHook: training {self.objective.teacher} (task loss x {self.objective.alpha}) and '
            f'{self.objective.student} (KL x {1 - self.objective.alpha:g} on {list(self.objective.features)}).')

    def after_train(self, runner) -> None:
        model = self._unwrap(runner)
        if vars(model).get('loss') is self.objective:
            del model.loss
