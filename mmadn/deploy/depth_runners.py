"""One test batch at a chosen depth, in PyTorch or in a deployment runtime: what the deadline demo hands to
``DeadlineController.run`` (``runner(data, skip)`` -> the batch's data samples with their predictions).

``PyTorchDepths`` switches the adaptive model (``set_subnet``) and runs its ``test_step``. ``RuntimeDepths`` runs
the whole detector's all-depths ONNX model (``export_detector.py --all-depths``) in ONNX Runtime / OpenVINO through
``RuntimeDetector``: the depth is the ``skip`` input of each call, so nothing is switched, reloaded or run in
PyTorch's model; the network (backbone, neck, RPN, RoI heads, NMS, RoIAlign) runs in the runtime, and torch is left
only as the tensor library that maps the detections back to the original image (mmdet's mask paste) and holds them
for the evaluator, as ``benchmark_subnets.py --backend`` times and scores the runtime.
"""
from typing import Dict, List, Optional, Union

from torch import nn

from mmadn.models.utils.subnet import set_subnet

PYTORCH = 'pytorch'


class PyTorchDepths:
    """``model.test_step(data)`` at depth ``skip``, the model switched first."""
    backend = PYTORCH

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, data: dict, skip: str) -> List:
        set_subnet(self.model, skip)
        return self.model.test_step(data)


class RuntimeDepths:
    """The all-depths whole-detector model in a runtime (``RuntimeDetector``): ``skip`` is fed as the model's input.

    A file that holds one depth is refused: switching it would mean a session per depth."""

    def __init__(self, detector) -> None:
        if not detector.all_depths:
            raise ValueError(f'{detector.onnx_path} holds one depth ({detector.skip}): the deadline controller needs '
                             'every depth in one model (tools/deployment/export_detector.py --all-depths)')
        self.detector, self.backend = detector, detector.backend

    def __call__(self, data: dict, skip: str) -> List:
        if len(skip) != self.detector.num_flags:
            raise ValueError(f'{skip} is not a depth of {self.detector.onnx_path} ({self.detector.num_flags} flags)')
        return self.detector.predict(data['inputs'], data['data_samples'], skip)


def table_backend(table: Union[Dict, List[Dict]]) -> str:
    """Where a benchmark table's latencies were timed: ``pytorch``, or the runtime that ran the whole detector
    (``benchmark_subnets.py --backend``; a table whose heads ran in PyTorch is a hybrid, neither)."""
    rows = table['subnets'] if isinstance(table, dict) else table

    def timed_in(row):
        backend = row.get('backend', PYTORCH)
        return backend if backend == PYTORCH or row.get('quality_source') == backend else 'hybrid'

    backends = {timed_in(row) for row in rows}
    if len(backends) != 1:
        raise ValueError(f'the table mixes rows timed in {sorted(backends)}')
    return backends.pop()


def depth_runner(model: nn.Module, backend: str, cfg=None, onnx_dir: Optional[str] = None,
                 onnx_path: Optional[str] = None, threads: int = 0):
    """``PyTorchDepths(model)``, or ``RuntimeDepths`` over the all-depths model at ``onnx_path`` (written earlier by
    ``export_detector.py --all-depths`` from the same checkpoint) or, without one, exported from ``model`` into
    ``onnx_dir`` now (PyTorch runs here, before any timed call)."""
    if backend == PYTORCH:
        return PyTorchDepths(model)
    from .runtime_detector import RuntimeDetector, RuntimeDetectors, whole_detector_refusal
    if onnx_path is None:
        refusal = whole_detector_refusal(model)
        if refusal is not None:
            raise TypeError(f'{refusal}: the deadline demo runs it in PyTorch only (--backend pytorch)')
        detector = RuntimeDetectors(cfg, onnx_dir, backend, all_depths=True, threads=threads)(model, None)
    else:
        detector = RuntimeDetector(onnx_path, backend, threads)
    backbone_flags = getattr(getattr(model, 'backbone', None), 'num_skip_flags', None)
    if detector.all_depths and backbone_flags is not None and detector.num_flags != backbone_flags:
        raise ValueError(f'{detector.onnx_path} has {detector.num_flags} depth flags, the model '
                         f'{backbone_flags}: it was exported from another model')
    return RuntimeDepths(detector)
