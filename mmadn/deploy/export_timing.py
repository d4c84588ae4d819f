"""Export the active sub-network of an adaptive model, write it as a user would load it, and time it.

What ``tools/analysis_tools/benchmark_subnets.py --export`` adds to a row. The static model is rebuilt from its
own exported config and loaded strictly, which proves that the written files hold the whole model; with ``fuse``
its backbone is replaced by the norm-folded export and the state dict's backbone part with that backbone's. Then
it is saved (``config.py``, ``model.pth``, and ``model.onnx`` of its static part: a classifier whole, a
detector's backbone + neck) and timed in the memory format the adaptive model was timed in.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from mmadn.utils.timing import measure_latency
from .export_subnet import export_backbone, export_model
from .memory_format import memory_format
from .runtime import DeployablePart, export_onnx


def rebuild_static(model: nn.Module, cfg: Config, fuse: bool = False,
                   device='cpu') -> Tuple[nn.Module, Config, Dict[str, torch.Tensor]]:
    """``(static model on device, its config, its state dict)`` of ``model``'s active sub-network: built from the
    exported config and loaded strictly; with ``fuse``, its backbone the norm-folded export (``fused=True``)."""
    static_cfg, state = export_model(model, cfg, fuse=False)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        static = MODELS.build(static_cfg.model)
    static.load_state_dict(state, strict=True)
    static.to(device).eval()
    if fuse:
        _, static.backbone = export_backbone(model.backbone, fuse=True)
        static.backbone.to(device).eval()
        static_cfg.model.backbone.fused = True
        state = {k: v for k, v in state.items() if not k.startswith('backbone.')}
        state.update({'backbone.' + k: v for k, v in static.backbone.state_dict().items()})
    return static, static_cfg, state


def export_and_time(model: nn.Module,
                    cfg: Config,
                    inputs: torch.Tensor,
                    samples,
                    export_dir: str,
                    meta: dict,
                    fuse: bool = False,
                    device='cpu',
                    warmup: int = 3,
                    runs: int = 10,
                    fmt: str = 'contiguous') -> Dict[str, float]:
    """Export ``model``'s active sub-network into ``export_dir`` (``meta``, e.g. the source checkpoint and the skip,
    goes into ``model.pth`` with ``fused``) and return its median latencies (ms) on ``inputs``: the whole model's
    predict (``export_latency_ms``) and its backbone's (``export_backbone_latency_ms``)."""
    static, static_cfg, state = rebuild_static(model, cfg, fuse, device)
    os.makedirs(export_dir, exist_ok=True)
    static_cfg.dump(osp.join(export_dir, 'config.py'))
    torch.save(dict(meta=dict(meta, fused=fuse), state_dict=state), osp.join(export_dir, 'model.pth'))
    export_onnx(DeployablePart(static, static.backbone), inputs, osp.join(export_dir, 'model.onnx'))
    static.to(device)
    with memory_format(static, fmt):
        backbone_ms = measure_latency(lambda: static.backbone(inputs), device, warmup, runs)['median_ms']
        whole_ms = measure_latency(lambda: static(inputs, samples, mode='predict'), device, warmup,
                                   runs)['median_ms']
    return dict(export_latency_ms=whole_ms, export_backbone_latency_ms=backbone_ms)
