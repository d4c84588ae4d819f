"""A cheaper pass through a two-stage detector's heads for the student's own task losses.

In the detection recipe the base-net's pass runs the whole detector again for its task losses, which is most of
what the recipe costs over Algorithm 1 (docs/adn.md, "The detection recipe"). Its RoI heads can be made lighter
for that pass only: fewer RoIs sampled per image for the box head, and the mask branch left out (the teacher's pass
still trains every head in full, so no head goes untrained).
"""
from contextlib import contextmanager
from typing import Optional

from torch import nn

STUDENT_HEAD_OPTIONS = ('mask', 'rois')


class StudentHeads:
    """What the student's task pass runs of ``model.roi_head``: ``mask`` (bool) whether its mask branch runs, and
    ``rois`` (int, optional) how many RoIs per image its box head samples (None: the config's
    ``train_cfg.rcnn.sampler.num``)."""

    def __init__(self, model: nn.Module, mask: bool = True, rois: Optional[int] = None) -> None:
        roi_head = getattr(model, 'roi_head', None)
        if (not mask or rois is not None) and getattr(roi_head, 'bbox_sampler', None) is None:
            raise ValueError(f'student_heads changes the RoI heads of a two-stage detector (Faster / Mask R-CNN); '
                             f'{type(model).__name__} has no roi_head with a box sampler. Leave student_heads unset.')
        if not mask and getattr(roi_head, 'mask_head', None) is None:
            raise ValueError(f'student_heads=dict(mask=False), but {type(model).__name__} has no mask branch.')
        if rois is not None and rois < 1:
            raise ValueError(f'student_heads rois must be >= 1 (RoIs per image), got {rois}')
        self.roi_head, self.mask, self.rois = roi_head, mask, rois

    @classmethod
    def build(cls, model: nn.Module, cfg: Optional[dict]) -> Optional['StudentHeads']:
        """None when ``cfg`` changes nothing; an unknown key fails with the options listed."""
        if not cfg:
            return None
        if not isinstance(cfg, dict):
            raise TypeError(f'student_heads must be a dict such as dict(mask=False, rois=64), got {cfg!r}; on the '
                            'command line: --cfg-options custom_hooks.0.student_heads.mask=False '
                            'custom_hooks.0.student_heads.rois=64')
        unknown = sorted(set(cfg) - set(STUDENT_HEAD_OPTIONS))
        if unknown:
            raise ValueError(f'student_heads takes {list(STUDENT_HEAD_OPTIONS)}, got {unknown}')
        return cls(model, **cfg)

    def summary(self) -> str:
        parts = (['no mask branch'] if not self.mask else []) + ([f'{self.rois} RoIs / image'] if self.rois else [])
        return ', '.join(parts)

    @contextmanager
    def applied(self):
        """The lighter heads for the duration of one student pass; the model's own afterwards, whatever happens."""
        sampler = self.roi_head.bbox_sampler
        num, mask_head = sampler.num, getattr(self.roi_head, 'mask_head', None)
        try:
            if self.rois is not None:
                sampler.num = self.rois
            if not self.mask:
                self.roi_head.mask_head = None  # mmdet's StandardRoIHead.with_mask reads this attribute
            yield
        finally:
            sampler.num = num
            if not self.mask:
                self.roi_head.mask_head = mask_head
