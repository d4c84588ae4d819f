"""A COCO-format instance-segmentation set of many small glyphs in clutter: twelve letter and digit classes.

It differs from the shapes of :mod:`.synthetic_coco` on every axis the detector recipe is sensitive to: more
classes (12 against 5), more and smaller objects (4-16 per 160 x 160 image, 8-28 pixels tall, against 1-6 shapes
of 16-80 pixels), thin line-art objects told apart by their topology instead of filled outlines, and distractors
of the same kind: glyphs of other characters (O, C, L, T, ...) that must not be detected, and lines, arcs and dots
drawn under and over the objects. Glyphs are drawn with OpenCV's Hershey fonts (four faces, upright or italic, a
range of stroke widths), rotated up to 30 degrees, in colours that contrast with a smooth, noisy background. An
instance's mask is its visible stroke pixels dilated by one pixel, so that thin strokes keep an area at the mask
head's resolution.
"""
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .scene_coco import ClassDeck, Layer, SceneSplits, write_scene_splits

GLYPH_CLASSES = ('A', 'B', 'E', 'H', 'K', 'M', 'R', 'S', 'X', 'Z', '3', '4')
DISTRACTOR_GLYPHS = ('O', 'C', 'L', 'T', 'U', 'V', '1', '7')  # no look-alike of a class (no F, P, 8, 5, ...)
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
MIN_IMAGE_SIZE = 48
MIN_HEIGHT, MAX_HEIGHT = 8, 28  # glyph height in pixels (at most a fifth of the image's shorter side)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A two-colour gradient with low-frequency blotches and pixel noise, then thin clutter strokes."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    blotches = cv2.resize(rng.normal(0, 1, (5, 5, 3)).astype(np.float32), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    img += blotches * rng.uniform(10, 30) + rng.normal(0, rng.uniform(3, 10), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    _strokes(rng, img, int(rng.integers(2, 9)))
    return img


def _strokes(rng: np.random.Generator, img: np.ndarray, count: int) -> np.ndarray:
    """Lines, arcs and dots in random colours; returns the mask of what was drawn."""
    height, width = img.shape[:2]
    drawn = np.zeros((height, width), np.uint8)
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        thickness = int(rng.integers(1, 3))
        layer = np.zeros_like(drawn)
        kind = rng.integers(3)
        if kind == 0:
            p0, p1 = rng.integers(0, (width, height), 2), rng.integers(0, (width, height), 2)
            cv2.line(layer, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 255, thickness, cv2.LINE_AA)
        elif kind == 1:
            centre = tuple(int(v) for v in rng.integers(0, (width, height), 2))
            axes = tuple(int(v) for v in rng.integers(4, max(5, min(width, height) // 3), 2))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), start, start + rng.uniform(60, 300), 255,
                        thickness, cv2.LINE_AA)
        else:
            for _ in range(int(rng.integers(3, 10))):
                cv2.circle(layer, tuple(int(v) for v in rng.integers(0, (width, height), 2)),
                           int(rng.integers(1, 3)), 255, -1, cv2.LINE_AA)
        _blend(img, layer, colour)
        drawn = np.maximum(drawn, layer)
    return drawn >= 128


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Paint ``colour`` over ``img`` with the coverage ``alpha`` (0-255), in place, within what ``alpha`` covers."""
    x, y, w, h = cv2.boundingRect(alpha)
    if w == 0 or h == 0:
        return
    a = alpha[y:y + h, x:x + w].astype(np.float32)[..., None] / 255
    region = img[y:y + h, x:x + w]
    region[:] = (region * (1 - a) + np.asarray(colour, np.float32) * a).astype(np.uint8)


def _glyph(rng: np.random.Generator, char: str, glyph_height: float) -> np.ndarray:
    """The anti-aliased coverage (0-255) of one character in a random face and stroke, rotated."""
    font = int(FONTS[rng.integers(len(FONTS))]) | (cv2.FONT_ITALIC if rng.random() < 0.25 else 0)
    thickness = max(1, int(round(glyph_height * rng.uniform(0.05, 0.13))))
    (_, h1), _ = cv2.getTextSize('H', font, 1.0, thickness)
    scale = glyph_height / h1
    (tw, th), base = cv2.getTextSize(char, font, scale, thickness)
    pad = thickness + 2
    canvas = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(canvas, char, (pad, pad + th), font, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    canvas = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    # rotate on a canvas large enough for any angle
    h, w = canvas.shape
    side = int(np.ceil(np.hypot(h, w))) + 2
    affine = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), rng.uniform(-30, 30), 1.0)
    affine[:, 2] += ((side - w) / 2, (side - h) / 2)
    rotated = cv2.warpAffine(canvas, affine, (side, side), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(rotated)
    return rotated[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _contrasting(rng: np.random.Generator, under: np.ndarray) -> Tuple[int, int, int]:
    """A random colour whose brightness differs from the mean of ``under`` by at least 70 grey levels."""
    luma = np.array([0.114, 0.587, 0.299])  # BGR
    mean = float(under.reshape(-1, 3).mean(0) @ luma)
    for _ in range(20):
        colour = rng.integers(0, 256, 3)
        if abs(float(colour @ luma) - mean) >= 70:
            return tuple(int(c) for c in colour)
    return (0, 0, 0) if mean > 127 else (255, 255, 255)


def _overlap(box: Tuple[int, int, int, int], boxes: List[Tuple[int, int, int, int]]) -> float:
    """The largest fraction of ``box`` covered by one of ``boxes``."""
    x0, y0, x1, y1 = box
    worst = 0.0
    for a0, b0, a1, b1 in boxes:
        inter = max(0, min(x1, a1) - max(x0, a0)) * max(0, min(y1, b1) - max(y0, b0))
        worst = max(worst, inter / ((x1 - x0) * (y1 - y0)))
    return worst


def _make_scene(rng: np.random.Generator, deck: ClassDeck, size: Tuple[int, int], min_objects: int,
                max_objects: int, max_distractors: int) -> Tuple[np.ndarray, List[Layer]]:
    width, height = size
    img = _background(rng, width, height)
    labels = [deck.draw() for _ in range(rng.integers(min_objects, max_objects + 1))]
    labels += [None] * int(rng.integers(max_distractors // 3, max_distractors + 1))
    max_height = min(MAX_HEIGHT, min(size) / 5)
    dilate = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    layers, boxes = [], []
    for i in rng.permutation(len(labels)):
        label = labels[i]
        char = GLYPH_CLASSES[label] if label is not None else DISTRACTOR_GLYPHS[rng.integers(len(DISTRACTOR_GLYPHS))]
        coverage = _glyph(rng, char, np.exp(rng.uniform(np.log(MIN_HEIGHT), np.log(max_height))))
        h, w = coverage.shape
        if h >= height or w >= width:
            continue
        for _ in range(10):  # clutter, but most glyphs stay readable: little overlap between glyph boxes
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            if _overlap((x, y, x + w, y + h), boxes) < 0.25:
                break
        boxes.append((x, y, x + w, y + h))
        alpha = np.zeros((height, width), np.uint8)
        alpha[y:y + h, x:x + w] = coverage
        _blend(img, alpha, _contrasting(rng, img[y:y + h, x:x + w]))
        layers.append((label, cv2.dilate((alpha >= 128).astype(np.uint8), dilate).astype(bool)))
    # a few strokes over the glyphs: they hide a little of them
    layers.append((None, _strokes(rng, img, int(rng.integers(0, 4)))))
    return img, layers


def make_glyph_clutter(root: str,
                       splits: SceneSplits = SceneSplits(),
                       min_objects: int = 4,
                       max_objects: int = 16,
                       max_distractors: int = 8) -> Dict[str, str]:
    """Write the glyph set under ``root`` in COCO's layout (:func:`write_scene_splits`); returns the json paths."""
    if not 1 <= min_objects <= max_objects or max_distractors < 0:
        raise ValueError(f'need 1 <= min_objects <= max_objects and max_distractors >= 0, got {min_objects}, '
                         f'{max_objects}, {max_distractors}')
    size = tuple(splits.size)
    # a glyph is thin: at least half of its (dilated) strokes must stay visible for it to be annotated
    return write_scene_splits(
        root, splits, GLYPH_CLASSES, 'glyph',
        lambda rng, deck: _make_scene(rng, deck, size, min_objects, max_objects, max_distractors), MIN_IMAGE_SIZE,
        min_visible=0.5, min_area=12)
