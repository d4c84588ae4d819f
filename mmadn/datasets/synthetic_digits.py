"""Generated digits for the classification demos and tests (ADN, ODN; no downloads): an SVHN-like task.

Each image is one light digit drawn with a random Hershey font, scale, stroke, position and tint over a dark
noisy gradient, among small distractor digits of other classes. A small network learns it from a few hundred
images in a few epochs (ODN's quarter-width CIFAR ResNet-18 reaches 98.8 % with one residual block:
docs/odn.md).
"""
import cv2
import numpy as np

from .class_folders import check_class_folder_args, write_class_folders

DIGITS = tuple(str(d) for d in range(10))
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def _put(img, rng, digit: str, height: float, thickness: int) -> None:
    """Draw ``digit`` ``height`` pixels tall at a random place, light and with a random Hershey font."""
    size = img.shape[0]
    font = _FONTS[rng.integers(len(_FONTS))]
    (_, h), _ = cv2.getTextSize(digit, font, 1.0, thickness)
    scale = height / h
    (w, h), _ = cv2.getTextSize(digit, font, scale, thickness)
    x = int(rng.integers(0, max(1, size - w)))
    y = int(rng.integers(h, max(h + 1, size)))
    cv2.putText(img, digit, (x, y), font, scale, tuple(float(v) for v in rng.uniform(160, 255, 3)), thickness,
                cv2.LINE_AA)


def draw_digit(rng: np.random.Generator, digit: str, size: int, distractors: int = 2) -> np.ndarray:
    """One ``size`` x ``size`` BGR image: a large ``digit`` among small digits of other classes."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    c0, c1 = rng.uniform(0, 90, 3), rng.uniform(0, 90, 3)
    t = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
    img = np.clip(c0 + (c1 - c0) * t * np.ones((size, size, 1), np.float32), 0, 255).astype(np.uint8)
    thickness = 1 if size < 40 else 2  # the same stroke for all digits: only their size tells them apart
    others = [d for d in DIGITS if d != digit]
    for _ in range(distractors):
        _put(img, rng, others[rng.integers(len(others))], rng.uniform(0.25, 0.35) * size, thickness)
    _put(img, rng, digit, rng.uniform(0.6, 0.85) * size, thickness)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def make_digits_folder(root: str, train_per_class: int = 100, val_per_class: int = 30, size: int = 32,
                       distractors: int = 2, seed: int = 0) -> str:
    """Write ``root/{train,val}/<digit>/<n>.png`` (mmpretrain ``CustomDataset`` layout); same seed, same files."""
    check_class_folder_args(train_per_class, val_per_class, size)
    rng = np.random.default_rng(seed)
    return write_class_folders(root, DIGITS, train_per_class, val_per_class,
                               lambda label: draw_digit(rng, DIGITS[label], size, distractors))
