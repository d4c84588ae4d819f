"""Generated data that needs depth: dotted lines whose orientation only shows over more pixels than a block sees.

ODN's quick start settles at depth 1 on the generated digits, so it never shows the method's one decision (when
to deepen, when to stop). Here every image holds a line of 2-3 identical round dots, ``spacing`` pixels apart
(7 to 12 by default), plus isolated clutter dots, over a dark noisy gradient; the class is the line's orientation
(0, 45, 90 or 135 degrees, +-``jitter``). One dot looks the same in every class, so a feature that sees one dot
tells nothing: only a receptive field spanning two dots does. In ODN's CIFAR ResNet the receptive field after
block d is 7, 11, 17, 25, 37, ... pixels (3x3 stem; two 3x3 convs per block; blocks 3, 5 and 7 halve the
resolution), so depths 1 and 2 see at most a rare close pair (or guess from where the dots sit against the
border) and a deeper network is needed: the expansion has to deepen. The figures are in docs/odn.md.
"""
import math
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from mmadn.datasets.class_folders import check_class_folder_args, write_class_folders


def orientations(num_classes: int) -> Tuple[int, ...]:
    """Class angles in degrees: ``num_classes`` orientations evenly spread over 180 degrees."""
    if not isinstance(num_classes, int) or not 2 <= num_classes <= 12:
        raise ValueError(f'num_classes must be an int in [2, 12] (orientations over 180 degrees), got {num_classes!r}')
    if 180 % num_classes:
        raise ValueError(f'num_classes must divide 180 so that the angles are whole degrees, got {num_classes}')
    return tuple(i * 180 // num_classes for i in range(num_classes))


def class_name(angle: int) -> str:
    """Folder name of a class, sorted as the angles are (``'000deg'``, ``'045deg'``, ...)."""
    return f'{angle:03d}deg'


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    c0, c1 = rng.uniform(0, 70, 3), rng.uniform(0, 70, 3)
    t = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
    return (c0 + (c1 - c0) * t * np.ones((size, size, 1), np.float32)).astype(np.float32)


def _dot(img: np.ndarray, rng: np.random.Generator, centre: Tuple[int, int], radius: int) -> None:
    """A light disk (radius 1: a 5-pixel plus), the same shape in every class."""
    x, y = int(centre[0]), int(centre[1])
    colour = rng.uniform(170, 255, 3).astype(np.float32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius and 0 <= y + dy < img.shape[0] and 0 <= x + dx < img.shape[1]:
                img[y + dy, x + dx] = colour


def draw_dotted_line(rng: np.random.Generator,
                     angle: float,
                     size: int = 32,
                     spacing: Sequence[float] = (7, 12),
                     dots: Sequence[int] = (2, 3),
                     clutter: int = 2,
                     jitter: float = 8.0,
                     noise: float = 10.0,
                     radius: int = 1) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """One ``size`` x ``size`` BGR image of a dotted line at ``angle`` degrees (0: horizontal, 90: vertical).

    Returns the image and the pixel centres of the line's dots (the clutter dots are not listed).
    ``spacing`` and ``dots`` are inclusive ranges; up to ``clutter`` isolated dots are added at random places.
    """
    margin = radius + 1
    span = size - 1 - 2 * margin
    theta = math.radians(angle + rng.uniform(-jitter, jitter))
    ux, uy = math.cos(theta), -math.sin(theta)  # image rows grow downwards: 90 degrees points up
    step = rng.uniform(spacing[0], spacing[1])
    count = int(rng.integers(dots[0], dots[1] + 1))
    while count > 2 and (count - 1) * step * max(abs(ux), abs(uy)) > span:
        count -= 1  # a long line at this angle does not fit: fewer dots
    length = (count - 1) * step
    # the line's first dot, anywhere the whole line fits inside the margins
    x_lo, x_hi = margin - min(0.0, ux * length), size - 1 - margin - max(0.0, ux * length)
    y_lo, y_hi = margin - min(0.0, uy * length), size - 1 - margin - max(0.0, uy * length)
    if x_lo > x_hi or y_lo > y_hi:
        raise ValueError(f'a line of {count} dots {step:.1f} pixels apart does not fit in {size} x {size} '
                         'pixels: lower spacing or raise size')
    x0, y0 = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
    centres = [(int(round(x0 + k * step * ux)), int(round(y0 + k * step * uy))) for k in range(count)]

    img = _background(rng, size)
    for _ in range(int(rng.integers(0, clutter + 1))):
        _dot(img, rng, (int(rng.integers(margin, size - margin)), int(rng.integers(margin, size - margin))), radius)
    for centre in centres:
        _dot(img, rng, centre, radius)
    img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
    return img, centres


def make_dotted_lines_folder(root: str,
                             train_per_class: int = 250,
                             val_per_class: int = 100,
                             num_classes: int = 4,
                             size: int = 32,
                             seed: int = 0,
                             **draw_kwargs) -> str:
    """Write ``root/{train,val}/<angle>deg/<n>.png`` (mmpretrain ``CustomDataset`` layout); same seed, same files.

    ``draw_kwargs`` go to :func:`draw_dotted_line` (``spacing``, ``dots``, ``clutter``, ``jitter``, ``noise``).
    """
    check_class_folder_args(train_per_class, val_per_class, size)
    spacing = draw_kwargs.get('spacing', (7, 12))
    if not 0 < spacing[0] <= spacing[1]:
        raise ValueError(f'spacing must be a range (low, high) of pixels with 0 < low <= high, got {spacing}')
    angles = orientations(num_classes)
    rng = np.random.default_rng(seed)
    return write_class_folders(root, [class_name(angle) for angle in angles], train_per_class, val_per_class,
                               lambda label: draw_dotted_line(rng, angles[label], size, **draw_kwargs)[0])
