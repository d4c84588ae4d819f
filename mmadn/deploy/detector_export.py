"""A whole detector at one depth as one ONNX model: image in, boxes / scores / labels (/ masks) out.

mmdeploy 1.3.1 would rewrite mmdet's test path for export, and it fails with this torch (docs/deployment.md,
section 3). ``DeployableDetector`` is the project's own replacement for the part it rewrites: it runs the trained
detector's own modules (data preprocessor constants, the static backbone + neck of the active depth, the heads'
convs, anchors, RoI heads, box coder parameters) and re-writes only the post-processing glue with operations that
torch.onnx turns into standard ONNX ops (NonZero, TopK, NonMaxSuppression, RoiAlign): mmcv's RoIAlign and NMS
have no ONNX form of their own. The runtime needs nothing but ONNX Runtime. What follows the neck is one of
``DETECTOR_HEADS``: ``TwoStageHeads`` (Faster / Mask R-CNN) or ``DenseHeads`` (RetinaNet).

Inputs: ``image``, one image of the exported size (``(1, 3, H, W)`` float, 0-255, the channel order the config
loads), and ``image_shape``, ``(h, w)`` of the resized image inside it (padded at the bottom / right with
``pad_pixel`` from the model's metadata, which normalises to mmdet's padding). The outputs are mmdet's
``predict`` (``rescale=False``) for that image whenever mmdet would pad it to the same size as the exported one
(the size divisor, 32, rounds both up alike): exactly so for an image of the exported size, and within a few
border pixels of the feature maps for a much smaller one.

Outputs have a fixed size: ``max_per_img`` rows (the config's ``test_cfg.rcnn.max_per_img``, RetinaNet's
``test_cfg.max_per_img``), the first ``num_detections`` of them valid, in descending score order; the rest are
zeros. Boxes are in the input image's pixels (x1, y1, x2, y2). Mask R-CNN adds ``masks``: each detection's mask probabilities for its own class at the
mask head's resolution (28 x 28 by default), to be pasted into its box as mmdet does (``paste_masks`` in
tools/deployment/onnx_detect_example.py).
"""
import copy
import inspect
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .runtime import HAS_DYNAMO_EXPORTER, deployable_part, require_dynamo_exporter

INPUT_NAMES = ('image', 'image_shape')
OUTPUT_NAMES = ('boxes', 'scores', 'labels', 'num_detections')
MASK_OUTPUT = 'masks'


def _unsupported(what: str) -> TypeError:
    return TypeError('whole-detector export supports two-stage detectors with mmdet\'s RPNHead and StandardRoIHead '
                     f'(Faster / Mask R-CNN) and single-stage ones with its RetinaHead (RetinaNet): {what}. Export the '
                     'backbone + neck instead (mmadn.deploy.runtime.deployable_part).')


def _nms_iou(cfg, where: str) -> float:
    nms = cfg.get('nms')
    if nms is None or nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False):
        raise _unsupported(f'{where}.nms must be plain per-class nms, got {nms}')
    return float(nms['iou_threshold'])


def _check_roi_extractor(extractor: nn.Module, where: str) -> None:
    if type(extractor).__name__ != 'SingleRoIExtractor':
        raise _unsupported(f'{where} is {type(extractor).__name__}, not SingleRoIExtractor')
    for layer in extractor.roi_layers:
        if type(layer).__name__ != 'RoIAlign' or layer.pool_mode != 'avg':
            raise _unsupported(f'{where} pools with {type(layer).__name__} '
                               f'(pool_mode={getattr(layer, "pool_mode", None)}), not RoIAlign avg')
    if getattr(extractor, 'roi_scale_factor', None) not in (None, 1, 1.0):
        raise _unsupported(f'{where}.roi_scale_factor={extractor.roi_scale_factor}')


def _check_coder(coder, where: str) -> None:
    if type(coder).__name__ != 'DeltaXYWHBBoxCoder' or coder.add_ctr_clamp:
        raise _unsupported(f'{where} is {type(coder).__name__} (add_ctr_clamp='
                           f'{getattr(coder, "add_ctr_clamp", None)}), not DeltaXYWHBBoxCoder')


def _decode(coder, anchors: torch.Tensor, deltas: torch.Tensor, max_shape: torch.Tensor) -> torch.Tensor:
    """mmdet's ``delta2bbox`` for ``(n, 4)`` anchors and deltas with ``coder``'s parameters, clipped to
    ``max_shape`` (a tensor ``(h, w)``), without its in-place clamps on strided views and its branch on an empty
    input (neither traces into ONNX)."""
    means = deltas.new_tensor(coder.means).view(1, 4)
    stds = deltas.new_tensor(coder.stds).view(1, 4)
    deltas = deltas * stds + means
    # the heads call decode with its default wh_ratio_clip (16 / 1000 in mmdet 3.3)
    wh_ratio_clip = inspect.signature(coder.decode).parameters['wh_ratio_clip'].default
    max_ratio = float(np.abs(np.log(wh_ratio_clip)))
    pxy = (anchors[:, :2] + anchors[:, 2:]) * 0.5
    pwh = anchors[:, 2:] - anchors[:, :2]
    gxy = pxy + pwh * deltas[:, :2]
    gwh = pwh * deltas[:, 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    x1y1, x2y2 = gxy - gwh * 0.5, gxy + gwh * 0.5
    if coder.clip_border:
        upper = max_shape.to(deltas.dtype).flip(0).view(1, 2)
        x1y1 = torch.minimum(x1y1.clamp(min=0), upper)
        x2y2 = torch.minimum(x2y2.clamp(min=0), upper)
    return torch.cat([x1y1, x2y2], dim=-1)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices kept by mmcv's ``batched_nms`` (per group, by the offset trick), highest score first. The offset is
    the largest coordinate + 1 as in mmcv; a zero joins the maximum so that an empty input exports (boxes are
    clipped to the image, never negative, so it does not change it)."""
    from torchvision.ops import nms
    max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes.dtype) * (max_coordinate + 1)
    return nms(boxes + offsets[:, None], scores, iou)


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` (at most ``rows`` long) padded with zeros to exactly ``rows``: a fixed output size with no shape
    arithmetic on a data-dependent length."""
    return torch.cat([x, x.new_zeros((rows, ) + tuple(x.shape[1:]))])[:rows]


def _drop_small(min_size: float, boxes: torch.Tensor, *others: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """``boxes`` and the rows of ``others`` that go with them, without the boxes no wider or higher than
    ``min_size`` (mmdet's ``min_bbox_size`` filter; none dropped when it is negative)."""
    if min_size < 0:
        return (boxes, ) + others
    wh = boxes[:, 2:] - boxes[:, :2]
    valid = ((wh[:, 0] > min_size) & (wh[:, 1] > min_size)).nonzero()[:, 0]
    return tuple(x[valid] for x in (boxes, ) + others)


def _level_anchors(module: nn.Module, prior_generator, featmap_sizes: Sequence[Tuple[int, int]]) -> int:
    """The head's own anchors for ``featmap_sizes``, stored in ``module`` as buffers ``anchors_<level>``
    (constants at a fixed input size); returns the number of levels."""
    anchors = prior_generator.grid_priors(featmap_sizes, device='cpu')
    for level, level_anchors in enumerate(anchors):
        module.register_buffer(f'anchors_{level}', level_anchors.detach().clone())
    return len(anchors)


class TwoStageHeads(nn.Module):
    """What a two-stage detector (Faster / Mask R-CNN: mmdet's ``RPNHead`` + ``StandardRoIHead``) does after
    the neck: ``forward(feats, image_shape)`` -> boxes, scores, labels (``max_per_img`` at most, best first);
    ``mask_probs`` for Mask R-CNN. The heads are the model's own modules."""

    @staticmethod
    def applies(model: nn.Module) -> bool:
        return hasattr(model, 'rpn_head') and hasattr(model, 'roi_head')

    @staticmethod
    def check(model: nn.Module) -> None:
        rpn, roi = model.rpn_head, model.roi_head
        if type(rpn).__name__ != 'RPNHead' or not rpn.use_sigmoid_cls or rpn.num_convs != 1:
            raise _unsupported(f'the RPN head is {type(rpn).__name__} (sigmoid scores and one conv expected)')
        if type(roi).__name__ != 'StandardRoIHead' or getattr(roi, 'with_shared_head', False):
            raise _unsupported(f'the RoI head is {type(roi).__name__}')
        _check_coder(rpn.bbox_coder, 'rpn_head.bbox_coder')
        _check_coder(roi.bbox_head.bbox_coder, 'roi_head.bbox_head.bbox_coder')
        _check_roi_extractor(roi.bbox_roi_extractor, 'roi_head.bbox_roi_extractor')
        bbox_head = roi.bbox_head
        if bbox_head.custom_cls_channels or getattr(bbox_head.loss_cls, 'use_sigmoid', False):
            raise _unsupported('the bbox head scores with a custom / sigmoid classifier, not a softmax')
        if getattr(roi, 'with_mask', False):
            if type(roi.mask_head).__name__ != 'FCNMaskHead':
                raise _unsupported(f'the mask head is {type(roi.mask_head).__name__}, not FCNMaskHead')
            if not roi.share_roi_extractor:
                _check_roi_extractor(roi.mask_roi_extractor, 'roi_head.mask_roi_extractor')
        _nms_iou(rpn.test_cfg, 'test_cfg.rpn')
        _nms_iou(roi.test_cfg, 'test_cfg.rcnn')

    def __init__(self, model: nn.Module, featmap_sizes: Sequence[Tuple[int, int]]) -> None:
        super().__init__()
        self.rpn_head, self.roi_head = model.rpn_head, model.roi_head
        rpn_cfg, rcnn_cfg = model.rpn_head.test_cfg, model.roi_head.test_cfg
        self.rpn_nms_pre, self.rpn_max = int(rpn_cfg.get('nms_pre', -1)), int(rpn_cfg['max_per_img'])
        self.rpn_iou = _nms_iou(rpn_cfg, 'test_cfg.rpn')
        self.min_bbox_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.score_thr, self.max_per_img = float(rcnn_cfg['score_thr']), int(rcnn_cfg['max_per_img'])
        self.rcnn_iou = _nms_iou(rcnn_cfg, 'test_cfg.rcnn')
        self.with_mask = bool(getattr(model.roi_head, 'with_mask', False))
        self.mask_thr = float(rcnn_cfg.get('mask_thr_binary', 0.5))
        self.mask_extractor = None
        if self.with_mask:
            head = model.roi_head
            self.mask_extractor = head.bbox_roi_extractor if head.share_roi_extractor else head.mask_roi_extractor
        self.num_levels = _level_anchors(self, model.rpn_head.prior_generator, featmap_sizes)

    def forward(self, feats: List[torch.Tensor], image_shape: torch.Tensor):
        return self.detect(feats, self.proposals(feats, image_shape), image_shape)

    def proposals(self, feats: List[torch.Tensor], image_shape: torch.Tensor) -> torch.Tensor:
        """``RPNHead.predict`` for one image: top ``nms_pre`` per level, decode, small boxes out, per-level NMS,
        the first ``max_per_img``."""
        cls_scores, bbox_preds = self.rpn_head(feats)
        scores, deltas, anchors, levels = [], [], [], []
        for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            level_scores = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()
            level_deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            level_anchors = getattr(self, f'anchors_{level}')
            if 0 < self.rpn_nms_pre < level_scores.shape[0]:  # shapes are fixed: a Python decision at export
                level_scores, index = level_scores.topk(self.rpn_nms_pre)
                level_deltas, level_anchors = level_deltas[index], level_anchors[index]
            scores.append(level_scores)
            deltas.append(level_deltas)
            anchors.append(level_anchors)
            levels.append(torch.full_like(level_scores, level, dtype=torch.int64))
        scores, levels = torch.cat(scores), torch.cat(levels)
        boxes = _decode(self.rpn_head.bbox_coder, torch.cat(anchors), torch.cat(deltas), image_shape)
        boxes, scores, levels = _drop_small(self.min_bbox_size, boxes, scores, levels)
        keep = _batched_nms(boxes, scores, levels, self.rpn_iou)[:self.rpn_max]
        return boxes[keep]

    def roi_features(self, extractor: nn.Module, feats: List[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """``SingleRoIExtractor.forward`` with torchvision's RoIAlign (ONNX RoiAlign), the extractor's own level
        mapping and RoIAlign parameters: each RoI pooled from its level only."""
        from torchvision.ops import roi_align
        layers = extractor.roi_layers
        size = layers[0].output_size
        out = feats[0].new_zeros((rois.shape[0], extractor.out_channels) + tuple(size))
        levels = extractor.map_roi_levels(rois, len(layers))
        for level, layer in enumerate(layers):
            index = (levels == level).nonzero()[:, 0]
            out[index] = roi_align(feats[level], rois[index], layer.output_size, layer.spatial_scale,
                                   layer.sampling_ratio, layer.aligned)
        return out

    def detect(self, feats: List[torch.Tensor], proposals: torch.Tensor, image_shape: torch.Tensor):
        """``StandardRoIHead.predict_bbox`` + mmdet's ``multiclass_nms`` for one image: RoI features, the bbox
        head, softmax, per-class decode, score threshold, per-class NMS, the first ``max_per_img``."""
        bbox_head = self.roi_head.bbox_head
        rois = torch.cat([proposals.new_zeros(proposals.shape[0], 1), proposals], dim=1)
        cls_score, bbox_pred = bbox_head(self.roi_features(self.roi_head.bbox_roi_extractor, feats, rois))
        probs = F.softmax(cls_score, dim=-1)[:, :-1]  # the last column is the background
        num_classes = probs.shape[1]
        per_roi = 1 if bbox_head.reg_class_agnostic else num_classes
        boxes = _decode(bbox_head.bbox_coder, proposals.repeat_interleave(per_roi, dim=0),
                        bbox_pred.reshape(-1, 4), image_shape).reshape(-1, per_roi, 4)
        boxes = boxes.expand(-1, num_classes, 4).reshape(-1, 4)
        labels = torch.arange(num_classes).view(1, -1).expand_as(probs).reshape(-1)
        probs = probs.reshape(-1)
        valid = (probs > self.score_thr).nonzero()[:, 0]
        boxes, probs, labels = boxes[valid], probs[valid], labels[valid]
        keep = _batched_nms(boxes, probs, labels, self.rcnn_iou)[:self.max_per_img]
        return boxes[keep], probs[keep], labels[keep]

    def mask_probs(self, feats: List[torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``StandardRoIHead.predict_mask`` up to the paste: each detection's mask probabilities for its class."""
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)
        logits = self.roi_head.mask_head(self.roi_features(self.mask_extractor, feats, rois))
        if not self.roi_head.mask_head.class_agnostic:
            index = labels.view(-1, 1, 1, 1).expand(-1, 1, logits.shape[2], logits.shape[3])
            logits = logits.gather(1, index)
        return logits[:, 0].sigmoid()


class DenseHeads(nn.Module):
    """What a single-stage anchor detector (RetinaNet: mmdet's ``RetinaHead``) does after the neck, as
    ``BaseDenseHead.predict_by_feat`` does it for one image: per level the sigmoid score of every anchor and
    class, the ``nms_pre`` best of them above ``score_thr``, decoded; small boxes out, class-wise NMS over all
    levels, the first ``max_per_img``. The head, its anchor generator and box coder are the model's own."""

    with_mask = False

    @staticmethod
    def applies(model: nn.Module) -> bool:
        return hasattr(model, 'bbox_head') and not hasattr(model, 'roi_head')

    @staticmethod
    def check(model: nn.Module) -> None:
        head = model.bbox_head
        if type(head).__name__ != 'RetinaHead':
            raise _unsupported(f'the dense head is {type(head).__name__}, not RetinaHead')
        if not head.use_sigmoid_cls or getattr(head.loss_cls, 'custom_cls_channels', False):
            raise _unsupported('the dense head scores with a softmax / custom classifier, not a sigmoid')
        _check_coder(head.bbox_coder, 'bbox_head.bbox_coder')
        _nms_iou(head.test_cfg, 'test_cfg')
        if int(head.test_cfg.get('nms_pre', -1)) <= 0:
            # mmdet's filter_scores_and_topk then keeps all but the last candidate (scores[:-1])
            raise _unsupported(f'test_cfg.nms_pre={head.test_cfg.get("nms_pre", -1)} (a positive top-k expected)')

    def __init__(self, model: nn.Module, featmap_sizes: Sequence[Tuple[int, int]]) -> None:
        super().__init__()
        self.head = model.bbox_head
        cfg = self.head.test_cfg
        self.nms_pre = int(cfg['nms_pre'])
        self.score_thr, self.max_per_img = float(cfg.get('score_thr', 0)), int(cfg['max_per_img'])
        self.min_bbox_size = float(cfg.get('min_bbox_size', -1))
        self.iou = _nms_iou(cfg, 'test_cfg')
        self.num_levels = _level_anchors(self, self.head.prior_generator, featmap_sizes)

    def forward(self, feats: List[torch.Tensor], image_shape: torch.Tensor):
        cls_scores, bbox_preds = self.head(feats)
        num_classes = self.head.cls_out_channels
        scores, labels, deltas, anchors = [], [], [], []
        for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            level_scores = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()  # anchor-major, then class
            candidates = torch.arange(level_scores.shape[0])
            # mmdet keeps the nms_pre best scores above the threshold: the same as the nms_pre best overall, then
            # those above it, with a fixed top-k (shapes are fixed: a Python decision at export)
            if self.nms_pre < level_scores.shape[0]:
                level_scores, candidates = level_scores.topk(self.nms_pre)
            above = (level_scores > self.score_thr).nonzero()[:, 0]
            level_scores, candidates = level_scores[above], candidates[above]
            anchor_index = torch.div(candidates, num_classes, rounding_mode='floor')
            scores.append(level_scores)
            labels.append(candidates % num_classes)
            deltas.append(bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)[anchor_index])
            anchors.append(getattr(self, f'anchors_{level}')[anchor_index])
        scores, labels = torch.cat(scores), torch.cat(labels)
        boxes = _decode(self.head.bbox_coder, torch.cat(anchors), torch.cat(deltas), image_shape)
        boxes, scores, labels = _drop_small(self.min_bbox_size, boxes, scores, labels)
        keep = _batched_nms(boxes, scores, labels, self.iou)[:self.max_per_img]
        return boxes[keep], scores[keep], labels[keep]


# what follows the neck, by detector structure: the first whose ``applies`` holds is checked and used
DETECTOR_HEADS = (TwoStageHeads, DenseHeads)


class DeployableDetector(nn.Module):
    """An mmdet detector at its active depth as a traceable module: ``forward(image, image_shape)``
    with ``image`` a ``(1, 3, H, W)`` float tensor of the exported size, in the channel order and 0-255 range the
    config's pipeline loads (BGR for mmdet's ``LoadImageFromFile``), and ``image_shape`` the ``(h, w)`` of the
    image inside it (see ``forward``), returns ``boxes (1, D, 4)``, ``scores (1, D)``, ``labels (1, D)``
    (int64), ``num_detections (1,)`` (int64) and for Mask R-CNN ``masks (1, D, M, M)``, D = ``max_per_img``.

    The preprocessing and the backbone + neck are common to all detectors; what follows the neck is one of
    ``DETECTOR_HEADS`` (``self.heads``): Faster / Mask R-CNN's RPN + RoI heads, or RetinaNet's dense head.
    The detector's modules are used as they are (a copy of its backbone made static, its neck and heads shared),
    so build it after the weights are loaded and the depth is chosen: ``model.backbone.skip = 'TTTT'``.

    With ``all_depths=True`` it holds every depth instead (``all_depths.AllDepthsFeatures``: norms unfolded, each
    weight once) and ``forward`` takes a third input, ``skip``: a bool tensor with one flag per stage, True = skip.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], fuse: bool = True,
                 all_depths: bool = False) -> None:
        super().__init__()
        heads_type = self._check(model)
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) != 2 or min(self.input_shape) < 1:
            raise ValueError(f'input_shape must be (H, W), got {input_shape}')
        pre = model.data_preprocessor
        self.register_buffer('mean', pre.mean.detach().clone().view(1, 3, 1, 1) if pre._enable_normalize
                             else torch.zeros(1, 3, 1, 1))
        self.register_buffer('std', pre.std.detach().clone().view(1, 3, 1, 1) if pre._enable_normalize
                             else torch.ones(1, 3, 1, 1))
        self.flip_channels = bool(getattr(pre, '_channel_conversion', False))
        divisor = int(getattr(pre, 'pad_size_divisor', 1))
        height, width = self.input_shape
        self.padding = (0, -width % divisor, 0, -height % divisor)
        self.pad_value = float(getattr(pre, 'pad_value', 0))

        self.all_depths = all_depths
        if all_depths:
            from .all_depths import AllDepthsFeatures
            self.features = AllDepthsFeatures(model)
            self.num_flags = self.features.num_flags
        else:
            self.features = deployable_part(model, fuse=fuse, with_head=False)
        # the heads' anchors are constants at a fixed input size: computed from the feature sizes of one pass
        with torch.no_grad():
            feats = self.extract_feat(torch.zeros(1, 3, *self.input_shape))
        self.heads = heads_type(model, [tuple(f.shape[-2:]) for f in feats])
        self.score_thr, self.max_per_img = self.heads.score_thr, self.heads.max_per_img
        self.with_mask = self.heads.with_mask
        self.eval()

    @staticmethod
    def _check(model: nn.Module) -> type:
        """Refuse, with the reason, what this exporter does not reproduce exactly; else the heads' class."""
        heads_type = next((heads for heads in DETECTOR_HEADS if heads.applies(model)), None)
        if heads_type is None:
            raise _unsupported(f'{type(model).__name__} has neither an RPN + RoI head nor a dense bbox head')
        heads_type.check(model)
        if model.data_preprocessor.mean is not None and model.data_preprocessor.mean.numel() != 3:
            raise _unsupported('the data preprocessor does not normalise 3-channel images')
        return heads_type

    # ---- the test path -------------------------------------------------------------------------------------
    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """mmdet's ``DetDataPreprocessor``: channel flip, normalisation, padding to the size divisor."""
        x = image.float()
        if self.flip_channels:
            x = x.flip(1)
        x = (x - self.mean) / self.std
        if any(self.padding):
            x = F.pad(x, self.padding, value=self.pad_value)
        return x

    def extract_feat(self, image: torch.Tensor, skip: torch.Tensor = None) -> List[torch.Tensor]:
        if not self.all_depths:
            return list(self.features(self.preprocess(image)))
        if skip is None:  # the super-net
            skip = torch.zeros(self.num_flags, dtype=torch.bool)
        return list(self.features(self.preprocess(image), skip))

    def forward(self, image: torch.Tensor, image_shape: torch.Tensor = None, skip: torch.Tensor = None):
        """``image_shape``: ``(h, w)`` of the image within ``image`` (resized to fit, padded at the bottom / right
        with ``metadata()['pad_pixel']``): boxes are clipped to it, as mmdet clips to ``img_shape``. Default: the
        whole input. ``skip``: the depth, for an all-depths module (default: the super-net)."""
        if image_shape is None:
            image_shape = image.new_tensor(self.input_shape)
        feats = self.extract_feat(image, skip)
        boxes, scores, labels = self.heads(feats, image_shape)
        num = torch.ones_like(labels).sum().view(1)
        outputs = [_pad_rows(boxes, self.max_per_img)[None], _pad_rows(scores, self.max_per_img)[None],
                   _pad_rows(labels, self.max_per_img)[None], num]
        if self.with_mask:
            outputs.append(_pad_rows(self.heads.mask_probs(feats, boxes, labels), self.max_per_img)[None])
        return tuple(outputs)

    @property
    def input_names(self) -> Tuple[str, ...]:
        return INPUT_NAMES + (('skip', ) if self.all_depths else ())

    @property
    def output_names(self) -> Tuple[str, ...]:
        return OUTPUT_NAMES + ((MASK_OUTPUT, ) if self.with_mask else ())

    def metadata(self) -> Dict[str, str]:
        """What a runtime-only user needs to feed the model and read its outputs, stored in the ONNX file."""
        pad_pixel = (self.mean + self.pad_value * self.std).flatten()  # normalises to the padding mmdet adds
        if self.flip_channels:
            pad_pixel = pad_pixel.flip(0)  # in the input's channel order
        meta = dict(input_shape=','.join(map(str, self.input_shape)),
                    input_channel_order='BGR' if self.flip_channels else 'as the config loads images',
                    pad_pixel=','.join(f'{float(v):g}' for v in pad_pixel), inputs=','.join(self.input_names),
                    outputs=','.join(self.output_names), max_per_img=str(self.max_per_img),
                    score_thr=f'{self.score_thr:g}')
        if self.with_mask:  # the threshold mmdet applies to the pasted probabilities
            meta['mask_thr_binary'] = f'{self.heads.mask_thr:g}'
        if self.all_depths:  # the skip input: one bool per stage, True = skip the stage's skippable blocks
            meta.update(skip='all', num_skip_flags=str(self.num_flags))
        return meta


def export_detector(detector: DeployableDetector, path: str, metadata: Dict[str, str] = None,
                    dynamo: Optional[bool] = None) -> str:
    """Write ``detector`` as one ONNX model at ``path`` (checked by onnx's checker), metadata included.

    ``dynamo=True`` (torch's default exporter since 2.9, the one ``runtime.export_onnx`` uses, and the one that
    turns ``torch.cond`` into ONNX ``If``: the all-depths model needs it) or ``dynamo=False``: the TorchScript-based exporter, deprecated by
    torch but 5-10x faster to export; both give the same detections (tests/test_export_detector.py). ``None``:
    the dynamo exporter where torch has it (>= 2.5), else the TorchScript-based one; asking for the dynamo exporter
    (or the all-depths model) on an older torch is refused.
    """
    import warnings

    import onnx
    # contiguous: the model may run channels-last (benchmark_subnets.py --memory-format) and shares its modules
    detector = copy.deepcopy(detector).cpu().eval().to(memory_format=torch.contiguous_format)
    inputs = (torch.zeros(1, 3, *detector.input_shape), torch.tensor(detector.input_shape, dtype=torch.float32))
    if detector.all_depths:  # its AllDepthsFeatures already refused a torch without the dynamo exporter
        if dynamo is False:
            raise ValueError('the all-depths model needs the dynamo exporter (torch.cond -> ONNX If)')
        inputs += (torch.zeros(detector.num_flags, dtype=torch.bool), )
    elif dynamo:
        require_dynamo_exporter('Exporting with dynamo=True', 'Pass dynamo=False (tools/deployment/export_detector.py '
                                '--legacy-exporter): the TorchScript-based exporter gives the same detections.')
    if dynamo is None:
        dynamo = HAS_DYNAMO_EXPORTER
    names = dict(input_names=list(detector.input_names), output_names=list(detector.output_names))
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter's deprecation notice, trace warnings about Python values that are constants at a
        # fixed input size (the level loop, nms_pre against a level's size), torch.export's notices
        warnings.simplefilter('ignore')
        if dynamo:
            torch.onnx.export(detector, inputs, path, dynamo=True, external_data=False, verbose=False, **names)
        else:
            # torch < 2.5 has no dynamo argument: its only exporter is this one
            legacy = dict(dynamo=False) if HAS_DYNAMO_EXPORTER else {}
            torch.onnx.export(detector, inputs, path, opset_version=17, **legacy, **names)
    proto = onnx.load(path)
    for key, value in {**detector.metadata(), **(metadata or {})}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return path


def test_input_shape(cfg) -> Tuple[int, int]:
    """``(H, W)`` of the config's test ``Resize`` scale (mmdet writes it ``(w, h)``): the largest image it makes."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    scales = [step['scale'] for step in pipeline if step.get('type') == 'Resize' and 'scale' in step]
    if not scales or not isinstance(scales[0], (tuple, list)) or len(scales[0]) != 2:
        raise ValueError('the config\'s test pipeline has no Resize with a (w, h) scale: give the input size '
                         '(--shape H W)')
    return int(scales[0][1]), int(scales[0][0])


def dataset_classes(cfg) -> List[str]:
    """The class names of the config's test set (its ``metainfo``, else its dataset type's), or []."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmdet.registry import DATASETS
        dataset_type = DATASETS.get(dataset.get('type', '')) if dataset.get('type') else None
        classes = getattr(dataset_type, 'METAINFO', {}).get('classes') if dataset_type else None
    return list(classes or [])


def build_detector(cfg, checkpoint: str, skip: str = None) -> nn.Module:
    """The config's detector with ``checkpoint``'s weights, in eval mode, at depth ``skip`` (default: the
    config's). The backbone's own pretrained init is not loaded: the checkpoint holds every weight."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmdet.registry import MODELS
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    model.eval()
    if not hasattr(model.backbone, 'skip'):
        raise TypeError(f'{type(model.backbone).__name__} is not an ADN backbone: it has no depth to choose')
    if skip is not None:
        model.backbone.skip = skip
    return model


def detection_agreement(expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> Dict[str, float]:
    """How far two sets of this module's outputs (PyTorch's, a runtime's) are apart: detection counts, whether
    the labels are equal, and the largest box / score / mask-probability differences over the valid rows (inf
    where the counts differ)."""
    n_expected, n_got = int(expected[3][0]), int(got[3][0])
    result = dict(num_expected=n_expected, num_got=n_got, labels_equal=False, max_box_error=float('inf'),
                  max_score_error=float('inf'))
    if len(expected) > 4:
        result['max_mask_error'] = float('inf')
    if n_expected != n_got:
        return result
    n = n_expected
    result['labels_equal'] = bool(np.array_equal(expected[2][0, :n], got[2][0, :n]))
    for key, index in (('max_box_error', 0), ('max_score_error', 1), ('max_mask_error', 4)):
        if key in result:
            result[key] = float(np.abs(expected[index][0, :n] - got[index][0, :n]).max()) if n else 0.0
    return result
