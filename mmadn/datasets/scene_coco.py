"""What mmadn's generated COCO scenes share: painted layers to COCO annotations, and the split writer.

A scene generator paints its layers back to front and returns them with the image; an instance's mask is what
later layers leave visible (unlabelled layers, the distractors, hide but are not annotated). Masks are stored as
compressed RLE, not polygons, because a visible part can have holes (a glyph's counter, an object in front of
the middle of another) that COCO polygons cannot express.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

# (label or None for a distractor, boolean mask of the painted pixels), in paint order
Layer = Tuple[Optional[int], np.ndarray]


class ClassDeck:
    """Labels drawn without replacement from shuffled rounds of all classes, so that every class is about equally
    frequent and each appears once a split holds ``num_classes`` objects (random draws leave rare classes out of
    small splits)."""

    def __init__(self, rng: np.random.Generator, num_classes: int):
        self.rng, self.num_classes, self.deck = rng, num_classes, []

    def draw(self) -> int:
        if not self.deck:
            self.deck = self.rng.permutation(self.num_classes).tolist()
        return self.deck.pop()


def visible_instances(layers: Sequence[Layer], min_visible: float = 0.3, min_area: int = 16) -> List[dict]:
    """COCO annotations (without ids) of the labelled layers that stay visible enough, in paint order.

    ``min_visible`` is the fraction of a layer that must stay visible: a mostly hidden object is no fair target.
    """
    annotations = []
    covered = None
    for label, mask in reversed(layers):  # front to back: what is in front hides what is behind
        mask = mask.astype(bool)
        if covered is None:
            covered = np.zeros_like(mask)
        visible = mask & ~covered
        covered |= mask
        area = int(visible.sum())
        if label is None or area < min_area or area < min_visible * mask.sum():
            continue
        ys, xs = np.nonzero(visible)
        x0, y0 = int(xs.min()), int(ys.min())
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        annotations.append(dict(category_id=int(label) + 1, bbox=[x0, y0, int(xs.max()) - x0 + 1,
                                                                   int(ys.max()) - y0 + 1],
                                area=area, segmentation=rle, iscrowd=0))
    return annotations[::-1]


def check_scene_args(num_train: int, num_val: int, size: Sequence[int], min_size: int, why: str = '') -> None:
    """Refuse arguments a generator cannot honour before anything is written; ``why`` says what needs
    ``min_size``."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'need at least one train and one val image, got num_train={num_train}, '
                         f'num_val={num_val} (an empty split fails later in the data loader or CocoMetric).')
    if len(size) != 2 or min(size) < min_size:
        raise ValueError(f'image size (W, H) must be at least {min_size} x {min_size}, got {tuple(size)}'
                         + (f': {why}.' if why else '.'))


def write_coco_splits(root: str, num_train: int, num_val: int, size: Tuple[int, int], classes: Sequence[str],
                      supercategory: str,
                      annotated_image: Callable[[], Tuple[np.ndarray, List[dict]]]) -> Dict[str, str]:
    """Write ``root/{train2017,val2017}/*.jpg`` and ``root/annotations/instances_*.json`` (COCO's layout, so
    mmdet's COCO configs need only ``data_root`` and the class names changed): ``num_train`` then ``num_val``
    images from ``annotated_image()``, which returns ``(image, annotations without ids)``. Returns the json
    paths."""
    categories = [dict(id=i + 1, name=name, supercategory=supercategory) for i, name in enumerate(classes)]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    paths = {}
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, count + 1):
            img, anns = annotated_image()
            assert img.shape[:2] == (size[1], size[0]), (img.shape, size)
            file_name = f'{image_id:012d}.jpg'
            cv2.imwrite(osp.join(root, split, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=file_name, width=size[0], height=size[1]))
            for ann in anns:
                annotations.append(dict(ann, id=len(annotations) + 1, image_id=image_id))
        path = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        paths[split] = path
    return paths


class SceneSplits(NamedTuple):
    """What every scene set is asked for, whatever it paints: how many train and val images, their size (W, H) and
    the seed that makes the same files again."""
    num_train: int = 400
    num_val: int = 100
    size: Tuple[int, int] = (160, 160)
    seed: int = 0


def write_scene_splits(root: str, splits: SceneSplits, classes: Sequence[str], supercategory: str,
                       make_image: Callable[[np.random.Generator, ClassDeck], Tuple], min_image_size: int,
                       min_visible: float = 0.3, min_area: int = 16) -> Dict[str, str]:
    """:func:`write_coco_splits` for a scene generator: ``make_image(rng, deck)`` returns ``(image, layers)``,
    annotated by :func:`visible_instances` (``min_visible`` / ``min_area``). ``splits`` is checked first
    (:func:`check_scene_args`, sides of at least ``min_image_size``). The same seed gives the same files."""
    check_scene_args(splits.num_train, splits.num_val, splits.size, min_image_size)
    rng = np.random.default_rng(splits.seed)
    deck = ClassDeck(rng, len(classes))

    def annotated_image():
        img, layers = make_image(rng, deck)
        return img, visible_instances(layers, min_visible, min_area)

    return write_coco_splits(root, splits.num_train, splits.num_val, tuple(splits.size), classes, supercategory,
                             annotated_image)
