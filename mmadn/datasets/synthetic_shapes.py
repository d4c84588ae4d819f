"""Generated image datasets for demos and tests (no downloads): coloured shapes on cluttered backgrounds."""
from typing import Sequence

import cv2
import numpy as np

from .class_folders import write_class_folders

SHAPES = ('circle', 'square', 'triangle', 'cross', 'ring', 'diamond')


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted base colour with smooth texture and a few thin lines: clutter that does not drown the shapes."""
    base = rng.integers(60, 196, size=3)
    low = np.clip(base + rng.integers(-35, 36, size=(4, 4, 3)), 0, 255).astype(np.uint8)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(1, 4)):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), _colour(rng), 1)
    return img


def _colour(rng: np.random.Generator):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def draw_shape(img: np.ndarray, shape: str, center, radius: int, colour) -> np.ndarray:
    """Draw ``shape`` filled into ``img`` (in place) and return its binary mask."""
    mask = np.zeros(img.shape[:2], np.uint8)
    cx, cy = int(center[0]), int(center[1])
    r = int(radius)
    if shape == 'circle':
        cv2.circle(mask, (cx, cy), r, 1, -1)
    elif shape == 'square':
        cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
    elif shape == 'triangle':
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    elif shape == 'cross':
        w = max(1, r // 3)
        cv2.rectangle(mask, (cx - r, cy - w), (cx + r, cy + w), 1, -1)
        cv2.rectangle(mask, (cx - w, cy - r), (cx + w, cy + r), 1, -1)
    elif shape == 'ring':
        cv2.circle(mask, (cx, cy), r, 1, -1)
        cv2.circle(mask, (cx, cy), max(1, r // 2), 0, -1)
    elif shape == 'diamond':
        pts = np.array([[cx, cy - r], [cx - r, cy], [cx, cy + r], [cx + r, cy]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    else:
        raise ValueError(f'unknown shape {shape!r}; choose from {SHAPES}')
    img[mask.astype(bool)] = colour
    return mask


def _shape_image(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    """One ``shape`` of random colour, size and position on a cluttered background."""
    img = _background(rng, size)
    radius = rng.integers(size // 8, size // 3)
    center = rng.integers(radius, size - radius, 2)
    draw_shape(img, shape, center, radius, _colour(rng))
    return img


def make_classification_folder(root: str,
                               classes: Sequence[str] = SHAPES,
                               train_per_class: int = 40,
                               val_per_class: int = 10,
                               size: int = 64,
                               seed: int = 0) -> str:
    """Write ``root/{train,val}/<class>/<n>.png``: mmpretrain's ``CustomDataset`` folder layout.

    One shape per image, of random colour, size and position; the same seed gives the same files.
    """
    rng = np.random.default_rng(seed)
    return write_class_folders(root, classes, train_per_class, val_per_class,
                               lambda label: _shape_image(rng, classes[label], size))
