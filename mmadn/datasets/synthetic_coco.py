"""A generated COCO-format instance-segmentation dataset: the embedded default data of the demo.

Each image has a cluttered background and several shapes of random class, colour and scale. Shapes are
drawn back to front, so later ones occlude earlier ones; an instance's mask is what stays visible, and
instances that are mostly hidden are dropped. Files follow COCO's layout (``annotations/instances_*.json``,
``train2017/``, ``val2017/``), so mmdet's COCO configs need only ``data_root`` and the class names changed.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .scene_coco import check_scene_args, write_coco_splits
from .synthetic_shapes import _background, _colour, draw_shape

DET_CLASSES = ('circle', 'square', 'triangle', 'cross', 'diamond')
MIN_VISIBLE = 0.3  # fraction of a shape that must stay visible for it to be annotated
MIN_IMAGE_SIZE = 20  # the smallest side with room for a shape (radius 4 .. side // 4)


def _polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _make_image(rng: np.random.Generator, size: Tuple[int, int], classes: Sequence[str],
                max_objects: int) -> Tuple[np.ndarray, List[dict]]:
    width, height = size
    img = _background(rng, max(width, height))[:height, :width].copy()
    shapes = []
    for _ in range(rng.integers(1, max_objects + 1)):
        label = int(rng.integers(len(classes)))
        radius = int(rng.integers(max(4, min(size) // 20), min(size) // 4))  # a range of scales
        center = (int(rng.integers(radius, width - radius)), int(rng.integers(radius, height - radius)))
        mask = draw_shape(img, classes[label], center, radius, _colour(rng))
        shapes.append((label, mask.astype(bool)))
    annotations = []
    covered = np.zeros((height, width), bool)
    for label, mask in reversed(shapes):  # front to back: what is in front hides what is behind
        visible = mask & ~covered
        covered |= mask
        if visible.sum() < MIN_VISIBLE * mask.sum() or visible.sum() < 16:
            continue
        polygons = _polygons(visible)
        if not polygons:
            continue
        ys, xs = np.nonzero(visible)
        x0, y0 = int(xs.min()), int(ys.min())
        w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
        annotations.append(dict(category_id=label + 1, bbox=[x0, y0, w, h], area=int(visible.sum()),
                                segmentation=polygons, iscrowd=0))
    return img, annotations[::-1]


def _crop(img: np.ndarray, bbox: Sequence[float], side: float, shift: np.ndarray, size: int) -> np.ndarray:
    """The square of ``side`` pixels around ``bbox`` (centre moved by ``shift``), resized to ``size``; what falls
    outside the image is mirrored in, so every crop is full of scene."""
    x, y, w, h = bbox
    cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
    scale = size / side
    affine = np.float32([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    return cv2.warpAffine(img, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def make_instance_crops(root: str,
                        train_per_class: int = 200,
                        val_per_class: int = 40,
                        size: int = 32,
                        scene_size: Tuple[int, int] = (160, 160),
                        max_objects: int = 6,
                        classes: Sequence[str] = DET_CLASSES,
                        seed: int = 0) -> str:
    """Write ``root/{train,val}/<class>/<n>.png``: crops of the instances of generated detection scenes.

    The pretraining data of the demo (the paper's ImageNet step): the same shapes, colours, clutter, occlusions
    and scales as the detection data, one labelled instance per crop, classes balanced. Scenes are drawn from
    their own seed stream, so no crop comes from an image of the detection set made with the same ``seed``.
    """
    if train_per_class < 1 or val_per_class < 1 or size < 16:
        raise ValueError(f'need at least one crop per class and split and size >= 16, got train_per_class='
                         f'{train_per_class}, val_per_class={val_per_class}, size={size}')
    rng = np.random.default_rng([seed, 1])
    for split, count in (('train', train_per_class), ('val', val_per_class)):
        written = [0] * len(classes)
        for name in classes:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
        while min(written) < count:
            img, anns = _make_image(rng, scene_size, classes, max_objects)
            for ann in anns:
                label = ann['category_id'] - 1
                if written[label] >= count:
                    continue
                side = max(ann['bbox'][2:]) * rng.uniform(1.15, 1.6)
                crop = _crop(img, ann['bbox'], side, rng.uniform(-0.1, 0.1, 2) * side, size)
                cv2.imwrite(osp.join(root, split, classes[label], f'{written[label]:05d}.png'), crop)
                written[label] += 1
    return root


def check_coco_instances_args(num_train: int, num_val: int, size: Sequence[int], max_objects: int = 1) -> None:
    """Refuse arguments the generator cannot honour before anything is written (a dataset without images or
    too small for its shapes would only fail later, in training or evaluation)."""
    check_scene_args(num_train, num_val, size, MIN_IMAGE_SIZE,
                     why='shapes are drawn with a radius from 4 pixels up to a quarter of the shorter side')
    if max_objects < 1:
        raise ValueError(f'max_objects must be at least 1, got {max_objects}.')


def make_coco_instances(root: str,
                        num_train: int = 200,
                        num_val: int = 50,
                        size: Tuple[int, int] = (160, 160),
                        max_objects: int = 6,
                        classes: Sequence[str] = DET_CLASSES,
                        seed: int = 0) -> Dict[str, str]:
    """Write a COCO-style dataset under ``root``; the same seed gives the same files. Returns the json paths."""
    check_coco_instances_args(num_train, num_val, size, max_objects)
    rng = np.random.default_rng(seed)
    return write_coco_splits(root, num_train, num_val, size, classes, 'shape',
                             lambda: _make_image(rng, size, classes, max_objects))
