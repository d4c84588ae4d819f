"""A deterministic hold-out split of a training set: budgeted evaluation fits its thresholds on data the model
was not trained on and that is not the test set (MSDNet / IMTA hold out 5000 CIFAR or 50000 ImageNet images)."""
import numpy as np
from mmpretrain.datasets import KFoldDataset

from mmadn.registry import register_dataset


@register_dataset
class HoldoutSplit(KFoldDataset):
    """``num_holdout`` samples of ``dataset`` drawn with ``seed`` (``holdout=True``), or all the others.

    Use the same ``seed`` and ``num_holdout`` for the training part and the held-out part: together they cover
    the dataset exactly once.
    """

    def __init__(self, dataset, num_holdout: int, holdout: bool = False, seed: int = 0):
        if num_holdout < 1:
            raise ValueError(f'num_holdout must be >= 1, got {num_holdout}')
        self.num_holdout = num_holdout
        super().__init__(dataset, fold=0, num_splits=1, test_mode=holdout, seed=seed)

    def full_init(self):
        if self._fully_initialized:
            return
        self.dataset.full_init()
        total = len(self.dataset)
        if self.num_holdout >= total:
            raise ValueError(f'Cannot hold out {self.num_holdout} of {total} samples: lower num_holdout '
                             '(CIFAR: 5000 of 50000, ImageNet: 50000)')
        order = np.random.default_rng(self.seed).permutation(total)
        part = order[total - self.num_holdout:] if self.test_mode else order[:total - self.num_holdout]
        self._ori_indices = sorted(int(i) for i in part)
        self.dataset = self.dataset.get_subset(self._ori_indices)
        self._fully_initialized = True

    def __repr__(self):
        part = 'held-out' if self.test_mode else 'training'
        size = len(self) if self._fully_initialized else 'not initialised'
        return (f'{type(self).__name__}({part} part, num_holdout={self.num_holdout}, seed={self.seed}, '
                f'samples={size}, of {type(self.dataset).__name__})')
