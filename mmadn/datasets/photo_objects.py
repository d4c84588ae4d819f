"""A COCO-format instance-segmentation set cut from real photographs: objects of photos pasted on real textures.

Unlike the shapes of :mod:`.synthetic_coco`, whose class is a flat-coloured outline, an object here is a piece of
a real photograph and its class is what the photograph shows (the astronaut, the cat, the coffee cup, ...). The
mask shape (ellipse, rounded box or blob) is drawn independently of the class, so only the content tells the
class; two classes are real outlines instead (the coins, cut out of ``coins.png``, and the horse silhouette).
Objects are pasted at scales from 12 pixels to half the image, flipped, rotated and colour-jittered, onto crops of
real textures (brick, grass, gravel, moon, tissue, sky), with unlabelled texture patches of the same mask shapes
as distractors; later layers occlude earlier ones and an instance's mask is what stays visible.

The photographs are the sample images that scikit-image ships inside its wheel (``skimage/data``); they are read
from that folder with OpenCV, so nothing is downloaded (scikit-image's own loaders would fetch the images it does
not ship).
"""
import importlib.util
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .scene_coco import ClassDeck, Layer, SceneSplits, write_scene_splits

# class -> (file in skimage/data, region (x0, y0, x1, y1) that holds the object); coin / face / horse: see below
PHOTO_REGIONS = {
    'astronaut': ('astronaut.png', (20, 10, 370, 512)),
    'cat': ('chelsea.png', (20, 0, 400, 300)),
    'coffee': ('coffee.png', (75, 15, 480, 390)),
    'motorcycle': ('motorcycle_left.png', (90, 85, 690, 455)),
    'rocket': ('rocket.jpg', (230, 110, 410, 427)),
    'cameraman': ('camera.png', (0, 60, 410, 512)),
}
PHOTO_CLASSES = tuple(PHOTO_REGIONS) + ('coin', 'face', 'horse')
# grey-level or colour textures for the backgrounds and the distractors
TEXTURES = ('brick.png', 'grass.png', 'gravel.png', 'moon.png', 'ihc.png', 'hubble_deep_field.jpg')
MIN_IMAGE_SIZE = 48
MIN_OBJECT = 12  # the longer side of the smallest object, in pixels; the largest is 0.55 of the image's shorter side


def skimage_data_dir() -> str:
    """The folder of the sample images inside the installed scikit-image (found without importing it)."""
    spec = importlib.util.find_spec('skimage')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('the photo-object data set is cut from the sample images that scikit-image ships: '
                          'pip install scikit-image (requirements.txt)')
    return osp.join(list(spec.submodule_search_locations)[0], 'data')


def _read(name: str) -> np.ndarray:
    path = osp.join(skimage_data_dir(), name)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'{path}: this scikit-image does not ship {name} (the data set needs the sample '
                                'images of the scikit-image wheel pinned in requirements/constraints-cpu.txt)')
    return img


def _coins(img: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The coins of ``coins.png`` as (patch, mask): bright discs on a darker, unevenly lit table."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    local = cv2.GaussianBlur(grey, (0, 0), 25)
    fg = (cv2.GaussianBlur(grey, (0, 0), 1.5).astype(int) > local.astype(int) + 8).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    coins = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < 400 or not 0.6 < w / h < 1.6:
            continue
        mask = (labels[y:y + h, x:x + w] == i).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        mask = cv2.drawContours(np.zeros_like(mask), [cv2.convexHull(max(contours, key=cv2.contourArea))], -1, 1,
                                -1)  # filled: the dark relief inside a coin is still coin
        coins.append((img[y:y + h, x:x + w], mask.astype(bool)))
    return coins


@lru_cache(maxsize=1)
def photo_sources() -> Dict[str, object]:
    """Everything the scenes are cut from, read once: per class a list of (patch, mask or None), and textures."""
    sources = {}
    for name, (file, (x0, y0, x1, y1)) in PHOTO_REGIONS.items():
        sources[name] = [(_read(file)[y0:y1, x0:x1], None)]
    sources['coin'] = _coins(_read('coins.png'))
    faces = np.load(osp.join(skimage_data_dir(), 'lfw_subset.npy'))[:100]  # the first 100 are faces
    sources['face'] = [(cv2.cvtColor((f * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR), None) for f in faces]
    horse = _read('horse.png')[:, :, 0] < 128
    ys, xs = np.nonzero(horse)
    sources['horse'] = [(None, horse[ys.min():ys.max() + 1, xs.min():xs.max() + 1])]
    sources['textures'] = [_read(t) for t in TEXTURES]
    return sources


def _shape_mask(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """An ellipse, a rounded box or a blob filling most of a w x h patch: the same for every class."""
    mask = np.zeros((h, w), np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w, h), 0), 1, -1)
    elif kind == 1:
        r = max(1, int(min(w, h) * rng.uniform(0.1, 0.35)))
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 1, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 1, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 1, -1)
    else:
        n = int(rng.integers(7, 12))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.7, 1.0, n)
        pts = np.stack([(w - 1) / 2 * (1 + radii * np.cos(angles)), (h - 1) / 2 * (1 + radii * np.sin(angles))], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def _jitter(rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    """Brightness, contrast, saturation and a small hue shift: lighting changes, not a new colour."""
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.7, 1.2)
    v = hsv[..., 2]
    hsv[..., 2] = (v - v.mean()) * rng.uniform(0.75, 1.25) + v.mean() * rng.uniform(0.7, 1.25)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


def _texture_crop(rng: np.random.Generator, texture: np.ndarray, w: int, h: int) -> np.ndarray:
    """A random window of a texture, resized to w x h, flipped / turned, and tinted when it is grey."""
    th, tw = texture.shape[:2]
    side = int(min(th, tw) * rng.uniform(0.25, 1.0))
    cw, ch = (side, max(1, int(side * h / w))) if w >= h else (max(1, int(side * w / h)), side)
    cw, ch = min(cw, tw), min(ch, th)
    x, y = int(rng.integers(0, tw - cw + 1)), int(rng.integers(0, th - ch + 1))
    crop = cv2.resize(texture[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if np.ptp(crop.astype(int).reshape(-1, 3).mean(0)) < 3:  # a grey texture: give it a colour
        crop = np.clip(crop * rng.uniform(0.45, 1.1, 3), 0, 255).astype(np.uint8)
    return _jitter(rng, crop)


def _background(rng: np.random.Generator, textures: Sequence[np.ndarray], w: int, h: int) -> np.ndarray:
    """One texture, or two blended through a smooth random field."""
    img = _texture_crop(rng, textures[rng.integers(len(textures))], w, h)
    if rng.random() < 0.5:
        other = _texture_crop(rng, textures[rng.integers(len(textures))], w, h)
        field = cv2.resize(rng.random((3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        alpha = np.clip((field - 0.5) * 4 + 0.5, 0, 1)[..., None]
        img = (img * alpha + other * (1 - alpha)).astype(np.uint8)
    return img


def _scaled(shape: Tuple[int, ...], long_side: int) -> Tuple[int, int]:
    """(w, h) of an array of ``shape`` resized so that its longer side is ``long_side``."""
    scale = long_side / max(shape[:2])
    return max(2, round(shape[1] * scale)), max(2, round(shape[0] * scale))


def _object_patch(rng: np.random.Generator, sources: Dict[str, object], name: str, textures: Sequence[np.ndarray],
                  long_side: int) -> Tuple[np.ndarray, np.ndarray]:
    """A class's patch and mask, their longer side ``long_side`` pixels, colour-jittered."""
    patch, mask = sources[name][rng.integers(len(sources[name]))]
    if name == 'horse':  # a silhouette: a dark coat whose grain is a real texture
        size = _scaled(mask.shape, long_side)
        mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
        coat = _texture_crop(rng, textures[rng.integers(len(textures))], *size).astype(np.float32)
        tone = rng.uniform([10, 20, 40], [60, 80, 120])  # black to brown (BGR)
        return np.clip(tone + (coat - coat.mean()) * 0.35, 0, 255).astype(np.uint8), mask
    if mask is None and name != 'face':  # a window of the object's region, most of it
        h, w = patch.shape[:2]
        f = rng.uniform(0.7, 1.0)
        cw = min(w, max(4, int(w * f * rng.uniform(0.9, 1.1))))
        ch = min(h, max(4, int(h * f * rng.uniform(0.9, 1.1))))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        patch = patch[y:y + ch, x:x + cw]
    size = _scaled(patch.shape, long_side)
    patch = cv2.resize(np.ascontiguousarray(patch), size, interpolation=cv2.INTER_AREA)  # no aliasing
    if mask is None:
        mask = _shape_mask(rng, *size)
    else:
        mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return _jitter(rng, patch), mask


def _place(rng: np.random.Generator, img: np.ndarray, patch: np.ndarray, mask: np.ndarray,
           angle: float) -> np.ndarray:
    """Flip and rotate ``patch`` and paste it where its mask is; returns the painted mask of the image."""
    height, width = img.shape[:2]
    if rng.random() < 0.5:
        patch, mask = patch[:, ::-1], mask[:, ::-1]
    ph, pw = mask.shape
    # the patch's centre goes to (cx, cy); up to a quarter of the object may leave the image
    half = 0.25 * max(ph, pw)
    cx, cy = rng.uniform(half, width - half), rng.uniform(half, height - half)
    affine = cv2.getRotationMatrix2D(((pw - 1) / 2, (ph - 1) / 2), angle, 1.0)
    affine[:, 2] += (cx - (pw - 1) / 2, cy - (ph - 1) / 2)
    warped = cv2.warpAffine(np.ascontiguousarray(patch), affine, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    painted = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.uint8) * 255, affine, (width, height),
                             flags=cv2.INTER_LINEAR) >= 128
    img[painted] = warped[painted]
    return painted


def _make_scene(rng: np.random.Generator, deck: ClassDeck, size: Tuple[int, int], max_objects: int,
                max_distractors: int) -> Tuple[np.ndarray, List[Layer]]:
    sources = photo_sources()
    textures = sources['textures']
    width, height = size
    img = _background(rng, textures, width, height)
    labels = [deck.draw() for _ in range(rng.integers(1, max_objects + 1))]
    labels += [None] * int(rng.integers(0, max_distractors + 1))
    layers = []
    for i in rng.permutation(len(labels)):  # distractors at any depth
        label = labels[i]
        long_side = int(np.exp(rng.uniform(np.log(MIN_OBJECT), np.log(0.55 * min(size)))))
        angle = rng.uniform(-20, 20)
        if label is None:  # a textured patch of the objects' mask shapes: not every pasted thing is an object
            w, h = _scaled((rng.uniform(0.6, 1.6), 1.0), long_side)
            patch = _texture_crop(rng, textures[rng.integers(len(textures))], w, h)
            mask = _shape_mask(rng, w, h)
        else:
            patch, mask = _object_patch(rng, sources, PHOTO_CLASSES[label], textures, long_side)
        layers.append((label, _place(rng, img, patch, mask, angle)))
    return img, layers


def make_photo_objects(root: str,
                       splits: SceneSplits = SceneSplits(),
                       max_objects: int = 6,
                       max_distractors: int = 3) -> Dict[str, str]:
    """Write the photo-object set under ``root`` in COCO's layout (:func:`write_scene_splits`); returns the json
    paths."""
    if max_objects < 1 or max_distractors < 0:
        raise ValueError(f'need max_objects >= 1 and max_distractors >= 0, got {max_objects}, {max_distractors}')
    size = tuple(splits.size)
    return write_scene_splits(
        root, splits, PHOTO_CLASSES, 'photo',
        lambda rng, deck: _make_scene(rng, deck, size, max_objects, max_distractors), MIN_IMAGE_SIZE)
