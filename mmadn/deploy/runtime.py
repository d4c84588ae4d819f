"""Run a chosen sub-network in a deployment runtime (ONNX Runtime, OpenVINO) and check it against PyTorch.

What is exported is the part of a model that is one static graph: a classifier whole (image -> logits), a
detector's backbone + neck (image -> FPN levels; its heads post-process with data-dependent shapes: proposal
counts, NMS). The sub-network is made static first (``to_static``, norms folded where the family allows), so
the runtime sees the upstream network with only the blocks that depth runs. ``runtime_features`` runs a whole
model with its backbone + neck in the runtime and its heads in PyTorch, as benchmark_subnets.py --backend times it.
"""
import contextlib
import copy
import inspect
import os.path as osp
from typing import Callable, Iterator, List, Sequence, Union

import numpy as np
import torch
from torch import nn

from mmadn.models.utils import adaptive_backbones
from .export_subnet import export_backbone

# torch's dynamo ONNX exporter (torch.onnx.export(..., dynamo=True)) and torch.cond: torch >= 2.5 has both. torch
# 2.1 (the newest with OpenMMLab's prebuilt mmcv 2.1.0 wheels) has only the TorchScript-based exporter.
HAS_DYNAMO_EXPORTER = 'dynamo' in inspect.signature(torch.onnx.export).parameters
HAS_TORCH_COND = hasattr(torch, 'cond')


def require_dynamo_exporter(what: str, instead: str, cond: bool = False) -> None:
    """Refuse ``what`` on a torch without the dynamo ONNX exporter (and ``torch.cond`` if ``cond``), saying which
    torch has them and what to do ``instead``."""
    lacks = [name for name, has in (('torch.onnx.export(..., dynamo=True)', HAS_DYNAMO_EXPORTER),
                                    ('torch.cond', HAS_TORCH_COND or not cond)) if not has]
    if lacks:
        raise RuntimeError(f'{what} needs {" and ".join(lacks)}, which torch {torch.__version__} lacks (torch >= 2.5 '
                           f'has them). {instead}')


BACKENDS = ('pytorch', 'onnxruntime', 'openvino')
# float32 graphs reorder sums (folded norms, fused kernels): agreement within this, relative to the output's scale
TOLERANCE = 1e-4


class DeployablePart(nn.Module):
    """The static graph of a model: ``classifier(x)`` -> logits, or ``neck(backbone(x))`` -> FPN levels (a
    classifier's too with ``with_head=False``: what its ``extract_feat`` gives the head)."""

    def __init__(self, model: nn.Module, backbone: nn.Module, with_head: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = getattr(model, 'neck', None) if getattr(model, 'with_neck', False) else None
        # mmpretrain classifiers have a head; detectors have rpn / roi heads, which stay outside the graph
        self.head = getattr(model, 'head', None) if with_head else None

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        if self.head is not None:  # an mmpretrain classifier: the head's logits
            return self.head(feats)
        return tuple(feats)


def deployable_part(model: nn.Module, fuse: bool = True, with_head: bool = True) -> DeployablePart:
    """The active sub-network of ``model`` as a static deployable part (eval mode, norms folded if ``fuse`` and
    the family's norms fold; Swin / ViT keep their LayerNorms). The neck (and head) are ``model``'s own."""
    backbones = adaptive_backbones(model)
    if not backbones or getattr(model, 'backbone', None) is not backbones[0]:
        raise TypeError(f'{type(model).__name__} has no adaptive backbone to export')
    backbone = model.backbone
    fuse = fuse and getattr(backbone, 'norms_fold', True)
    _, static = export_backbone(backbone, fuse=fuse)
    return DeployablePart(model, static.to(next(model.parameters()).device), with_head).eval()


def export_onnx(part: nn.Module, example: torch.Tensor, path: str) -> str:
    """ONNX of ``part`` at ``example``'s shape (torch's dynamo exporter), checked by onnx's checker. A copy of
    ``part`` is exported, contiguous (``part`` may be running channels-last and shares the model's neck).

    A torch without the dynamo exporter (< 2.5) exports the same static graph with its TorchScript-based exporter
    (opset 17); the runtime's outputs are checked against PyTorch's either way (:class:`RuntimeModel`).
    """
    import onnx
    part = copy.deepcopy(part).cpu().eval().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        if HAS_DYNAMO_EXPORTER:
            torch.onnx.export(part, (example.cpu(), ), path, dynamo=True, input_names=['input'],
                              external_data=False)
        else:
            torch.onnx.export(part, (example.cpu(), ), path, opset_version=17, input_names=['input'])
    onnx.checker.check_model(path)
    return path


def _flat(outputs) -> List[np.ndarray]:
    if isinstance(outputs, torch.Tensor):
        return [outputs.detach().cpu().numpy()]
    return [o.detach().cpu().numpy() for o in outputs]


def make_session(onnx_path: str, backend: str, threads: int = 0) -> Callable[..., List[np.ndarray]]:
    """A callable running the ONNX model in ``backend`` on the CPU: arrays in (one per model input, in order),
    list of arrays out."""
    if backend == 'onnxruntime':
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's threads otherwise spin after each run, taking the cores from the PyTorch heads that come next
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.add_session_config_entry('session.inter_op.allow_spinning', '0')
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
        names = [i.name for i in session.get_inputs()]
        return lambda *arrays: session.run(None, dict(zip(names, arrays)))
    if backend == 'openvino':
        try:
            import openvino as ov
        except ImportError:
            raise ImportError('--backend openvino needs the openvino package: pip install openvino '
                              '(requirements/deploy.txt)') from None
        core = ov.Core()
        # f32 as PyTorch computes: on CPUs with bf16 units OpenVINO would otherwise run in bf16 (1e-2 off)
        config = {'INFERENCE_PRECISION_HINT': 'f32', **({'INFERENCE_NUM_THREADS': threads} if threads else {})}
        compiled = core.compile_model(core.read_model(onnx_path), 'CPU', config)
        request = compiled.create_infer_request()
        return lambda *arrays: [np.asarray(v) for v in request.infer(dict(enumerate(arrays))).values()]
    raise ValueError(f'unknown backend {backend!r}: use one of {", ".join(BACKENDS)}')


def max_relative_error(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Largest |difference| over all outputs, relative to the reference's largest magnitude."""
    if len(reference) != len(outputs):
        raise ValueError(f'the runtime gave {len(outputs)} outputs, PyTorch {len(reference)}')
    worst = 0.0
    for ref, out in zip(reference, outputs):
        if ref.shape != out.shape:
            raise ValueError(f'output shape {out.shape} differs from PyTorch\'s {ref.shape}')
        worst = max(worst, float(np.abs(ref - out).max() / max(np.abs(ref).max(), 1e-12)))
    return worst


class RuntimeModel:
    """A deployable part exported to ONNX and loaded in a runtime, checked against PyTorch on ``example``."""

    def __init__(self, part: nn.Module, example: torch.Tensor, backend: str, onnx_path: str,
                 threads: int = 0) -> None:
        if not osp.isfile(onnx_path):
            export_onnx(part, example, onnx_path)
        self.backend, self.onnx_path = backend, onnx_path
        self.run = make_session(onnx_path, backend, threads)
        self.example = example.cpu().numpy()
        with torch.no_grad():
            reference = _flat(part.cpu()(example.cpu()))
        self.error = max_relative_error(reference, self.run(self.example))
        if self.error > TOLERANCE:
            raise AssertionError(f'{backend} disagrees with PyTorch on {onnx_path}: max relative error '
                                 f'{self.error:.2e} > {TOLERANCE:.0e}')

    def __call__(self, x: Union[np.ndarray, None] = None):
        return self.run(self.example if x is None else x)


@contextlib.contextmanager
def runtime_features(model: nn.Module, runtime: RuntimeModel) -> Iterator[nn.Module]:
    """Within the context ``model.extract_feat`` (what mmdet's detectors and mmpretrain's classifiers call for
    the backbone + neck in ``predict`` and ``_forward``) runs in ``runtime`` (a ``with_head=False`` part); the
    heads, post-processing included, stay in PyTorch."""

    def extract_feat(inputs: torch.Tensor, stage: str = 'neck'):
        if stage != 'neck':
            raise ValueError(f'the runtime holds the backbone + neck: extract_feat(stage={stage!r}) is not in it')
        arrays = runtime(np.ascontiguousarray(inputs.detach().cpu().numpy()))
        return tuple(torch.from_numpy(a).to(inputs.device) for a in arrays)

    model.extract_feat = extract_feat  # an instance attribute hides the class's method until deleted
    try:
        yield model
    finally:
        del model.extract_feat
