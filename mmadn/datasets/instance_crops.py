"""Classification crops of a COCO-format detection set's own instances: the pretraining data of its detectors.

The ADN paper pretrains the backbone on ImageNet before detection; a user with only a detection set can pretrain
on its instances instead. Each instance's box, with a context margin, is cut as a square around its centre (what
falls outside the image is mirrored in), resized to ``size`` and written as one image of its category:

    OUT/classes.txt                  the category names, one a line, in the annotation file's order (label = line)
    OUT/{train,val}.txt              mmpretrain CustomDataset annotation files: ``<folder>/<file> <label>``
    OUT/{train,val}/NNN_<name>/*.png one folder per category, NNN its label: sorted folders give the same labels,
                                     so the folders alone also plug into CustomDataset
    OUT/meta.json                    the settings and the counts per split and class

Crowd regions and boxes smaller than ``min_size`` pixels on their shorter side are skipped. The output depends
only on the inputs and the settings (files are named by annotation id), so a second run writes the same set.
"""
import json
import os
import os.path as osp
import re
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

CROP_SPLITS = ('train', 'val')


def load_coco(ann_file: str) -> dict:
    with open(ann_file) as f:
        coco = json.load(f)
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'{ann_file} is not a COCO-format detection file: it has no {key!r} list.')
    return coco


def coco_class_names(ann_file: str) -> Tuple[str, ...]:
    """The category names of a COCO annotation file, in the order of its ``categories`` list (mmdet's
    CocoDataset order when a config names the classes so)."""
    return tuple(c['name'] for c in load_coco(ann_file)['categories'])


def class_folder(label: int, name: str) -> str:
    """A file-system-safe folder name that sorts by label (CustomDataset labels sorted folders in order)."""
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'class'
    return f'{label:03d}_{safe}'


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Indices mirrored into ``[0, length)`` without repeating the edge pixel (OpenCV's REFLECT_101)."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.mod(index, period)
    return np.where(index >= length, period - index, index)


def crop_instance(img: np.ndarray, bbox: Sequence[float], size: int, context: float = 0.2) -> np.ndarray:
    """The square around ``bbox`` (COCO ``x, y, w, h``) whose side is the box's longer side plus ``context`` of
    it on each side, resized to ``size`` x ``size``. Padding is mirrored image, not a constant: a constant border
    would be a cue for "near the image edge" that no detector sees."""
    x, y, w, h = (float(v) for v in bbox)
    side = max(1, int(round(max(w, h) * (1 + 2 * context))))
    x0 = int(round(x + w / 2 - side / 2))
    y0 = int(round(y + h / 2 - side / 2))
    rows = _reflect(np.arange(y0, y0 + side), img.shape[0])
    cols = _reflect(np.arange(x0, x0 + side), img.shape[1])
    patch = img[np.ix_(rows, cols)]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def select_instances(coco: dict, classes: Sequence[str], min_size: float = 8) -> List[Tuple[dict, int]]:
    """``(annotation, label)`` of every instance worth a crop, in annotation-file order: not crowd, a box of at
    least ``min_size`` pixels on its shorter side, of a category named in ``classes`` (label: its index there)."""
    by_id = {c['id']: c['name'] for c in coco['categories']}
    missing = [name for name in classes if name not in by_id.values()]
    if missing:
        raise ValueError(f'classes {missing} are not categories of the annotation file '
                         f'(it has {list(by_id.values())}).')
    label_of = {name: i for i, name in enumerate(classes)}
    kept = []
    for ann in coco['annotations']:
        name = by_id.get(ann.get('category_id'))
        bbox = ann.get('bbox')
        if name not in label_of or ann.get('iscrowd', 0) or not bbox or min(bbox[2:4]) < min_size:
            continue
        kept.append((ann, label_of[name]))
    return kept


def _split_images(image_ids: Sequence, val_fraction: float, seed: int) -> set:
    """The images whose instances go to val: a seeded draw of ``val_fraction`` of them (whole images, so that no
    val crop shares its scene with a train crop)."""
    if val_fraction <= 0:
        return set()
    ids = sorted(set(image_ids))
    count = min(len(ids) - 1, max(1, int(round(val_fraction * len(ids)))))
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i] for i in order[:count]}


def _cap(items: List[Tuple[dict, int]], max_per_class: Optional[int], seed: int) -> List[Tuple[dict, int]]:
    if not max_per_class:
        return items
    order = np.random.default_rng([seed, 1]).permutation(len(items))
    counts, kept = {}, set()
    for i in order:
        label = items[i][1]
        if counts.get(label, 0) < max_per_class:
            counts[label] = counts.get(label, 0) + 1
            kept.add(int(i))
    return [item for i, item in enumerate(items) if i in kept]


def _write_split(out_dir: str, split: str, items: List[Tuple[dict, int]], images: Dict, img_dir: str,
                 classes: Sequence[str], size: int, context: float) -> List[int]:
    folders = [class_folder(i, name) for i, name in enumerate(classes)]
    for folder in folders:
        os.makedirs(osp.join(out_dir, split, folder), exist_ok=True)
    counts, lines = [0] * len(classes), []
    by_image: Dict = {}
    for ann, label in items:  # in annotation-file order: each image is read once
        by_image.setdefault(ann['image_id'], []).append((ann, label))
    for image_id, anns in by_image.items():
        path = osp.join(img_dir, images[image_id]['file_name'])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f'cannot read image {path} (image id {image_id} of the annotation file)')
        for ann, label in anns:
            name = f'{folders[label]}/{ann["id"]}.png'
            cv2.imwrite(osp.join(out_dir, split, name), crop_instance(img, ann['bbox'], size, context))
            lines.append((label, len(lines), f'{name} {label}'))
            counts[label] += 1
    with open(osp.join(out_dir, f'{split}.txt'), 'w') as f:
        f.writelines(line + '\n' for _, _, line in sorted(lines))
    return counts


def make_instance_crop_set(out_dir: str,
                           ann_file: str,
                           img_dir: str,
                           val_ann_file: Optional[str] = None,
                           val_img_dir: Optional[str] = None,
                           val_fraction: float = 0.1,
                           classes: Optional[Sequence[str]] = None,
                           size: int = 64,
                           context: float = 0.2,
                           min_size: float = 8,
                           max_per_class: Optional[int] = None,
                           seed: int = 0) -> dict:
    """Write the classification set of the instances of ``ann_file`` (images under ``img_dir``) to ``out_dir``.

    Val crops come from ``val_ann_file`` / ``val_img_dir`` when given (a detection set's own val split), else
    from ``val_fraction`` of the train images. ``classes`` (default: the annotation file's categories, in order)
    fixes the labels. ``max_per_class`` caps each class per split (a seeded draw). ``out_dir`` is replaced.
    Returns the contents of ``meta.json``: the settings, the classes and the counts per split and class.
    """
    if size < 8:
        raise ValueError(f'size must be at least 8 pixels, got {size}')
    if context < 0 or not 0 <= val_fraction < 1:
        raise ValueError(f'need context >= 0 and 0 <= val_fraction < 1, got context={context}, '
                         f'val_fraction={val_fraction}')
    train = load_coco(ann_file)
    classes = tuple(classes) if classes else tuple(c['name'] for c in train['categories'])
    if len(set(classes)) != len(classes):
        raise ValueError(f'class names must be unique, got {classes}')
    items = select_instances(train, classes, min_size)
    images = {img['id']: img for img in train['images']}
    if val_ann_file:
        val = load_coco(val_ann_file)
        splits = {'train': (items, images, img_dir),
                  'val': (select_instances(val, classes, min_size), {img['id']: img for img in val['images']},
                          val_img_dir or img_dir)}
    else:
        held_out = _split_images([ann['image_id'] for ann, _ in items], val_fraction, seed)
        splits = {'train': ([it for it in items if it[0]['image_id'] not in held_out], images, img_dir),
                  'val': ([it for it in items if it[0]['image_id'] in held_out], images, img_dir)}
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    counts = {}
    for split in CROP_SPLITS:
        split_items, split_images, split_dir = splits[split]
        counts[split] = _write_split(out_dir, split, _cap(split_items, max_per_class, seed), split_images, split_dir,
                                     classes, size, context)
    with open(osp.join(out_dir, 'classes.txt'), 'w') as f:
        f.writelines(name + '\n' for name in classes)
    meta = dict(classes=list(classes), counts=counts, size=size, context=context, min_size=min_size,
                max_per_class=max_per_class, seed=seed, ann_file=ann_file, img_dir=img_dir,
                val_ann_file=val_ann_file, val_img_dir=val_img_dir if val_ann_file else None,
                val_fraction=None if val_ann_file else val_fraction)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta


def crop_set_cfg_options(root: str, classes: Sequence[str]) -> Dict:
    """The changes that point a classification config (CustomDataset loaders, a ``num_classes`` head) at a crop
    set written by :func:`make_instance_crop_set`: data root, annotation files, class names and count."""
    options = {'model.head.num_classes': len(classes), 'data_preprocessor.num_classes': len(classes)}
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'val')):
        options.update({f'{loader}.dataset.data_root': root, f'{loader}.dataset.data_prefix': split,
                        f'{loader}.dataset.ann_file': f'{split}.txt',
                        f'{loader}.dataset.metainfo': dict(classes=tuple(classes))})
    return options
