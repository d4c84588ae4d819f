"""Algorithm 1 of ADN as a model's loss function (spec section 5; section 6 for detection).

Per call, on the same batch: the teacher sub-network (default: super-net) computes the model's own task loss
while its features are recorded; the student sub-network (default: base-net) runs the feature path (and, for a
detector by default, its own task losses: ``student_task_loss_weight``); the returned losses are ``alpha`` x every task loss plus ``(1 - alpha)`` x KL(teacher || student) per feature,
each under its own ``loss_...`` key. One backward of their sum trains both sub-networks. With ``sampled_subnets``
each call also trains that many sub-networks drawn between the two, as the student is trained (the sandwich rule
of slimmable networks, this project's option; docs/adn.md, "Sub-networks between the base-net and the super-net").
"""
import itertools
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..losses.kl_divergence import FEATURE_MODES, feature_kl, logits_kl
from ..utils.adaptive_depth import SkipType
from ..utils.feature_recorder import FeatureRecorder
from ..utils.subnet import adaptive_backbones, subnet

FeatureSpec = Union[str, dict]
# A detector's RoI head is not a module that runs as a whole in training; ``features=dict(roi_head='logits')``
# distills its box head's class logits (output 0) on the teacher's sampled RoIs.
ROI_HEAD = 'roi_head'
ROI_BOX_HEAD = 'roi_head.bbox_head'


def default_distill_features(model: nn.Module) -> Dict[str, dict]:
    """Detection: every level of the neck's output, softmax over positions per channel (it sends the base-net's
    twins about 3x the gradient of the channel softmax; docs/adn.md, "The FPN term"). Classification: pooled stage
    features (all stages but the last, which the logits cover) and the logits, as released."""
    if getattr(model, 'neck', None) is not None and not _is_classifier(model):
        return {'neck': dict(mode='spatial')}
    if _is_classifier(model):
        backbone = adaptive_backbones(model)[0]
        features = {f'backbone.{name}': dict(spec) for name, spec in backbone.distill_stage_features().items()}
        features['head'] = dict(mode='logits')
        return features
    raise ValueError(f'No default distillation features for {type(model).__name__}: give features=dict(...) '
                     "naming modules whose outputs to distill, e.g. dict(neck='channel').")


def default_student_holds(model: nn.Module, features: Dict[str, dict]) -> List[str]:
    """Detection: the neck, when its outputs are distilled. It is shared by both sub-networks, and the base-net's
    gradient would otherwise let it lower the KL by becoming blind to the backbone's depth; holding it cost the
    super-net 0.016 bbox mAP against training without the hook, where the unheld neck cost 0.054 (docs/adn.md,
    "Holding the neck"). Classification: nothing (the released recipe trains the head with its logits term)."""
    if _is_classifier(model):
        return []
    holds = []
    for module in ('neck', ROI_HEAD):
        if getattr(model, module, None) is not None and any(n == module or n.startswith(module + '.')
                                                             for n in features):
            holds.append(module)
    return holds


# The detection default of the base-net's own task-loss weight. Algorithm 1 gives the base-net none; at the
# budgets detectors are fine-tuned with here, the KL alone left it 0.018-0.130 bbox mAP below a network of its
# depth trained on its own, on the generated shapes and on real images, and its own task loss at this weight
# closed the gap on every data set measured (docs/adn.md, "The detection recipe").
DETECTION_STUDENT_TASK_LOSS_WEIGHT = 0.5


def default_student_task_loss_weight(model: nn.Module) -> float:
    """Detection: the base-net also gets its own task losses (``DETECTION_STUDENT_TASK_LOSS_WEIGHT``), this
    project's adaptation of Algorithm 1. Classification: none, Algorithm 1 as released."""
    return 0.0 if _is_classifier(model) else DETECTION_STUDENT_TASK_LOSS_WEIGHT


def _has_one_box_head(model: nn.Module) -> bool:
    """Faster / Mask R-CNN's RoI head: one box-RoI extractor (Cascade R-CNN has one per stage)."""
    from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
    return isinstance(getattr(getattr(model, ROI_HEAD, None), 'bbox_roi_extractor', None), BaseRoIExtractor)


def _is_classifier(model: nn.Module) -> bool:
    from mmpretrain.models.classifiers import ImageClassifier
    return isinstance(model, ImageClassifier)


def _as_tensors(output) -> List[torch.Tensor]:
    """The tensors of a module's output; non-tensor companions (e.g. a Swin stage's ``hw_shape``) are dropped."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        tensors = [o for o in output if isinstance(o, torch.Tensor)]
        if tensors and all(isinstance(o, (torch.Tensor, tuple, list, torch.Size)) for o in output):
            return tensors
    raise TypeError(f'Can only distill tensors or tuples of tensors, got {type(output).__name__}')


@contextmanager
def _weights_held(modules: Sequence[nn.Module]):
    """Run ``modules`` as fixed functions: their parameters get no gradient from what is computed inside (the
    gradient still flows through them to their inputs)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _scale(value, weight: float):
    if isinstance(value, (list, tuple)):
        return type(value)(v * weight for v in value)
    return value * weight


class SubPathDistillation:
    """Callable that replaces ``model.loss`` while ADNDistillHook is active (see ``ADNDistillHook``).

    Args:
        model: the detector / classifier (unwrapped) with an ADN backbone.
        task_loss: the model's original ``loss`` (bound method).
        features: module name -> ``mode`` or ``dict(mode=..., levels=None, weight=1.0)``, or a list of them (one
            KL term each, logged as ``loss_kl_<name>_<mode>``); modes are the feature modes of ``feature_kl``
            ('channel', 'spatial', 'pooled') and 'logits'; ``roi_head='logits'`` is a two-stage detector's box-head
            class logits on the teacher's sampled RoIs.
        alpha: weight of the teacher's task losses; KL terms get ``1 - alpha``.
        temperature: softmax temperature T (losses are multiplied by T^2).
        logits_topk: restrict the logits KL to the teacher's top-k classes.
        teacher, student: the pair of sub-networks trained (skip strings).
        student_task_loss_weight: weight of the student's own task loss. Default (None):
            ``default_student_task_loss_weight``, 0.5 for a detector, 0 (Algorithm 1 as released) for a classifier.
        student_holds: modules whose weights the student's pass uses but does not train: a KL over their outputs
            then trains the base-net's backbone path only, instead of also letting them lower it by becoming blind
            to the backbone's depth. Default (None): ``default_student_holds``, the neck of a detector; ``()``
            holds nothing.
    """

    def __init__(self,
                 model: nn.Module,
                 task_loss: Callable,
                 features: Optional[Dict[str, FeatureSpec]] = None,
                 alpha: float = 0.5,
                 temperature: float = 1.0,
                 logits_topk: Optional[int] = None,
                 teacher: SkipType = 'super',
                 student: SkipType = 'base',
                 student_task_loss_weight: Optional[float] = None,
                 student_holds: Optional[Sequence[str]] = None,
                 sampled_subnets: int = 0,
                 student_task_loss_interval: int = 1) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        self.model = model
        self.task_loss = task_loss
        self.features = self._normalise(features if features is not None else default_distill_features(model))
        self.alpha = alpha
        self.temperature = temperature
        self.logits_topk = logits_topk
        backbone = adaptive_backbones(model)[0]
        with backbone.switch(teacher):  # validates both skips now, not in the first iteration
            self.teacher = backbone.skip
        with backbone.switch(student):
            self.student = backbone.skip
        if self.teacher == self.student:
            raise ValueError(f'teacher and student are the same sub-network ({self.teacher}); nothing to distill.')
        if student_task_loss_weight is None:
            student_task_loss_weight = default_student_task_loss_weight(model)
        if student_task_loss_weight < 0:
            raise ValueError(f'student_task_loss_weight must be >= 0, got {student_task_loss_weight}')
        self.student_task_loss_weight = student_task_loss_weight
        if student_holds is None:
            student_holds = default_student_holds(model, self.features)
        modules = dict(model.named_modules())
        unknown = [name for name in student_holds if name not in modules]
        if unknown:
            raise ValueError(f'student_holds names no module of {type(model).__name__}: {unknown}')
        self.student_hold_names = list(student_holds)
        self.student_holds = [modules[name] for name in student_holds]
        self._student_needs_rois = ROI_HEAD in self.features
        if self._student_needs_rois and not _has_one_box_head(model):
            raise ValueError(f'features names {ROI_HEAD!r}, but {type(model).__name__} has no single box head '
                             'on RoIs (roi_head.bbox_roi_extractor, as in Faster / Mask R-CNN) whose logits could be '
                             'distilled; distill its neck only.')
        self._recorded = {name: ROI_BOX_HEAD if name == ROI_HEAD else name for name in self.features}
        self.recorder = FeatureRecorder(model, sorted(set(self._recorded.values())))
        self._student_needs_head = any(name == 'head' or name.startswith('head.') for name in self.features)
        if sampled_subnets < 0:
            raise ValueError(f'sampled_subnets must be >= 0, got {sampled_subnets}')
        self.between = self.subnets_between(self.teacher, self.student)
        if sampled_subnets and not self.between:
            raise ValueError(f'sampled_subnets={sampled_subnets}, but no sub-network lies between {self.teacher} and '
                             f'{self.student} (they differ in one stage); set sampled_subnets=0.')
        self.sampled_subnets = sampled_subnets
        if student_task_loss_interval < 1:
            raise ValueError(f'student_task_loss_interval must be >= 1, got {student_task_loss_interval}')
        self.student_task_loss_interval = student_task_loss_interval
        self._calls = 0

    @staticmethod
    def subnets_between(teacher: str, student: str) -> List[str]:
        """The skip strings that run each stage as ``teacher`` or as ``student`` does, neither of the two."""
        choices = [sorted({t, s}) for t, s in zip(teacher, student)]
        return [''.join(p) for p in itertools.product(*choices) if ''.join(p) not in (teacher, student)]

    def draw_subnets(self) -> List[str]:
        """This call's sampled sub-networks, uniform with replacement, from torch's generator (seeded by the
        runner's ``randomness``)."""
        picks = torch.randint(len(self.between), (self.sampled_subnets, )).tolist() if self.sampled_subnets else []
        return [self.between[i] for i in picks]

    @staticmethod
    def _normalise(features: Dict[str, Union[FeatureSpec, Sequence[FeatureSpec]]]) -> Dict[str, List[dict]]:
        """name -> its list of terms (a module may take several, e.g. ``['spatial', 'channel']``: each softmax is
        blind to a different constant offset of the map)."""
        out = {}
        for name, specs in features.items():
            specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
            out[name] = [SubPathDistillation._normalise_spec(name, spec) for spec in specs]
            modes = [spec['mode'] for spec in out[name]]
            if not modes or len(set(modes)) < len(modes):
                raise ValueError(f'feature {name!r}: give each mode at most once, got {modes}.')
        if not out:
            raise ValueError('features is empty: name at least one module whose output to distill.')
        return out

    @staticmethod
    def _normalise_spec(name: str, spec: FeatureSpec) -> dict:
        spec = dict(mode=spec) if isinstance(spec, str) else dict(spec)
        mode = spec.setdefault('mode', 'channel')
        if mode not in FEATURE_MODES + ('logits', ):
            raise ValueError(f"Unknown mode {mode!r} for feature {name!r}; choose from "
                             f"{FEATURE_MODES + ('logits', )}.")
        unknown = set(spec) - {'mode', 'levels', 'weight', 'normalize'}
        if unknown:
            raise ValueError(f'Unknown option(s) {sorted(unknown)} for feature {name!r}; '
                             "allowed: 'mode', 'levels', 'weight', 'normalize'.")
        if spec.get('normalize') and mode == 'logits':
            raise ValueError(f"normalize applies to feature maps, not to logits (feature {name!r}).")
        if name == ROI_HEAD:
            if mode != 'logits' or spec.get('levels') not in (None, [0], (0, )):
                raise ValueError(f"feature {ROI_HEAD!r} is the box head's class logits: give it mode='logits' "
                                 f'and no levels, got {spec}.')
            spec['levels'] = [0]  # (cls_score, bbox_pred)
        spec.setdefault('levels', None)
        spec.setdefault('weight', 1.0)
        return spec

    @property
    def distills(self) -> bool:
        return self.alpha < 1.0 or self.student_task_loss_weight > 0

    @contextmanager
    def _rois_recorded(self):
        """Keeps the RoIs of the teacher's box head (its sampled proposals), for the student's box head to
        classify the same regions: the detector's form of the logits term."""
        if not self._student_needs_rois:
            yield None
            return
        rois = []
        handle = self.model.roi_head.bbox_roi_extractor.register_forward_pre_hook(
            lambda module, args: rois.append(args[1].detach()))
        try:
            yield rois
        finally:
            handle.remove()

    def __call__(self, inputs, data_samples, *args, **kwargs) -> Dict[str, torch.Tensor]:
        with subnet(self.model, self.teacher), self.recorder.record() as recorded, self._rois_recorded() as rois:
            teacher_losses = self.task_loss(inputs, data_samples, *args, **kwargs)
            teacher_features = {name: recorded.last(module) for name, module in self._recorded.items()}
        losses = {k: (_scale(v, self.alpha) if 'loss' in k else v) for k, v in teacher_losses.items()}
        if not self.distills:
            return losses
        task_weight = 0.0
        if self.student_task_loss_weight > 0 and self._calls % self.student_task_loss_interval == 0:
            task_weight = self.student_task_loss_weight * self.student_task_loss_interval
        self._calls += 1
        passes = (teacher_features, rois, inputs, data_samples, task_weight, args, kwargs)
        losses.update(self._student_losses(self.student, *passes))
        for i, skip in enumerate(self.draw_subnets()):
            prefix = 'mid_' if self.sampled_subnets == 1 else f'mid{i}_'
            sampled = self._student_losses(skip, *passes)
            losses.update({prefix + k.replace('base_', '', 1): v for k, v in sampled.items()})
        return losses

    def _student_losses(self, skip: str, teacher_features, rois, inputs, data_samples, task_weight: float, args,
                        kwargs) -> dict:
        """One sub-network's terms: KL to the teacher's features, and its own task losses x ``task_weight`` (keys
        ``base_...``) when that is > 0."""
        losses = {}
        with subnet(self.model, skip), self.recorder.record() as recorded, _weights_held(self.student_holds):
            if task_weight > 0:
                student_losses = self.task_loss(inputs, data_samples, *args, **kwargs)
                for k, v in student_losses.items():
                    if 'loss' in k:
                        losses[f'base_{k}'] = _scale(v, task_weight)
                if self._student_needs_rois:  # its own loss classified its own RoIs; now the teacher's
                    self.model.roi_head._bbox_forward(self.model.extract_feat(inputs), rois[0])
            else:
                feats = self.model.extract_feat(inputs)
                if self._student_needs_head:
                    self.model.head(feats)
                if self._student_needs_rois:
                    self.model.roi_head._bbox_forward(feats, rois[0])
            student_features = {name: recorded.last(module) for name, module in self._recorded.items()}

        kl_weight = 1.0 - self.alpha
        for name, specs in self.features.items():
            teacher_out = _as_tensors(teacher_features[name])
            student_out = _as_tensors(student_features[name])
            for spec in specs:
                key = 'loss_kl_' + name.replace('.', '_') + (f'_{spec["mode"]}' if len(specs) > 1 else '')
                levels = range(len(teacher_out)) if spec['levels'] is None else spec['levels']
                for level in levels:
                    t, s = teacher_out[level], student_out[level]
                    if spec['mode'] == 'logits':
                        kl = logits_kl(t, s, self.temperature, self.logits_topk)
                    else:
                        kl = feature_kl(t, s, spec['mode'], self.temperature, spec.get('normalize', False))
                    suffix = f'_{level}' if len(teacher_out) > 1 and name != ROI_HEAD else ''
                    losses[key + suffix] = kl * (kl_weight * spec['weight'])
        return losses
