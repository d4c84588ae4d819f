"""The ODN classifier: stem, blocks 1..d, global pooling and head d, for any depth level d (ODN spec, "Model").

``level`` selects the depth used by ``predict``, ``tensor`` mode and the loss; it is a plain attribute (set it
in a config as ``model.level=2`` to evaluate a trained model at depth 2). ``supervise_all_levels`` is the
warm-up loss: every level's cross-entropy summed with equal weight.
"""
from typing import List, Optional, Sequence

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from mmadn.registry import register_model


@register_model
class ODNClassifier(ImageClassifier):
    """An ``ImageClassifier`` whose backbone can stop after any block and whose head has one classifier per level.

    Args:
        backbone (dict): An ``ODNResNet`` (anything with ``num_levels``, ``level_channels`` and
            ``forward(x, levels)``).
        neck (dict): Pools each level's feature map. Defaults to ``GlobalAveragePooling``.
        head (dict): An ``ODNClsHead``; its ``in_channels`` are filled from the backbone.
        level (int, optional): Depth level used for prediction and for the single-level loss.
            Defaults to the full depth.
        supervise_all_levels (bool): Loss = sum of every level's cross-entropy (the warm-up). Computed from
            one forward that keeps each block's output: the gradients equal those of one forward per level.
        **kwargs: The rest of ``ImageClassifier``'s arguments (``pretrained``, ``train_cfg``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = dict(type='GlobalAveragePooling'),
                 head: Optional[dict] = None,
                 level: Optional[int] = None,
                 supervise_all_levels: bool = False,
                 **kwargs):
        if not isinstance(backbone, nn.Module):
            backbone = MODELS.build(backbone)
        if not hasattr(backbone, 'level_channels'):
            raise TypeError(f'ODNClassifier needs a backbone that can stop after any block (ODNResNet), got '
                            f'{type(backbone).__name__}')
        if head is None:
            raise ValueError("ODNClassifier needs a head, e.g. head=dict(type='ODNClsHead', "
                             "head=dict(type='LinearClsHead', num_classes=10))")
        if isinstance(head, dict):
            head = dict(head)
            head.setdefault('type', 'ODNClsHead')
            head.setdefault('in_channels', backbone.level_channels)
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        if getattr(self.head, 'num_levels', None) != self.num_levels:
            raise ValueError(f'the head has {getattr(self.head, "num_levels", None)} level heads but the backbone '
                             f'{self.num_levels} levels; use an ODNClsHead without in_channels')
        self.level = self.num_levels if level is None else level
        self.supervise_all_levels = supervise_all_levels

    @property
    def num_levels(self) -> int:
        return self.backbone.num_levels

    @property
    def level(self) -> int:
        return self._level

    @level.setter
    def level(self, level: int) -> None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(f'level must be an int in [1, {self.num_levels}], got {level!r}')
        self._level = self.backbone.check_levels(level)[0]

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck', levels: Optional[Sequence[int]] = None):
        """Features of ``levels`` (default: the current level) after the backbone, neck or pre-logits."""
        levels = self.backbone.check_levels(self.level if levels is None else levels)
        x = self.backbone(inputs, levels=levels)
        if stage == 'backbone':
            return x
        if self.with_neck:
            x = self.neck(x)
        if stage == 'neck':
            return x
        if stage != 'pre_logits':
            raise ValueError(f'stage must be "backbone", "neck" or "pre_logits", got {stage!r}')
        return self.head.level_head(levels[-1]).pre_logits(x)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor',
                level: Optional[int] = None):
        """As ``ImageClassifier.forward``, at ``level`` (default: ``self.level``)."""
        level = self.level if level is None else self.backbone.check_levels(level)[0]
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs, levels=(level, )), level)
        if mode == 'loss':
            return self.loss(inputs, data_samples, level=level)
        if mode == 'predict':
            return self.predict(inputs, data_samples, level=level)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample], level: Optional[int] = None) -> dict:
        levels = tuple(range(1, self.num_levels + 1)) if self.supervise_all_levels else (level or self.level, )
        feats = self.extract_feat(inputs, levels=levels)
        return self.head.loss(feats, data_samples, levels=levels)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                level: Optional[int] = None,
                **kwargs) -> List[DataSample]:
        level = level or self.level
        feats = self.extract_feat(inputs, levels=(level, ))
        return self.head.predict(feats, data_samples, level=level)
