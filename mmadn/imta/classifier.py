"""mmpretrain's ImageClassifier for multi-exit networks: the head's per-exit input channels come from the backbone."""
import copy
from typing import Optional

from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from mmadn.registry import register_model


@register_model
class MultiExitClassifier(ImageClassifier):
    """An ``ImageClassifier`` whose backbone returns one feature map per exit and whose head classifies each.

    If ``head.in_channels`` is omitted it is taken from ``backbone.exit_channels``, so a config changes the
    MSDNet architecture in one place. Test-time outputs carry every exit's scores (``exit_scores``).
    """

    def __init__(self, backbone: dict, head: dict, neck: Optional[dict] = None, **kwargs):
        if neck is not None:
            raise ValueError('MultiExitClassifier takes no neck: every exit has its own classifier in the head')
        head = copy.deepcopy(dict(head))
        super().__init__(backbone=backbone, head=None, **kwargs)
        exit_channels = list(getattr(self.backbone, 'exit_channels', []))
        if not exit_channels:
            raise TypeError(f'{type(self.backbone).__name__} has no `exit_channels`; MultiExitClassifier needs a '
                            'multi-exit backbone such as MSDNet')
        if head.get('in_channels') is None:
            head['in_channels'] = exit_channels
        elif list(head['in_channels']) != exit_channels:
            raise ValueError(f"head.in_channels={list(head['in_channels'])} does not match the backbone's exit "
                             f'channels {exit_channels}; omit it to have it filled in')
        self.head = MODELS.build(head)
        if getattr(self.head, 'teacher_fc', None) is not None and not getattr(self.backbone, 'frozen', False):
            raise ValueError("ofa.teacher='phase1' (IMTA phase II) distills on frozen features: set "
                             'backbone.frozen=True')
