"""Where a distilled feature comes from: what the teacher's pass keeps and what the student's pass must run.

Algorithm 1 compares a feature of the teacher with the same feature of the student. Most are a module's output that
both passes compute anyway (the neck, a backbone stage, a classifier's head): :class:`ModuleOutput`. A two-stage
detector's box-head logits are not: each pass samples its own proposals, so the student must classify the regions
the teacher classified: :class:`RoILogits`. One class per kind keeps ``SubPathDistillation.__call__`` the algorithm.
"""
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from torch import nn

from ..utils.feature_recorder import FeatureRecorder

# The feature name under which ``features=dict(roi_head='logits')`` distills the box head's class logits.
ROI_HEAD = 'roi_head'


def as_tensors(output) -> List[torch.Tensor]:
    """The tensors of a module's output; non-tensor companions (e.g. a Swin stage's ``hw_shape``) are dropped."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        tensors = [o for o in output if isinstance(o, torch.Tensor)]
        if tensors and all(isinstance(o, (torch.Tensor, tuple, list, torch.Size)) for o in output):
            return tensors
    raise TypeError(f'Can only distill tensors or tuples of tensors, got {type(output).__name__}')


class ModuleOutput:
    """The output of the module ``name`` (a ``named_modules()`` name), recorded in each pass by forward hook."""

    def __init__(self, name: str) -> None:
        self.recorded_module = name

    @contextmanager
    def teacher_pass(self) -> Iterator[None]:
        """Nothing to keep beyond the recorded output."""
        yield

    def complete_student_pass(self, inputs: torch.Tensor, feats: Optional[tuple]) -> None:
        """Nothing to run: the student's pass reaches the module."""

    def tensors(self, recorder: FeatureRecorder) -> List[torch.Tensor]:
        return as_tensors(recorder.last(self.recorded_module))


class RoILogits:
    """A two-stage detector's box-head class logits on the teacher's sampled RoIs (``roi_head='logits'``).

    The RoI head does not run as a whole in training, and the student's own pass would sample other proposals:
    the teacher's pass keeps the RoIs its box head classified (the box-RoI extractor's input), and the student's
    box head classifies those same RoIs from the student's features.
    """

    recorded_module = 'roi_head.bbox_head'

    def __init__(self, model: nn.Module) -> None:
        if not has_one_box_head(model):
            raise ValueError(f'features names {ROI_HEAD!r}, but {type(model).__name__} has no single box head '
                             'on RoIs (roi_head.bbox_roi_extractor, as in Faster / Mask R-CNN) whose logits could be '
                             'distilled; distill its neck only.')
        self.model = model
        self.rois: Optional[torch.Tensor] = None

    @staticmethod
    def check_spec(spec: dict) -> None:
        if spec['mode'] != 'logits' or spec.get('levels') not in (None, [0], (0, )):
            raise ValueError(f"feature {ROI_HEAD!r} is the box head's class logits: give it mode='logits' "
                             f'and no levels, got {spec}.')

    @contextmanager
    def teacher_pass(self) -> Iterator[None]:
        """Keeps the RoIs of the box head's first call (a mask head that shares the extractor comes second)."""
        rois = []
        handle = self.model.roi_head.bbox_roi_extractor.register_forward_pre_hook(
            lambda module, args: rois.append(args[1].detach()))
        try:
            yield
        finally:
            handle.remove()
        self.rois = rois[0]

    def complete_student_pass(self, inputs: torch.Tensor, feats: Optional[tuple]) -> None:
        """Classify the teacher's RoIs; ``feats`` is None when the student's task loss ran (on its own RoIs)."""
        if feats is None:
            feats = self.model.extract_feat(inputs)
        # mmdet's StandardRoIHead has no public call that classifies given RoIs (``predict_bbox`` proposes its own,
        # ``bbox_loss`` samples): ``_bbox_forward(x, rois)`` is that step, RoI extractor + box head, in mmdet 3.x.
        self.model.roi_head._bbox_forward(feats, self.rois)

    def tensors(self, recorder: FeatureRecorder) -> List[torch.Tensor]:
        return as_tensors(recorder.last(self.recorded_module))[:1]  # (cls_score, bbox_pred): the class logits


def has_one_box_head(model: nn.Module) -> bool:
    """Faster / Mask R-CNN's RoI head: one box-RoI extractor (Cascade R-CNN has one per stage)."""
    return isinstance(getattr(getattr(model, ROI_HEAD, None), 'bbox_roi_extractor', None), BaseRoIExtractor)


def feature_source(model: nn.Module, name: str):
    """The source of the feature ``name`` of ``features``."""
    return RoILogits(model) if name == ROI_HEAD else ModuleOutput(name)
