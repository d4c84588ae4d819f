"""Run a detector written by tools/deployment/export_detector.py on one image, with ONNX Runtime and numpy only.

    python tools/deployment/onnx_detect_example.py model.onnx image.jpg [--score-thr 0.3] [--skip TTFF]

Needs onnxruntime, numpy and an image reader (OpenCV, else Pillow): no PyTorch, mmdet or mmcv. The image is
scaled to fit the model's input size (keeping its aspect ratio, as mmdet's ``Resize(keep_ratio=True)``) and padded
at the bottom / right with the pixel that normalises to mmdet's padding; detections are mapped back to the
image's pixels. Prints one line per detection: class, score, box (x1 y1 x2 y2) and, for Mask R-CNN, the mask's
area in pixels (masks pasted into their boxes as mmdet pastes them). A model written with --all-depths runs at the
depth given by --skip (default: the super-net), chosen by an input of the call: nothing is reloaded to switch.
"""
import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def read_image(path: str) -> np.ndarray:
    """The image as an ``(h, w, 3)`` uint8 BGR array, as mmdet's ``LoadImageFromFile`` reads it."""
    try:
        import cv2
    except ImportError:
        from PIL import Image
        return np.asarray(Image.open(path).convert('RGB'))[:, :, ::-1].copy()
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read an image from {path}')
    return image


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize, as mmcv's default ``imresize`` (OpenCV's INTER_LINEAR)."""
    try:
        import cv2
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    except ImportError:
        from PIL import Image
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def letterbox(image: np.ndarray, height: int, width: int, pad_pixel: np.ndarray):
    """``image`` scaled to fit ``height x width`` (aspect kept) and padded there; the scale factor (x, y) and
    the scaled image's ``(h, w)`` (the model's ``image_shape`` input)."""
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    new_w, new_h = min(width, int(w * scale + 0.5)), min(height, int(h * scale + 0.5))
    if (new_h, new_w) != (h, w):
        image = resize(image, new_w, new_h)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = pad_pixel
    canvas[:new_h, :new_w] = image
    return canvas, (new_w / w, new_h / h), np.array([new_h, new_w], np.float32)


def paste_masks(probs: np.ndarray, boxes: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """Each ``(M, M)`` mask probability map resampled into its box of a ``height x width`` image and thresholded:
    mmdet's ``_do_paste_mask`` (``grid_sample``, bilinear, ``align_corners=False``, zeros outside)."""
    masks = np.zeros((len(probs), height, width), bool)
    size_y, size_x = probs.shape[1:]
    ys, xs = np.arange(height, dtype=np.float32) + 0.5, np.arange(width, dtype=np.float32) + 0.5
    for i, (prob, (x0, y0, x1, y1)) in enumerate(zip(probs.astype(np.float32), boxes.astype(np.float32))):
        with np.errstate(divide='ignore', invalid='ignore'):
            gx = (xs - x0) / (x1 - x0) * 2 - 1
            gy = (ys - y0) / (y1 - y0) * 2 - 1
        gx[np.isinf(gx)], gy[np.isinf(gy)] = 0, 0
        px, py = ((gx + 1) * size_x - 1) / 2, ((gy + 1) * size_y - 1) / 2  # source pixel coordinates
        x_lo, y_lo = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        fx, fy = px - x_lo, py - y_lo
        padded = np.pad(prob, 1)  # zeros outside: a neighbour beyond the map reads the padding
        xi0, xi1 = np.clip(x_lo + 1, 0, size_x + 1), np.clip(x_lo + 2, 0, size_x + 1)
        yi0, yi1 = np.clip(y_lo + 1, 0, size_y + 1), np.clip(y_lo + 2, 0, size_y + 1)
        rows0, rows1 = padded[yi0], padded[yi1]
        value = ((rows0[:, xi0] * (1 - fx) + rows0[:, xi1] * fx) * (1 - fy)[:, None]
                 + (rows1[:, xi0] * (1 - fx) + rows1[:, xi1] * fx) * fy[:, None])
        masks[i] = value >= threshold
    return masks


class Detector:
    """An exported detector in ONNX Runtime: ``detector(bgr_image)`` -> list of dicts (class, score, box, mask)."""

    def __init__(self, path: str, threads: int = 0) -> None:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.height, self.width = (int(v) for v in meta['input_shape'].split(','))
        self.pad_pixel = np.array([float(v) for v in meta['pad_pixel'].split(',')], np.float32)
        self.classes = json.loads(meta.get('classes', '[]'))
        self.depth = meta.get('skip', '?')
        self.num_flags = int(meta.get('num_skip_flags', 0))  # > 0: an all-depths model with a skip input
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, image: np.ndarray, score_thr: float = 0.0, skip: str = None):
        """Detections in ``image`` (BGR); ``skip``: the depth of an all-depths model ('TTFF'; default super)."""
        canvas, (sx, sy), inside = letterbox(image, self.height, self.width, self.pad_pixel)
        h, w = image.shape[:2]
        feed = {'image': np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), 'image_shape': inside}
        if self.num_flags:
            skip = skip or 'F' * self.num_flags
            if len(skip) != self.num_flags or set(skip.upper()) - set('TF'):
                raise ValueError(f'skip must be {self.num_flags} T/F flags, got {skip!r}')
            feed['skip'] = np.array([c == 'T' for c in skip.upper()])
        elif skip:
            raise ValueError(f'this model holds one depth ({self.depth}): it takes no skip')
        outputs = dict(zip(self.output_names, self.session.run(None, feed)))
        n = int(outputs['num_detections'][0])
        boxes = outputs['boxes'][0, :n] / np.array([sx, sy, sx, sy], np.float32)
        keep = outputs['scores'][0, :n] >= score_thr
        masks = (paste_masks(outputs['masks'][0, :n][keep], boxes[keep], h, w)
                 if 'masks' in outputs else [None] * int(keep.sum()))
        detections = []
        for box, score, label, mask in zip(boxes[keep], outputs['scores'][0, :n][keep],
                                           outputs['labels'][0, :n][keep], masks):
            name = self.classes[label] if label < len(self.classes) else str(int(label))
            detections.append(dict(label=int(label), name=name, score=float(score), box=box.tolist(), mask=mask))
        return detections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='ONNX file written by tools/deployment/export_detector.py')
    parser.add_argument('image')
    parser.add_argument('--score-thr', type=float, default=0.0, help='also drop detections below this score')
    parser.add_argument('--threads', type=int, default=0, help='ONNX Runtime intra-op threads (0: its default)')
    parser.add_argument('--skip', help='the depth, for a model written with --all-depths (default: the super-net)')
    args = parser.parse_args(argv)
    detector = Detector(args.model, args.threads)
    try:
        detections = detector(read_image(args.image), args.score_thr, args.skip)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    depth = (args.skip or 'F' * detector.num_flags).upper() if detector.num_flags else detector.depth
    print(f'{len(detections)} detections (depth {depth}):')
    for det in detections:
        x1, y1, x2, y2 = det['box']
        area = '' if det['mask'] is None else f' mask_area={int(det["mask"].sum())}'
        print(f'{det["name"]} {det["score"]:.4f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f}{area}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
