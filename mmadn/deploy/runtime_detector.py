"""The whole exported detector (``export_detector``) in a runtime, scored as mmdet's own ``predict`` is scored.

``RuntimeDetector`` feeds the images the config's test pipeline makes (resized, not yet normalised or padded) to
the ONNX model and maps its outputs back to each original image as ``predict(rescale=True)`` does: boxes divided
by the resize factors, masks pasted into their boxes at the original size with mmdet's own paste and threshold.
What comes out are ``DetDataSample``s with ``pred_instances``, so the config's evaluator (``CocoMetric``) scores
the runtime's detections themselves, not PyTorch's (benchmark_subnets.py --backend onnxruntime|openvino).

``RuntimeDetectors`` gives the model for each depth measured: one all-depths model exported once (the depth an
input of each call), or one file per depth exported while that depth is active, which norm statistics
recalibrated per depth need (the all-depths model holds one set).
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from .all_depths import skip_tensor
from .detector_export import DeployableDetector, export_detector, test_input_shape
from .runtime import make_session

RUNTIME_MODELS = ('auto', 'all-depths', 'per-depth')


def whole_detector_refusal(model: nn.Module) -> Optional[str]:
    """Why ``model`` cannot be exported whole (``DeployableDetector``'s refusal), or None if it can."""
    try:
        DeployableDetector._check(model)
    except TypeError as err:
        return str(err)
    return None


def paste_masks(probs: torch.Tensor, bboxes: torch.Tensor, shape: Sequence[int], threshold: float) -> torch.Tensor:
    """``(n, M, M)`` mask probabilities pasted into their boxes of an image of ``shape`` and thresholded, as
    mmdet's ``FCNMaskHead`` does on a CPU: one mask at a time, only the region around its box (``skip_empty``)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    height, width = int(shape[0]), int(shape[1])
    masks = torch.zeros(len(probs), height, width, dtype=torch.bool)
    for i in range(len(probs)):
        pasted, region = _do_paste_mask(probs[i:i + 1, None], bboxes[i:i + 1], height, width, skip_empty=True)
        masks[i][region] = pasted[0] >= threshold
    return masks


class RuntimeDetector:
    """An ONNX model written by ``export_detector`` (one depth, or all depths with a ``skip`` input) running in
    ``backend``; ``predict(inputs, data_samples, skip)`` as a detector's ``test_step`` predicts, from what the
    test dataloader yields. Everything it needs to feed the model is read from the file's metadata."""

    def __init__(self, onnx_path: str, backend: str = 'onnxruntime', threads: int = 0) -> None:
        import onnx
        meta = {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
        self.onnx_path, self.backend = onnx_path, backend
        self.input_shape = tuple(int(v) for v in meta['input_shape'].split(','))
        self.pad_pixel = np.array([float(v) for v in meta['pad_pixel'].split(',')], np.float32)
        self.output_names = meta['outputs'].split(',')
        self.skip = meta.get('skip')  # 'all' for the all-depths model
        self.num_flags = int(meta.get('num_skip_flags', 0))
        self.mask_thr = float(meta.get('mask_thr_binary', 0.5))
        self.run = make_session(onnx_path, backend, threads)

    @property
    def all_depths(self) -> bool:
        return self.skip == 'all'

    def feed(self, image: torch.Tensor, skip: Optional[str] = None) -> Tuple[np.ndarray, ...]:
        """The model's inputs for one ``(3, h, w)`` image as the test pipeline leaves it: placed at the top left of
        the fixed input, padded with the pixel that normalises to mmdet's padding, ``(h, w)`` as ``image_shape``."""
        height, width = image.shape[-2:]
        if height > self.input_shape[0] or width > self.input_shape[1]:
            raise ValueError(f'a {height}x{width} image does not fit the model\'s {self.input_shape[0]}x'
                             f'{self.input_shape[1]} input: export it at the test pipeline\'s Resize scale')
        canvas = np.empty((1, 3) + self.input_shape, np.float32)
        canvas[:] = self.pad_pixel.reshape(1, 3, 1, 1)
        canvas[0, :, :height, :width] = image.numpy()
        arrays = (canvas, np.array([height, width], np.float32))
        if self.all_depths:  # default: the super-net
            return arrays + (skip_tensor(skip or 'F' * self.num_flags).numpy(), )
        if skip is not None and skip != self.skip:
            raise ValueError(f'{self.onnx_path} holds depth {self.skip}, not {skip}')
        return arrays

    def __call__(self, *arrays: np.ndarray) -> Dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.run(*arrays)))

    def instances(self, outputs: Dict[str, np.ndarray], meta: dict):
        """One image's outputs as mmdet's ``pred_instances`` in the original image (``ori_shape``)."""
        from mmengine.structures import InstanceData
        n = int(outputs['num_detections'][0])
        bboxes = torch.from_numpy(outputs['boxes'][0, :n].copy())
        scale = bboxes.new_tensor(meta.get('scale_factor', (1.0, 1.0))).repeat(2).view(1, 4)
        results = InstanceData(scores=torch.from_numpy(outputs['scores'][0, :n].copy()),
                               labels=torch.from_numpy(outputs['labels'][0, :n].copy()))
        if 'masks' in outputs:
            bboxes = bboxes / scale  # Mask R-CNN's boxes are rescaled by its mask head, dividing
            results.masks = paste_masks(torch.from_numpy(outputs['masks'][0, :n].copy()), bboxes,
                                        meta['ori_shape'], self.mask_thr)
        else:
            bboxes = bboxes * (1 / scale)  # the bbox / dense head's scale_boxes with the inverse factors
        results.bboxes = bboxes
        return results

    def predict(self, inputs: Sequence[torch.Tensor], data_samples: Sequence, skip: Optional[str] = None) -> List:
        """Each image of a test batch through the model (batch size 1 inside); the samples get ``pred_instances``."""
        for image, sample in zip(inputs, data_samples):
            sample.pred_instances = self.instances(self(*self.feed(image, skip)), sample.metainfo)
        return list(data_samples)


def evaluate_runtime(detector: RuntimeDetector, dataloader, evaluator,
                     skip: Optional[str] = None) -> Tuple[Dict[str, float], int, int]:
    """The evaluator's metrics of ``detector``'s own detections over ``dataloader`` (as mmengine's test loop scores
    a model's ``predict``), the number of images and the number of detections."""
    images = detections = 0
    with torch.no_grad():
        for batch in dataloader:
            samples = detector.predict(batch['inputs'], batch['data_samples'], skip)
            images += len(samples)
            detections += sum(len(s.pred_instances) for s in samples)
            evaluator.process(data_samples=samples, data_batch=batch)
    return evaluator.evaluate(len(dataloader.dataset)), images, detections


class RuntimeDetectors:
    """The exported whole detector for each depth of a benchmark: ``detectors(model, skip)`` gives the
    ``RuntimeDetector`` that runs ``skip`` (the active depth of ``model``). With ``all_depths`` one model is
    exported on the first call and serves every depth; otherwise each call exports the active depth, norms
    folded, to ``<onnx_dir>/<skip>.detector.onnx`` (anew: a file left by an earlier run may hold another
    checkpoint)."""

    def __init__(self, cfg, onnx_dir: str, backend: str = 'onnxruntime', all_depths: bool = True,
                 threads: int = 0) -> None:
        self.input_shape = test_input_shape(cfg)
        self.onnx_dir, self.backend, self.all_depths, self.threads = onnx_dir, backend, all_depths, threads
        self._shared = None

    def __call__(self, model: nn.Module, skip: str) -> RuntimeDetector:
        if self.all_depths and self._shared is not None:
            return self._shared
        os.makedirs(self.onnx_dir, exist_ok=True)
        name = 'all_depths' if self.all_depths else skip
        path = osp.join(self.onnx_dir, f'{name}.detector.onnx')
        print_log(f'exporting the whole detector ({"all depths" if self.all_depths else skip}) to {path}',
                  logger='current', level=logging.INFO)
        export_detector(DeployableDetector(model, self.input_shape, all_depths=self.all_depths), path,
                        dict(skip='all' if self.all_depths else skip))
        detector = RuntimeDetector(path, self.backend, self.threads)
        if self.all_depths:
            self._shared = detector
        return detector
