"""Measured in one run on this machine: what ADN's depth switching costs and saves.

    python bench/bench_adn.py [--size 512 512] [--runs 7] [--train-size 320] [--train-iters 5] [--channels-last]

Prints, for the ResNet-50-ADN backbone at a detection input size:
  1. every sub-network's latency relative to the super-net, beside its FLOPs ratio;
  2. the super-net's latency against mmdet's plain ResNet-50 with the same weights; where the time of the
     super-net goes (always-run part vs skippable part: FLOPs share, time share, GFLOP/s), which explains the
     gap between latency and FLOPs ratios; and the same ratios for the exported static models (norms folded);
  3. (the cost of a depth switch, every family: bench/bench_switch.py);
  4. a Mask R-CNN R50-ADN training iteration with Algorithm 1 (ADN's objective) against plain training of the
     same detector: time and peak memory.
Timings are interleaved (round-robin over the variants, median of the runs), so the ratios are fair even on a
shared, noisy machine; absolute times are not comparable across machines.
"""
import argparse
import logging
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.models.backbones import ResNet  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import mmadn  # noqa: E402,F401
from mmadn.analysis import count_flops  # noqa: E402
from mmadn.deploy import export_backbone  # noqa: E402
from mmadn.models import ResNetADN, SubPathDistillation  # noqa: E402
from mmadn.utils.timing import interleaved_latency, peak_memory  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def interleaved_ms(fns: dict, runs: int, warmup: int = 1, device: str = 'cpu') -> dict:
    """Median ms of each callable, timed round-robin so that load changes hit all of them alike
    (``mmadn.utils.timing.interleaved_latency``: CUDA-synchronised around each call)."""
    return {key: stats['median_ms'] for key, stats in interleaved_latency(fns, device, warmup, runs).items()}


@torch.no_grad()
def bench_backbone(size, runs, memory_format, device='cpu', batch=1):
    """Section 1-2's table; returns ``{skip: (flops, ms)}`` (with ``'plain ResNet-50'``'s ms) for callers such as
    bench/gpu_check.py, which runs it on CUDA at batch 1 and 8."""
    adn = ResNetADN(50, out_indices=(0, 1, 2, 3)).eval()
    plain = ResNet(50, out_indices=(0, 1, 2, 3))
    plain.eval()  # mmdet's ResNet.train() returns None, so no chaining
    plain.load_state_dict({k: v for k, v in adn.state_dict().items() if '_skip' not in k})
    adn = adn.to(device, memory_format=memory_format)
    plain = plain.to(device, memory_format=memory_format)
    x = torch.randn(batch, 3, *size, device=device).to(memory_format=memory_format)

    def run(skip):
        def fn():
            adn.skip = skip
            adn(x)
        return fn

    skips = adn.subnets()
    flops = {}
    for skip in skips:
        adn.skip = skip
        flops[skip] = count_flops(adn, adn, x)
    fns = {skip: run(skip) for skip in skips}
    fns['plain ResNet-50'] = lambda: plain(x)
    ms = interleaved_ms(fns, runs, device=device)
    print(f'\n## 1-2. ResNet-50-ADN backbone, input {batch}x3x{size[0]}x{size[1]} on {device}, median of {runs} '
          'interleaved runs\n')
    print('| skip | GFLOPs | FLOPs ratio | latency ms | latency ratio | ratio - FLOPs ratio |')
    print('|---|---|---|---|---|---|')
    for skip in skips:
        fr, lr = flops[skip] / flops['FFFF'], ms[skip] / ms['FFFF']
        print(f'| {skip} | {flops[skip] / 1e9:.2f} | {fr:.3f} | {ms[skip]:.1f} | {lr:.3f} | {lr - fr:+.3f} |')
    print(f'\nsuper-net {ms["FFFF"]:.1f} ms vs mmdet ResNet-50 {ms["plain ResNet-50"]:.1f} ms: '
          f'ratio {ms["FFFF"] / ms["plain ResNet-50"]:.3f}')
    return {**{skip: (flops[skip], ms[skip]) for skip in skips}, 'plain ResNet-50': (None, ms['plain ResNet-50'])}


@torch.no_grad()
def bench_breakdown(size, runs, memory_format):
    """Time and FLOPs of the parts of the super-net: the always-run part (stem, mandatory blocks) and the
    skippable part of each stage. Skipping saves the skippable part's time, so when it runs at a higher
    GFLOP/s than the always-run part, the latency saved is less than the FLOPs saved."""
    adn = ResNetADN(50, out_indices=(0, 1, 2, 3)).eval().to(memory_format=memory_format)
    x = torch.randn(1, 3, *size).to(memory_format=memory_format)
    parts = {'stem': (lambda t: adn.maxpool(adn.relu(adn.norm1(adn.conv1(t)))), x)}
    feat = parts['stem'][0](x)
    for name, stage in zip(adn.res_layers, adn.stages):
        blocks = list(stage)
        mandatory = torch.nn.Sequential(*blocks[:stage.num_mandatory])
        skippable = torch.nn.Sequential(*blocks[stage.num_mandatory:])
        parts[f'{name} mandatory'] = (mandatory, feat)
        feat = mandatory(feat)
        parts[f'{name} skippable'] = (skippable, feat)
        feat = skippable(feat)
    flops = {k: count_flops(adn, fn, inp) for k, (fn, inp) in parts.items()}
    ms = interleaved_ms({k: (lambda fn=fn, inp=inp: fn(inp)) for k, (fn, inp) in parts.items()}, runs)
    total_f, total_ms = sum(flops.values()), sum(ms.values())
    print(f'\n### Where the super-net\'s time goes (median of {runs} interleaved runs)\n')
    print('| part | GFLOPs | FLOPs share | ms | time share | GFLOP/s |')
    print('|---|---|---|---|---|---|')
    for k in parts:
        print(f'| {k} | {flops[k] / 1e9:.2f} | {flops[k] / total_f:.3f} | {ms[k]:.1f} | {ms[k] / total_ms:.3f} | '
              f'{flops[k] / 1e6 / ms[k]:.1f} |')
    always = [k for k in parts if not k.endswith('skippable')]
    f_share = sum(flops[k] for k in always) / total_f
    t_share = sum(ms[k] for k in always) / total_ms
    print(f'\nalways-run part (= base-net): {f_share:.3f} of the FLOPs, {t_share:.3f} of the time '
          f'(difference {t_share - f_share:+.3f})')

    fused = {}
    for skip in ('FFFF', 'TTTT'):
        adn.skip = skip
        fused[skip] = export_backbone(adn, fuse=True)[1].eval().to(memory_format=memory_format)
    fused_flops = {k: count_flops(m, m, x) for k, m in fused.items()}
    fused_ms = interleaved_ms({k: (lambda m=m: m(x)) for k, m in fused.items()}, runs)
    fr, lr = fused_flops['TTTT'] / fused_flops['FFFF'], fused_ms['TTTT'] / fused_ms['FFFF']
    print(f'\nexported static backbones, norms folded into the convs: TTTT / FFFF latency {lr:.3f} '
          f'({fused_ms["TTTT"]:.1f} / {fused_ms["FFFF"]:.1f} ms), FLOPs {fr:.3f} (difference {lr - fr:+.3f})')


def bench_training(size, iters):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mask_rcnn_r50_adn_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        from mmdet.structures import DetDataSample
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import InstanceData
        model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs one line per parameter
    model.init_weights()
    logger.setLevel(level)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    h = w = size
    samples = []
    for _ in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1., 1.),
                                        batch_input_shape=(h, w)))
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 20:120, 30:140] = 1
        masks[1, 150:300, 100:250] = 1
        s.gt_instances = InstanceData(bboxes=torch.tensor([[30., 20., 140., 120.], [100., 150., 250., 300.]]),
                                      labels=torch.tensor([3, 17]), masks=BitmapMasks(masks.numpy(), h, w))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8) for _ in range(2)], data_samples=samples)
    plain_loss = model.loss
    adn_loss = SubPathDistillation(model, plain_loss, alpha=0.5, features=dict(neck='channel'))

    def step(loss):
        def fn():
            model.loss = loss
            model.train_step(data, optim)
        return fn

    fns = {'plain': step(plain_loss), 'Algorithm 1': step(adn_loss)}
    ms = interleaved_ms(fns, iters)
    mem = {k: peak_memory(fn, torch.device('cpu')) for k, fn in fns.items()}
    del model.loss
    print(f'\n## 4. Mask R-CNN R50-ADN training iteration (batch 2, {h}x{w}, median of {iters} interleaved)\n')
    print('| training | ms / iter | peak MiB |')
    print('|---|---|---|')
    for key in fns:
        print(f'| {key} | {ms[key]:.0f} | {mem[key]:.0f} |')
    print(f'\nAlgorithm 1 / plain: time {ms["Algorithm 1"] / ms["plain"]:.2f}x, '
          f'peak memory {mem["Algorithm 1"] / mem["plain"]:.2f}x')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--train-size', type=int, default=320)
    parser.add_argument('--train-iters', type=int, default=5)
    parser.add_argument('--channels-last', action='store_true',
                        help='run the backbone sections in channels-last memory format')
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f'# ADN benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads')
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        print('channels-last memory format (oneDNN NHWC kernels) for sections 1-2')
    bench_backbone(tuple(args.size), args.runs, memory_format)
    bench_breakdown(tuple(args.size), args.runs, memory_format)
    bench_training(args.train_size, args.train_iters)


if __name__ == '__main__':
    main()
