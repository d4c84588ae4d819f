"""The measuring loop of ``tools/analysis_tools/benchmark_subnets.py``: one model, loaded once, every depth."""
import itertools
import logging
import os
import os.path as osp
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmadn.deploy.all_depths import AllDepthsFeatures
from mmadn.deploy.memory_format import choose_memory_format
from mmadn.deploy.memory_format import memory_format as memory_format_context
from mmadn.deploy.runtime import RuntimeModel, deployable_part, export_onnx, runtime_features
from mmadn.deploy.runtime_detector import RUNTIME_MODELS, RuntimeDetectors, evaluate_runtime, whole_detector_refusal
from mmadn.models import adaptive_backbones, recalibrated, subnet
from mmadn.models.utils.adaptive_depth import parse_skip, skip_to_str
from mmadn.utils.timing import interleaved_latency, measure_latency, peak_memory
from .measure import active_parameters, active_weight_bytes, count_flops

QUALITY_KEYS = {'detection': ('coco/bbox_mAP', 'coco/segm_mAP'), 'classification': ('accuracy/top1', 'accuracy/top5')}


class RuntimeTarget(NamedTuple):
    """A deployment runtime the sub-networks also run in (``backend``: onnxruntime or openvino), the folder for
    their ONNX files and, for a detector that exports whole, which ONNX model (``RUNTIME_MODELS``)."""
    backend: str
    onnx_dir: str
    model: str = 'auto'


def canonical_skips(skips: Sequence, num_flags: int, owner: str = 'the backbone') -> List[str]:
    """The T/F form of every skip (``'ttff'`` -> ``'TTFF'``, ``'super'`` -> ``'FFFF'``), duplicates dropped;
    raises the backbone's ValueError for an invalid one."""
    return list(dict.fromkeys(skip_to_str(parse_skip(s, num_flags, owner)) for s in skips))


def first_batch(runner, batch_size: int) -> dict:
    batch = next(iter(runner.test_dataloader))
    batch = {k: v[:batch_size] for k, v in batch.items()}
    return runner.model.data_preprocessor(batch, False)


def recalibration_batches(runner, num: int) -> List:
    """``num`` training batches (fewer if the loader has fewer), taken once so that every row uses the same."""
    return list(itertools.islice(iter(runner.train_dataloader), num))


def measure_subnets(runner,
                    skips: Sequence[str],
                    task: str,
                    device: torch.device,
                    batch_size: int = 1,
                    warmup: int = 3,
                    runs: int = 10,
                    batches: Optional[List] = None,
                    memory_format: str = 'contiguous',
                    runtime: Optional[RuntimeTarget] = None) -> Iterator[Dict]:
    """Yield one row of measurements per sub-network of ``runner.model``.

    The checkpoint (``runner``'s ``load_from``) is loaded once, before the first row: loading it inside a row's
    recalibration would let that row run on the checkpoint's statistics, and the context's exit would then
    restore the statistics from before the load for every later row. While the caller handles a row, its
    sub-network is active (with its recalibrated statistics when ``batches`` is given), e.g. to export it.

    ``memory_format``: how the backbone + neck run in PyTorch (``mmadn.deploy.memory_format``); ``'auto'`` times
    both at the first sub-network and keeps the faster (every row records the choice). ``runtime``: with a
    deployment runtime, a detector that exports whole (``DeployableDetector``: Faster / Mask R-CNN) runs whole
    there and is scored from the runtime's own detections (``_add_whole_runtime``): the quality columns and
    ``latency_ms`` are then the runtime's, PyTorch's kept beside them as ``pytorch_<column>``. ``runtime.model``
    says which ONNX model: ``'all-depths'`` (exported once, the depth an input of each call), ``'per-depth'`` (one
    file per depth, norms folded; what norm statistics recalibrated per depth need) or ``'auto'``: all depths when
    more than one is measured and the statistics are the checkpoint's. Any other model has its backbone + neck
    exported (under ``runtime.onnx_dir``), checked against PyTorch (``runtime_error``) and timed there;
    ``latency_ms`` is then the whole model with its features from the runtime and its heads in PyTorch, and quality
    stays PyTorch's.

    Once every row is out, the latencies of the rows already yielded are measured again, interleaved (each round
    times every sub-network once): a machine whose speed drifts during the run then slows every depth alike, so
    the latencies of one run can be compared (the rows are updated in place; the caller writes its report again).
    """
    model = runner.model
    runner.call_hook('before_run')
    runner.load_or_resume()
    model.to(device).eval()
    backbone = adaptive_backbones(model)[0]
    data = first_batch(runner, batch_size)
    inputs, samples = data['inputs'].to(device), data['data_samples']
    fmt, fmt_times = memory_format, None
    if fmt == 'auto':
        with subnet(model, skips[0]):
            fmt, fmt_times = choose_memory_format(model, inputs, device, min(warmup, 2), max(3, min(runs, 7)))

    detectors = raw = None
    if runtime is not None and task == 'detection':
        detectors = runtime_detectors(runner.cfg, model, skips, bool(batches), runtime)
        if detectors is not None:  # the test loader's own batch, before the data preprocessor
            raw = next(iter(runner.test_dataloader))
            raw = {k: v[:batch_size] for k, v in raw.items()}

    def predict():
        return model(inputs, samples, mode='predict')

    rows, timed = [], {}
    try:
        with memory_format_context(model, fmt):
            for skip in skips:
                context = recalibrated(model, batches, skip) if batches else subnet(model, skip)
                with context:
                    row = _measure_row(runner, model, backbone, skip, task, device, inputs, samples, predict,
                                       warmup, runs)
                    row['memory_format'] = fmt
                    if fmt_times:
                        row['memory_format_ms'] = fmt_times  # the auto choice, backbone + neck (JSON only)
                    timed[skip] = {'latency': predict, 'backbone_latency': lambda: model.backbone(inputs)}
                    if detectors is not None:
                        timed[skip] = _add_whole_runtime(row, runner, model, skip, detectors(model, skip), raw,
                                                         inputs, predict, device, warmup, runs)
                    elif runtime is not None:
                        timed[skip] = _add_runtime(row, model, skip, inputs, predict, runtime, device,
                                                   warmup, runs)
                    yield row
                    rows.append(row)
            if len(rows) > 1:
                keys = list(timed[rows[0]['skip']])
                interleave_latencies(rows, model, {k: {s: fns[k] for s, fns in timed.items()} for k in keys},
                                     device, warmup, runs)
    finally:
        runner.call_hook('after_run')


def _measure_row(runner, model, backbone, skip, task, device, inputs, samples, predict, warmup, runs) -> Dict:
    """Quality, parameters, FLOPs, PyTorch latency and memory (``memory_columns``) of the active sub-network (and a
    detector's detections per test image)."""
    counter = _DetectionCounter() if task == 'detection' else None
    if counter is not None:
        runner.register_hook(counter, priority='LOWEST')
    try:
        metrics = runner.test_loop.run()
    finally:
        if counter is not None:
            runner.hooks.remove(counter)
    model.to(device).eval()
    row = dict(skip=skip, blocks=len(backbone.active_blocks()))
    evaluated = [name for metric in runner.test_evaluator.metrics for name in getattr(metric, 'metrics', ())]
    row.update(_quality(metrics, task, skip, counter, evaluated))
    row['params_m'] = active_parameters(model, predict) / 1e6
    row['gflops'] = count_flops(model, lambda x: model(x, samples, mode='tensor'), inputs) / 1e9
    row['backbone_gflops'] = count_flops(model, model.backbone, inputs) / 1e9
    row.update({f'latency_{k}': v for k, v in measure_latency(predict, device, warmup, runs).items()})
    row['latency_ms'] = row.pop('latency_median_ms')
    row['backbone_latency_ms'] = measure_latency(lambda: model.backbone(inputs), device, warmup, runs)['median_ms']
    row.update(memory_columns(model, predict, inputs, device))
    if counter is not None and counter.images:
        row['detections'] = counter.detections / counter.images
    return row


def memory_columns(model, predict: Callable[[], object], inputs: torch.Tensor, device: torch.device) -> Dict:
    """What one sub-network needs in memory, in MiB: ``weights_mib``, the parameters and buffers of the modules it
    runs (as exported alone: the adaptive model holds every depth's, so its process does not tell depths apart);
    ``activation_peak_mib``, the input batch plus the peak allocated during one ``predict()`` (``peak_memory``);
    ``memory_mib``, their sum, which ``--budget memory=`` holds."""
    weights = active_weight_bytes(model, predict) / 2**20
    with torch.no_grad():
        activations = inputs.numel() * inputs.element_size() / 2**20 + peak_memory(predict, device)
    return dict(weights_mib=weights, activation_peak_mib=activations, memory_mib=weights + activations)


def _quality(metrics: Dict, task: str, skip: str, counter: Optional['_DetectionCounter'],
             evaluated: Sequence[str] = ('bbox', 'segm')) -> Dict[str, float]:
    """The quality columns of a row. A detector that keeps no detection at all gets AP 0 for each metric its
    CocoMetric evaluates (``evaluated``), which then returns none; a missing ranking metric otherwise means the
    evaluator is not the one the table needs."""
    keys = QUALITY_KEYS[task]
    column = {key: key.split('/')[-1] for key in keys}  # 'coco/bbox_mAP' -> 'bbox_mAP'
    if counter is not None and counter.images and counter.detections == 0 and not any(k in metrics for k in keys):
        print_log(f'skip {skip}: no detection on any of the {counter.images} test images (none above the '
                  'test_cfg score_thr); its COCO AP is 0', logger='current', level=logging.WARNING)
        return {column[key]: 0.0 for key in keys if column[key].split('_')[0] in evaluated}
    if keys[0] not in metrics:
        wanted = 'CocoMetric with metric bbox' if task == 'detection' else 'Accuracy'
        raise KeyError(f'the evaluator returned no {keys[0]!r} for skip {skip} (it returned {sorted(metrics)}); the '
                       f'sub-networks are ranked by it: use {wanted} as the test_evaluator')
    return {column[key]: float(metrics[key]) for key in keys if key in metrics}


class _DetectionCounter(Hook):
    """Detections per test image: the RoI heads' work grows with them (the mask head runs once per detection), so
    a sub-network that keeps more of them can lose in the heads what its backbone saved."""

    def __init__(self) -> None:
        self.images = self.detections = 0

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        for sample in outputs or ():
            self.images += 1
            self.detections += len(sample.pred_instances)


def _add_runtime(row, model, skip, inputs, predict, target, device, warmup, runs) -> Dict[str, Callable]:
    """Export the active sub-network's backbone + neck, run it in ``target.backend`` and time it beside PyTorch;
    returns what the interleaved rounds time for this row."""
    os.makedirs(target.onnx_dir, exist_ok=True)
    part = deployable_part(model, fuse=True, with_head=False)
    # exported anew: a file left by an earlier run may hold another checkpoint
    runtime = RuntimeModel(part, inputs, target.backend,
                           export_onnx(part, inputs, osp.join(target.onnx_dir, f'{skip}.onnx')))

    def hybrid():
        with runtime_features(model, runtime):
            return predict()

    fns = {'latency': hybrid, 'pytorch_latency': predict, 'part_latency': runtime,
           'pytorch_part_latency': lambda: model.extract_feat(inputs),
           'backbone_latency': lambda: model.backbone(inputs)}
    row['pytorch_latency_ms'] = row['latency_ms']
    row.update({f'latency_{k}': v for k, v in measure_latency(hybrid, device, warmup, runs).items()})
    row['latency_ms'] = row.pop('latency_median_ms')
    for key in ('part_latency', 'pytorch_part_latency'):
        row[f'{key}_ms'] = measure_latency(fns[key], device, warmup, runs)['median_ms']
    row.update(backend=target.backend, runtime_error=runtime.error)
    return fns


def runtime_detectors(cfg, model, skips: Sequence[str], recalibrated_norms: bool, target: RuntimeTarget):
    """The ``RuntimeDetectors`` that run ``model`` whole in ``target.backend`` for a benchmark of ``skips``, or None
    when it does not export whole (then, for ``target.model='auto'`` only, its backbone + neck run there as before)."""
    backend, runtime_model = target.backend, target.model
    if runtime_model not in RUNTIME_MODELS:
        raise ValueError(f'runtime_model must be one of {RUNTIME_MODELS}, got {runtime_model!r}')
    refusal = whole_detector_refusal(model)
    if refusal is not None:
        if runtime_model != 'auto':
            raise TypeError(refusal)
        print_log(f'{refusal}: its backbone + neck run in {backend}, the heads in PyTorch, and its quality is '
                  'PyTorch\'s', logger='current', level=logging.WARNING)
        return None
    if runtime_model == 'all-depths' and recalibrated_norms:
        raise ValueError('norm statistics recalibrated per depth need one ONNX model per depth (per-depth): the '
                         'all-depths model holds one set')
    all_depths = runtime_model == 'all-depths' or (runtime_model == 'auto' and len(skips) > 1
                                                   and not recalibrated_norms)
    if all_depths:
        try:
            AllDepthsFeatures(model)  # a view of the model's modules: refuses what it cannot hold
        except TypeError as err:
            if runtime_model != 'auto':
                raise
            print_log(f'{err}: one ONNX model per depth instead', logger='current', level=logging.WARNING)
            all_depths = False
    # as many intra-op threads as PyTorch has, so that the two are timed alike (OMP_NUM_THREADS)
    return RuntimeDetectors(cfg, target.onnx_dir, backend, all_depths, threads=torch.get_num_threads())


def _add_whole_runtime(row, runner, model, skip, runtime, raw, inputs, predict, device, warmup,
                       runs) -> Dict[str, Callable]:
    """Score the whole detector in its runtime at ``skip`` on the test set from the runtime's own detections (the
    quality columns become the runtime's, PyTorch's move to ``pytorch_<column>`` beside them; ``quality_gap``: the
    largest difference) and time it: ``latency_ms`` is the runtime's ``predict`` of the first test batch (the
    model, then boxes and masks mapped back to the original images), beside ``pytorch_latency_ms``;
    ``session_latency_ms`` is the model alone. Returns what the interleaved rounds time for this row."""
    depth = skip if runtime.all_depths else None
    loop = runner.test_loop
    metrics, images, detections = evaluate_runtime(runtime, loop.dataloader, loop.evaluator, depth)
    counter = _DetectionCounter()
    counter.images, counter.detections = images, detections
    evaluated = [name for metric in loop.evaluator.metrics for name in getattr(metric, 'metrics', ())]
    quality = _quality(metrics, 'detection', skip, counter, evaluated)
    ordered = {}
    for key, value in row.items():  # each PyTorch figure beside the runtime's
        ordered[key] = quality.get(key, value)
        if key in quality:
            ordered[f'pytorch_{key}'] = value
    row.clear()
    row.update(ordered)
    row['quality_gap'] = max(abs(quality[k] - row[f'pytorch_{k}']) for k in quality if f'pytorch_{k}' in row)
    row['runtime_detections'] = detections / max(images, 1)

    feeds = [runtime.feed(image, depth) for image in raw['inputs']]
    fns = {'latency': lambda: runtime.predict(raw['inputs'], raw['data_samples'], depth),
           'pytorch_latency': predict, 'session_latency': lambda: [runtime(*feed) for feed in feeds],
           'backbone_latency': lambda: model.backbone(inputs)}
    row['pytorch_latency_ms'] = row['latency_ms']
    row.update({f'latency_{k}': v for k, v in measure_latency(fns['latency'], device, warmup, runs).items()})
    row['latency_ms'] = row.pop('latency_median_ms')
    row['session_latency_ms'] = measure_latency(fns['session_latency'], device, warmup, runs)['median_ms']
    row.update(backend=runtime.backend, quality_source=runtime.backend,
               runtime_model='all-depths' if runtime.all_depths else 'per-depth')
    return fns


@torch.no_grad()
def interleave_latencies(rows: List[Dict], model, fns: Dict[str, Union[Callable, Dict[str, Callable]]],
                         device: torch.device, warmup: int, runs: int) -> None:
    """Set ``<key>_ms`` (and ``latency_p90_ms``, ``latency_samples_ms``) of every row from ``runs`` rounds that
    time each sub-network once. A key's callable is the same for every row, or one per row's skip (a runtime
    session per sub-network)."""
    for key, fn in fns.items():
        calls = {row['skip']: fn[row['skip']] if isinstance(fn, dict) else fn for row in rows}
        latency = interleaved_latency(calls, device, warmup, runs, around=lambda skip: subnet(model, skip))
        for row in rows:
            stats = latency[row['skip']]
            row[f'{key}_ms'] = stats['median_ms']
            if key == 'latency':
                row['latency_p90_ms'] = stats['p90_ms']
                row['latency_samples_ms'] = stats['samples_ms']
