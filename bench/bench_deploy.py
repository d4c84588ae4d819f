"""Measured in one run on this machine: the super-net and the base-net of a detector's backbone + neck in each
runtime, against the FLOPs ratio, and the exported static model against the adaptive one.

    python bench/bench_deploy.py [--depth 50] [--size 512 512] [--runs 9] [--threads 0] [--out-dir DIR]

The part deployed for detection (ResNet-ADN + mmdet's FPN, image -> FPN levels) at the detection input of
bench/bench_adn.py, for FFFF and the base-net, in:
  - eager PyTorch, the adaptive model (contiguous and channels-last);
  - eager PyTorch, the exported static sub-network with the norms folded (contiguous and channels-last);
  - ONNX Runtime and OpenVINO (where it is installed) on the exported static sub-network's ONNX.
Prints the base / super latency ratio of each beside the FLOPs ratio, static / adaptive at each depth, and every
runtime's agreement with PyTorch. Timings are interleaved (bench_adn.interleaved_ms: each round times every variant once; medians), so
ratios are fair on a shared, noisy machine; absolute times are not comparable across machines.
"""
import argparse
import copy
import functools
import importlib.util
import json
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.models.necks import FPN  # noqa: E402
from torch import nn  # noqa: E402

import mmadn  # noqa: E402,F401
from bench.bench_adn import interleaved_ms  # noqa: E402
from mmadn.analysis import count_flops  # noqa: E402
from mmadn.deploy.runtime import RuntimeModel  # noqa: E402
from mmadn.deploy.export_subnet import export_backbone  # noqa: E402
from mmadn.models import ResNetADN  # noqa: E402


class BackboneNeck(nn.Module):

    def __init__(self, backbone, neck):
        super().__init__()
        self.backbone, self.neck = backbone, neck

    def forward(self, x):
        return tuple(self.neck(self.backbone(x)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512))
    parser.add_argument('--runs', type=int, default=9)
    parser.add_argument('--threads', type=int, default=0, help='runtime threads (0: the runtime\'s default)')
    parser.add_argument('--out-dir', help='keep the ONNX files and write bench_deploy.json here')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    backbone = ResNetADN(args.depth, out_indices=(0, 1, 2, 3), zero_init_residual=False)
    backbone.init_weights()
    channels = [64, 128, 256, 512] if args.depth < 50 else [256, 512, 1024, 2048]
    neck = FPN(channels, 256, 5)
    adaptive = BackboneNeck(backbone, neck).eval()
    # as in a trained model: norm statistics and affine parameters away from their initial values
    with torch.no_grad():
        for m in adaptive.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.1, 0.1)
    x = torch.randn(1, 3, *args.size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    superset, base = backbone.subnets()[0], backbone.subnets()[-1]
    out_dir = args.out_dir or tempfile.mkdtemp(prefix='bench_deploy_')
    os.makedirs(out_dir, exist_ok=True)
    backends = ['onnxruntime'] + (['openvino'] if importlib.util.find_spec('openvino') else [])

    variants, flops, errors = {}, {}, {}
    adaptive_cl = BackboneNeck(backbone, neck).to(memory_format=torch.channels_last)
    for skip in (superset, base):
        backbone.skip = skip
        flops[skip] = count_flops(adaptive, adaptive, x)
        _, static_backbone = export_backbone(backbone, fuse=True)
        static = BackboneNeck(static_backbone.eval(), neck).eval()
        static_cl = copy.deepcopy(static).to(memory_format=torch.channels_last)
        variants[('adaptive, contiguous', skip)] = (adaptive, x)
        variants[('adaptive, channels-last', skip)] = (adaptive_cl, x_cl)
        variants[('static fused, contiguous', skip)] = (static, x)
        variants[('static fused, channels-last', skip)] = (static_cl, x_cl)
        onnx_path = osp.join(out_dir, f'r{args.depth}_fpn_{skip}.onnx')
        print(f'exporting {skip} to {onnx_path} ...', flush=True)
        for backend in backends:
            runtime = RuntimeModel(static, x, backend, onnx_path, args.threads)
            errors[(backend, skip)] = runtime.error
            variants[(backend, skip)] = (runtime, None)

    def call(module, inputs, skip):
        if isinstance(module, RuntimeModel):
            return module()
        backbone.skip = skip  # the adaptive variants share one backbone: set its depth each call
        with torch.no_grad():
            return module(inputs)

    median = interleaved_ms({(name, skip): functools.partial(call, module, inputs, skip)
                             for (name, skip), (module, inputs) in variants.items()}, args.runs)
    flops_ratio = flops[base] / flops[superset]
    names = list(dict.fromkeys(name for name, _ in variants))
    print(f'\nResNet-{args.depth}-ADN + FPN at {args.size[0]}x{args.size[1]}, batch 1, {torch.get_num_threads()} '
          f'torch threads, median of {args.runs} interleaved runs')
    print(f'GFLOPs {superset} {flops[superset] / 1e9:.2f}, {base} {flops[base] / 1e9:.2f}: ratio {flops_ratio:.3f}\n')
    print(f'| runtime | {superset} (ms) | {base} (ms) | {base} / {superset} | minus FLOPs ratio | vs PyTorch |')
    print('|---|---|---|---|---|---|')
    rows = []
    for name in names:
        ratio = median[(name, base)] / median[(name, superset)]
        error = max((errors.get((name, s), 0.0) for s in (superset, base)), default=0.0)
        rows.append(dict(runtime=name, super_ms=median[(name, superset)], base_ms=median[(name, base)],
                         ratio=ratio, ratio_minus_flops=ratio - flops_ratio,
                         max_relative_error=error if name in backends else None))
        check = f'{error:.1e}' if name in backends else ''
        print(f'| {name} | {median[(name, superset)]:.1f} | {median[(name, base)]:.1f} | {ratio:.3f} | '
              f'{ratio - flops_ratio:+.3f} | {check} |')
    print('\nexported static (norms folded) / adaptive, same depth and memory format:')
    for fmt in ('contiguous', 'channels-last'):
        parts = [f'{skip} {median[(f"static fused, {fmt}", skip)] / median[(f"adaptive, {fmt}", skip)]:.3f}'
                 for skip in (superset, base)]
        print(f'  {fmt}: ' + ', '.join(parts))
    print('channels-last / contiguous: ' + ', '.join(
        f'{kind} {skip} {median[(f"{kind}, channels-last", skip)] / median[(f"{kind}, contiguous", skip)]:.3f}'
        for kind in ('adaptive', 'static fused') for skip in (superset, base)))
    with open(osp.join(out_dir, 'bench_deploy.json'), 'w') as f:
        json.dump(dict(depth=args.depth, size=args.size, runs=args.runs, flops_ratio=flops_ratio,
                       rows=rows, medians_ms={f'{n} {s}': v for (n, s), v in median.items()}), f, indent=2)
    print(f'\nwritten: {osp.join(out_dir, "bench_deploy.json")}')


if __name__ == '__main__':
    main()
