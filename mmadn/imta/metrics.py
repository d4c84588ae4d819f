"""Anytime evaluation: the accuracy of every exit on the same test set, as an mmpretrain metric."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric

from mmadn.registry import register_metric


def exit_accuracies(exit_scores: torch.Tensor, labels: torch.Tensor, topk: Sequence[int] = (1, 5)) -> torch.Tensor:
    """Top-k accuracy (%) of every exit: ``exit_scores`` is N x k x C, the result k x len(topk)."""
    num_classes = exit_scores.size(-1)
    if max(topk) > num_classes:
        raise ValueError(f'top-{max(topk)} accuracy needs at least {max(topk)} classes, the model has '
                         f'{num_classes}: lower `topk` of the AnytimeAccuracy evaluator')
    ranked = exit_scores.topk(max(topk), dim=-1).indices  # N x k x maxk
    hits = ranked == labels.view(-1, 1, 1)
    return torch.stack([hits[..., :k].any(-1).float().mean(0) * 100 for k in topk], dim=1)


@register_metric
class AnytimeAccuracy(BaseMetric):
    """Top-k accuracy of each exit: ``exits/exit{i}_top{k}`` (i 1-based), from the data samples' ``exit_scores``."""

    # not 'anytime': mmengine's log processor smooths every key matching '.*time.*' over the run's history
    default_prefix: Optional[str] = 'exits'

    def __init__(self, topk: Union[int, Sequence[int]] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'exit_scores' not in sample:
                raise KeyError('AnytimeAccuracy needs every exit\'s scores (`exit_scores`) in the predictions: use '
                               'MultiExitClassifier / MultiExitClsHead, or evaluate with `Accuracy` instead')
            self.results.append(dict(exit_scores=sample['exit_scores'].cpu(), gt_label=sample['gt_label'].cpu()))

    def compute_metrics(self, results: List[dict]) -> dict:
        scores = torch.stack([r['exit_scores'] for r in results])
        labels = torch.cat([r['gt_label'] for r in results])
        acc = exit_accuracies(scores, labels, self.topk)
        return {f'exit{i + 1}_top{k}': acc[i, j].item() for i in range(acc.size(0)) for j, k in enumerate(self.topk)}
