"""How the generated classification sets are written: mmpretrain's ``CustomDataset`` folder layout.

``root/{train,val}/<class>/<n>.png``, one folder per class, images numbered from 0. Every generator draws its
images from one random stream in the same order (split by split, class by class), so one seed gives one set of
files; keeping that order in one place keeps the sets reproducible when a generator changes what it draws.
"""
import os
import os.path as osp
from typing import Callable, Sequence

import cv2
import numpy as np


def check_class_folder_args(train_per_class: int, val_per_class: int, size: int) -> None:
    """Refuse a split without images or images too small to draw in, before anything is written."""
    if train_per_class < 1 or val_per_class < 1 or size < 16:
        raise ValueError(f'need at least one image per class and split and size >= 16, got train_per_class='
                         f'{train_per_class}, val_per_class={val_per_class}, size={size}')


def write_class_folders(root: str, class_names: Sequence[str], train_per_class: int, val_per_class: int,
                        draw: Callable[[int], np.ndarray]) -> str:
    """Write ``draw(label)`` as ``root/<split>/<class_names[label]>/<n>.png``: ``train_per_class`` images of each
    class to ``train``, then ``val_per_class`` to ``val``. Returns ``root``."""
    for split, count in (('train', train_per_class), ('val', val_per_class)):
        for label, name in enumerate(class_names):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                cv2.imwrite(osp.join(folder, f'{i:05d}.png'), draw(label))
    return root
