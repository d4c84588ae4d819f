"""One classification head per depth level (ODN spec, "Model").

Head ``d`` is an ordinary mmpretrain head (``LinearClsHead`` by default) sized to block ``d``'s output width, so
extracting depth ``d`` keeps it unchanged: the extracted model's head is that head, with its own config.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule, ModuleList
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmadn.registry import register_model


@register_model
class ODNClsHead(BaseModule):
    """A head per level; ``feats[i]`` (pooled output of block ``levels[i]``) goes to head ``levels[i]``.

    Args:
        head (dict): Config of the head of one level, without ``in_channels``.
        in_channels (Sequence[int]): Input width of each level's head. ``ODNClassifier`` fills it from its
            backbone's ``level_channels``.
    """

    def __init__(self,
                 head: dict = dict(type='LinearClsHead', num_classes=1000),
                 in_channels: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not in_channels:
            raise ValueError('ODNClsHead needs in_channels, one width per depth level; inside an ODNClassifier '
                             'it is taken from the backbone, so leave it out of the config there.')
        if 'in_channels' in head:
            raise ValueError('ODNClsHead.head is the config of one level\'s head without in_channels (each level '
                             f'gets its block\'s width); remove in_channels={head["in_channels"]} from it.')
        self.head_cfg = dict(head)
        self.in_channels = tuple(in_channels)
        self.heads = ModuleList([MODELS.build(dict(head, in_channels=c)) for c in self.in_channels])

    @property
    def num_levels(self) -> int:
        return len(self.heads)

    def level_head(self, level: int) -> BaseModule:
        if not 1 <= level <= self.num_levels:
            raise ValueError(f'depth level must be in [1, {self.num_levels}], got {level}')
        return self.heads[level - 1]

    def forward(self, feats: Tuple[torch.Tensor, ...], level: int) -> torch.Tensor:
        """Class scores of ``level`` from its pooled feature ``feats[-1]``."""
        return self.level_head(level)((feats[-1], ))

    def loss(self, feats: Tuple[torch.Tensor, ...], data_samples: List[DataSample],
             levels: Sequence[int]) -> dict:
        """Cross-entropy of each level in ``levels`` summed with equal weight (one level: that level's loss)."""
        if len(feats) != len(levels):
            raise ValueError(f'got {len(feats)} features for {len(levels)} levels')
        if len(levels) == 1:
            return self.level_head(levels[0]).loss((feats[0], ), data_samples)
        total = sum(self.level_head(level).loss((feat, ), data_samples)['loss'] for feat, level in zip(feats, levels))
        return dict(loss=total)

    def predict(self, feats: Tuple[torch.Tensor, ...], data_samples: Optional[List[DataSample]],
                level: int) -> List[DataSample]:
        return self.level_head(level).predict((feats[-1], ), data_samples)
