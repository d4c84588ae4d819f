"""Switch on ADN's Algorithm-1 training from a config: ``custom_hooks=[dict(type='ADNDistillHook')]``.

Why the hook replaces ``model.loss``: a runner hook runs around ``train_step``, whose forward, backward and
optimizer step happen in one call, so it cannot change the loss afterwards. Every wrapper's ``train_step``
(``BaseModel`` and ``MMDistributedDataParallel`` alike) ends in ``model(..., mode='loss')``, which calls
``model.loss``. Setting an instance attribute ``loss`` on the unwrapped model puts the objective on that path
for every detector and classifier, wrapped or not, with no subclass. It holds no parameters, so nothing of the
hook reaches the state dict, and ``after_train`` removes it.
"""
from typing import Dict, List, Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import MODELS

from mmadn.models.distillers import SubPathDistillation
from mmadn.models.utils import AdaptiveDepthMixin, adaptive_backbones
from mmadn.models.utils.adaptive_depth import SkipType, trains_every_path
from mmadn.registry import register_hook


@register_hook
class ADNDistillHook(Hook):
    """Trains the super-net on the task and pulls the base-net's features to the super-net's.

    Args:
        alpha (float): weight of the super-net's task losses; the KL terms get ``1 - alpha``. Default 0.5.
        temperature (float): softmax temperature T; terms are scaled by T^2. Default 1 (as released).
        features (dict, optional): module name -> mode (``'channel'``, ``'spatial'``, ``'pooled'``,
            ``'logits'``) or ``dict(mode=..., levels=..., weight=..., normalize=...)``, or a list of them (one
            term per mode, e.g. ``neck=['spatial', 'channel']``). Default: detection, every
            neck level with a softmax over positions per channel (docs/adn.md, "The FPN term"); classification,
            the pooled stage features and the logits. ``roi_head='logits'``: a two-stage detector's box-head class
            logits on the teacher's sampled RoIs.
        logits_topk (int, optional): restrict the logits KL to the super-net's top-k classes (500 in the
            released ImageNet recipe).
        teacher, student (str): the pair of sub-networks trained. Default ``'super'`` and ``'base'``.
        student_task_loss_weight (float, optional): the student's own task loss weight. Default: 0.5 for a
            detector (this project's detection recipe, docs/adn.md "The detection recipe"), 0 for a classifier
            (Algorithm 1 as released); 0 gives a detector the paper's form.
        student_holds (sequence of str, optional): modules whose weights the student's pass uses without training
            them. Default: a detector's neck when its outputs are distilled (docs/adn.md, "Holding the neck"); ``()``
            holds nothing.
        sampled_subnets (int): sub-networks drawn per step between teacher and student and trained as the
            student is (the sandwich rule; docs/adn.md, "Sub-networks between the base-net and the super-net").
            Default 0 (Algorithm 1's two ends only).
        student_task_loss_interval (int): those task losses every N-th step only, at N x the weight (the KL terms
            every step). Default 1.
    """

    priority = 'NORMAL'

    def __init__(self,
                 alpha: float = 0.5,
                 temperature: float = 1.0,
                 features: Optional[Dict[str, Union[str, dict, list]]] = None,
                 logits_topk: Optional[int] = None,
                 teacher: str = 'super',
                 student: str = 'base',
                 student_task_loss_weight: Optional[float] = None,
                 student_holds: Optional[Sequence[str]] = None,
                 sampled_subnets: int = 0,
                 student_task_loss_interval: int = 1) -> None:
        self.kwargs = dict(alpha=alpha, temperature=temperature, features=features, logits_topk=logits_topk,
                           teacher=teacher, student=student, student_task_loss_weight=student_task_loss_weight,
                           student_holds=None if student_holds is None else tuple(student_holds),
                           sampled_subnets=sampled_subnets,
                           student_task_loss_interval=student_task_loss_interval)
        self.objective: Optional[SubPathDistillation] = None

    def trained_subnets(self) -> List[SkipType]:
        """The sub-networks every training step runs with a gradient (the student only when it is distilled)."""
        kw = self.kwargs
        # SubPathDistillation.distills. An unset student weight (the model's default, not known from the config)
        # counts as 0: with alpha < 1 it changes nothing, with alpha = 1 DDP then looks for unused parameters,
        # which is safe either way.
        distills = kw['alpha'] < 1.0 or (kw['student_task_loss_weight'] or 0) > 0
        return [kw['teacher'], kw['student']] if distills else [kw['teacher']]

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
            f'{self.objective.student} (KL x {1 - self.objective.alpha:g} on {list(self.objective.features)}'
            + (f', its own task loss x {self.objective.student_task_loss_weight:g}'
               + (f' (x {self.objective.student_task_loss_weight * self.objective.student_task_loss_interval:g} '
                  f'every {self.objective.student_task_loss_interval} steps)'
                  if self.objective.student_task_loss_interval > 1 else '') + ', beyond Algorithm 1'
               if self.objective.student_task_loss_weight > 0 else '')
            + (f'; its pass holds {self.objective.student_hold_names}' if self.objective.student_hold_names else '')
            + (f'; and {self.objective.sampled_subnets} sub-network(s) drawn per step from '
               f'{len(self.objective.between)} between them, trained as {self.objective.student} is'
               if self.objective.sampled_subnets else '')
            + ').')

    def after_train(self, runner) -> None:
        model = self._unwrap(runner)
        if vars(model).get('loss') is self.objective:
            del model.loss


def unused_parameters_reason(cfg) -> Optional[str]:
    """Why a training config leaves parameters of its ADN backbone without a gradient in every step (``None``:
    it does not), read from the config alone: DDP must know before the model runs, and its wrapper is built
    before any hook exists. The trained sub-networks are the ADNDistillHook's teacher and student, or without
    the hook the backbone's own ``skip``. (Distilled features that do not depend on every stage also leave
    twins unused; that is not visible here.)"""
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    backbone_type = backbone.get('type')
    if isinstance(backbone_type, str):
        backbone_type = MODELS.get(backbone_type.split('.')[-1])  # ADN backbones are in both registries
    if not (isinstance(backbone_type, type) and issubclass(backbone_type, AdaptiveDepthMixin)):
        return None
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') in ('ADNDistillHook', ADNDistillHook)]
    if hooks:
        hook = ADNDistillHook(**{k: v for k, v in hooks[0].items() if k not in ('type', 'priority')})
        subnets = hook.trained_subnets()
        trained = f'ADNDistillHook trains {" and ".join(map(str, subnets))}'
    else:
        subnets = [backbone.get('skip', 'super')]
        trained = f'without ADNDistillHook only the backbone\'s skip ({subnets[0]}) trains'
    if trains_every_path(subnets):
        return None
    return f'{trained}, which leaves skippable blocks or twin norms without a gradient'
