"""Algorithm 1 of ADN as a model's loss function (spec section 5; section 6 for detection).

Per call, on the same batch: the teacher sub-network (default: super-net) computes the model's own task loss
while its features are recorded; the student sub-network (default: base-net) runs the feature path (and, for a
detector by default, its own task losses: ``student_task_loss_weight``); the returned losses are ``alpha`` x every
task loss plus ``(1 - alpha)`` x KL(teacher || student) per feature, each under its own ``loss_...`` key. One
backward of their sum trains both sub-networks. Where each feature comes from is its source (``feature_sources``).
With ``sampled_subnets`` each call also trains that many sub-networks drawn between the two, as the student is
trained (the sandwich rule of slimmable networks, this project's option; docs/adn.md, "Sub-networks between the
base-net and the super-net").
"""
import inspect
import itertools
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmpretrain.models.classifiers import ImageClassifier
from torch import nn

from ..losses.kl_divergence import FEATURE_MODES, feature_kl, logits_kl
from ..utils.adaptive_depth import SkipType
from ..utils.feature_recorder import FeatureRecorder
from ..utils.subnet import adaptive_backbones, subnet
from .feature_sources import ROI_HEAD, RoILogits, feature_source
from .student_heads import StudentHeads

FeatureSpec = Union[str, dict]


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


# The detection default of alpha, the teacher's task-loss weight (the KL terms get 1 - alpha). At 0.5 the KL pull
# cost the super-net 0.019 bbox mAP on photo objects (two seeds) against a network trained alone; 0.7 closed that
# and held the demo and glyph clutter, two seeds each (docs/adn.md, "The detection recipe").
DETECTION_ALPHA = 0.7


def default_alpha(model: nn.Module) -> float:
    """Detection: ``DETECTION_ALPHA``, this project's adaptation. Classification: 0.5, Algorithm 1 as released."""
    return 0.5 if _is_classifier(model) else DETECTION_ALPHA


def default_student_task_loss_weight(model: nn.Module) -> float:
    """Detection: the base-net also gets its own task losses (``DETECTION_STUDENT_TASK_LOSS_WEIGHT``), this
    project's adaptation of Algorithm 1. Classification: none, Algorithm 1 as released."""
    return 0.0 if _is_classifier(model) else DETECTION_STUDENT_TASK_LOSS_WEIGHT


def _is_classifier(model: nn.Module) -> bool:
    return isinstance(model, ImageClassifier)


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


def _distills(alpha: float, student_task_loss_weight: float) -> bool:
    """Whether the student runs at all: for its KL terms (``alpha < 1``) or for its own task losses."""
    return alpha < 1.0 or student_task_loss_weight > 0


def _check_model(model: nn.Module) -> None:
    """An ADN backbone to switch, and the loss and feature path that the two passes call."""
    if not adaptive_backbones(model):
        raise TypeError(f'Algorithm 1 (ADNDistillHook) needs a model with an adaptive-depth backbone, but '
                        f'{type(model).__name__}.backbone is {type(getattr(model, "backbone", None)).__name__}; '
                        "set model.backbone.type='ResNetADN' (or another ADN backbone).")
    for method in ('loss', 'extract_feat'):
        if not callable(getattr(model, method, None)):
            raise TypeError(f'Algorithm 1 (ADNDistillHook) needs {type(model).__name__}.{method}(); use an mmdet '
                            'detector or an mmpretrain ImageClassifier.')


class SubPathDistillation:
    """Algorithm 1 as a callable that replaces ``model.loss`` (``ADNDistillHook`` installs it from a config).

    Args:
        model: the detector / classifier (unwrapped) with an ADN backbone.
        task_loss: the model's original ``loss`` (bound method).
        features (dict, optional): module name -> mode (``'channel'``, ``'spatial'``, ``'pooled'``, ``'logits'``)
            or ``dict(mode=..., levels=None, weight=1.0, normalize=False)``, or a list of them (one KL term each,
            logged as ``loss_kl_<name>_<mode>``, e.g. ``neck=['spatial', 'channel']``). ``roi_head='logits'``: a
            two-stage detector's box-head class logits on the teacher's sampled RoIs (``RoILogits``). Default
            (``default_distill_features``): detection, every neck level with a softmax over positions per channel
            (docs/adn.md, "The FPN term"); classification, the pooled stage features and the logits.
        alpha (float, optional): weight of the teacher's task losses; the KL terms get ``1 - alpha``. Default
            (``default_alpha``): 0.7 for a detector (this project's detection recipe), 0.5 for a classifier
            (Algorithm 1 as released).
        temperature (float): softmax temperature T; the KL terms are scaled by T^2. Default 1 (as released).
        logits_topk (int, optional): restrict the logits KL to the teacher's top-k classes (500 in the released
            ImageNet recipe).
        teacher, student (str): the pair of sub-networks trained (skip strings). Default ``'super'``, ``'base'``.
        student_task_loss_weight (float, optional): weight of the student's own task losses. Default
            (``default_student_task_loss_weight``): 0.5 for a detector (this project's detection recipe, docs/adn.md
            "The detection recipe"), 0 for a classifier (Algorithm 1 as released); 0 gives a detector the paper's
            form.
        student_holds (sequence of str, optional): modules whose weights the student's pass uses but does not
            train: a KL over their outputs then trains the student's backbone path only, instead of also letting
            them lower it by becoming blind to the backbone's depth. Default (``default_student_holds``): a
            detector's neck when its outputs are distilled (docs/adn.md, "Holding the neck"); ``()`` holds nothing.
        sampled_subnets (int): sub-networks drawn per call between teacher and student and trained as the student
            is (the sandwich rule; docs/adn.md, "Sub-networks between the base-net and the super-net"). Default 0
            (Algorithm 1's two ends only).
        student_task_loss_interval (int): the student's task losses every N-th call only, at N x the weight (the
            KL terms every call). Default 1.
        student_heads (dict, optional): a lighter pass through a two-stage detector's RoI heads for the student's
            task losses (``StudentHeads``): ``dict(mask=False, rois=64)`` leaves the mask branch out and samples
            64 RoIs per image for the box head. Default None (the heads as configured).
    """

    def __init__(self,
                 model: nn.Module,
                 task_loss: Callable,
                 features: Optional[Dict[str, FeatureSpec]] = None,
                 alpha: Optional[float] = None,
                 temperature: float = 1.0,
                 logits_topk: Optional[int] = None,
                 teacher: SkipType = 'super',
                 student: SkipType = 'base',
                 student_task_loss_weight: Optional[float] = None,
                 student_holds: Optional[Sequence[str]] = None,
                 sampled_subnets: int = 0,
                 student_task_loss_interval: int = 1,
                 student_heads: Optional[dict] = None) -> None:
        _check_model(model)
        if alpha is None:
            alpha = default_alpha(model)
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
        self.sources = {name: feature_source(model, name) for name in self.features}
        self.recorder = FeatureRecorder(model, sorted({source.recorded_module for source in self.sources.values()}))
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
        self.student_heads = StudentHeads.build(model, student_heads)
        self._calls = 0

    @classmethod
    def options(cls, cfg: dict) -> dict:
        """``cfg`` (e.g. ADNDistillHook's keyword arguments) with every option's default filled in. A name that is
        no option fails here, when the config is read, not when training starts."""
        names = [name for name in inspect.signature(cls).parameters if name not in ('model', 'task_loss')]
        unknown = sorted(set(cfg) - set(names))
        if unknown:
            raise TypeError(f'Unknown option(s) {unknown} of ADNDistillHook / SubPathDistillation; the options are '
                            f'{names}.')
        bound = inspect.signature(cls).bind(None, None, **cfg)
        bound.apply_defaults()
        return {name: bound.arguments[name] for name in names}

    @classmethod
    def trained_subnets(cls, cfg: dict) -> List[SkipType]:
        """The sub-networks a distiller with options ``cfg`` trains in every step (the student only when it runs),
        read from the config alone: DDP must know before any model exists. The sampled sub-networks run each stage
        as one of the two ends does, so they add nothing here."""
        options = cls.options(cfg)
        # An unset alpha or student weight (the model's default, not known from the config) counts as below 1 and
        # as 0: both defaults have alpha < 1, and the student then runs whatever its weight.
        alpha = 0.5 if options['alpha'] is None else options['alpha']
        distills = _distills(alpha, options['student_task_loss_weight'] or 0)
        return [options['teacher'], options['student']] if distills else [options['teacher']]

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
            RoILogits.check_spec(spec)
        spec.setdefault('levels', None)
        spec.setdefault('weight', 1.0)
        return spec

    @property
    def distills(self) -> bool:
        return _distills(self.alpha, self.student_task_loss_weight)

    def summary(self) -> str:
        """What is trained, in one line for the log."""
        weight, interval = self.student_task_loss_weight, self.student_task_loss_interval
        return (f'training {self.teacher} (task loss x {self.alpha}) and '
                f'{self.student} (KL x {1 - self.alpha:g} on {list(self.features)}'
                + (f', its own task loss x {weight:g}'
                   + (f' (x {weight * interval:g} every {interval} steps)' if interval > 1 else '')
                   + (f' through lighter heads ({self.student_heads.summary()})' if self.student_heads else '')
                   + ', beyond Algorithm 1' if weight > 0 else '')
                + (f'; its pass holds {self.student_hold_names}' if self.student_hold_names else '')
                + (f'; and {self.sampled_subnets} sub-network(s) drawn per step from {len(self.between)} between '
                   f'them, trained as {self.student} is' if self.sampled_subnets else '')
                + ')')

    def __call__(self, inputs, data_samples, *args, **kwargs) -> Dict[str, torch.Tensor]:
        """Algorithm 1 on one batch: the teacher's task losses x ``alpha``; then the student's (and each sampled
        sub-network's) KL to the teacher's features x ``1 - alpha``, and its own task losses when they count."""
        teacher_losses, teacher_features = self._teacher_pass(inputs, data_samples, args, kwargs)
        losses = {k: (_scale(v, self.alpha) if 'loss' in k else v) for k, v in teacher_losses.items()}
        if not self.distills:
            return losses
        batch = (inputs, data_samples, args, kwargs)
        task_weight = self._student_task_weight()
        losses.update(self._student_losses(self.student, teacher_features, task_weight, *batch))
        for i, skip in enumerate(self.draw_subnets()):
            prefix = 'mid_' if self.sampled_subnets == 1 else f'mid{i}_'
            sampled = self._student_losses(skip, teacher_features, task_weight, *batch)
            losses.update({prefix + k.replace('base_', '', 1): v for k, v in sampled.items()})
        return losses

    def _teacher_pass(self, inputs, data_samples, args, kwargs):
        """The model's own task losses under the teacher, and the teacher's features."""
        with ExitStack() as stack:
            stack.enter_context(subnet(self.model, self.teacher))
            stack.enter_context(self.recorder.record())
            for source in self.sources.values():
                stack.enter_context(source.teacher_pass())
            losses = self.task_loss(inputs, data_samples, *args, **kwargs)
            features = self._recorded_features()
        return losses, features

    def _student_task_weight(self) -> float:
        """This call's weight of the student's own task losses: on every ``student_task_loss_interval``-th call,
        x the interval; 0 on the others."""
        weight = 0.0
        if self.student_task_loss_weight > 0 and self._calls % self.student_task_loss_interval == 0:
            weight = self.student_task_loss_weight * self.student_task_loss_interval
        self._calls += 1
        return weight

    def _student_losses(self, skip: str, teacher_features, task_weight: float, inputs, data_samples, args,
                        kwargs) -> dict:
        """One sub-network's terms: its own task losses x ``task_weight`` (keys ``base_...``) when that is > 0,
        and its KL to the teacher's features."""
        with subnet(self.model, skip), self.recorder.record(), _weights_held(self.student_holds):
            losses = self._student_pass(task_weight, inputs, data_samples, args, kwargs)
            student_features = self._recorded_features()
        losses.update(self._kl_terms(teacher_features, student_features))
        return losses

    def _student_pass(self, task_weight: float, inputs, data_samples, args, kwargs) -> dict:
        """The whole model when the student's task losses count, else only as far as the features reach (a
        classifier's head when a feature lies in it); then what each feature source adds."""
        losses, feats = {}, None
        if task_weight > 0:
            with self.student_heads.applied() if self.student_heads else nullcontext():
                task_losses = self.task_loss(inputs, data_samples, *args, **kwargs)
            for k, v in task_losses.items():
                if 'loss' in k:
                    losses[f'base_{k}'] = _scale(v, task_weight)
        else:
            feats = self.model.extract_feat(inputs)
            if self._student_needs_head:
                self.model.head(feats)
        for source in self.sources.values():
            source.complete_student_pass(inputs, feats)
        return losses

    def _recorded_features(self) -> Dict[str, List[torch.Tensor]]:
        return {name: source.tensors(self.recorder) for name, source in self.sources.items()}

    def _kl_terms(self, teacher_features, student_features) -> Dict[str, torch.Tensor]:
        """``(1 - alpha)`` x KL(teacher || student) per feature, mode and level."""
        losses = {}
        kl_weight = 1.0 - self.alpha
        for name, specs in self.features.items():
            teacher_out, student_out = teacher_features[name], student_features[name]
            for spec in specs:
                key = 'loss_kl_' + name.replace('.', '_') + (f'_{spec["mode"]}' if len(specs) > 1 else '')
                levels = range(len(teacher_out)) if spec['levels'] is None else spec['levels']
                for level in levels:
                    t, s = teacher_out[level], student_out[level]
                    if spec['mode'] == 'logits':
                        kl = logits_kl(t, s, self.temperature, self.logits_topk)
                    else:
                        kl = feature_kl(t, s, spec['mode'], self.temperature, spec.get('normalize', False))
                    suffix = f'_{level}' if len(teacher_out) > 1 else ''
                    losses[key + suffix] = kl * (kl_weight * spec['weight'])
        return losses
