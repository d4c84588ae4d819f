"""What each detection objective costs per training iteration, measured in one run (issue 30's target: the chosen
recipe at most 1.3 x Algorithm 1's time per iteration).

    python bench/bench_recipe_cost.py [CONFIG] [--iters 12] [--batches 4] [--variant NAME KEY=VALUE ...]

Builds CONFIG's detector (default: the demo's Mask R-CNN R18-ADN, random weights: the cost does not depend on
them) and a few batches of its own train data, then runs ``train_step`` (forward, backward, optimizer step)
round-robin over the objectives, the same batches in the same order for each, and prints the mean ms per
iteration and the ratio to Algorithm 1 (the mean, not the median: an objective with
``student_task_loss_interval`` alternates dear and cheap steps):
  plain:             the detector's own loss at the super-net, no hook;
  Algorithm 1:       ADNDistillHook with ``student_task_loss_weight=0`` (the paper's form);
  detection recipe:  ADNDistillHook's detection defaults (the base-net's own task loss every step);
  and any ``--variant NAME KEY=VALUE ...`` of the hook's arguments, e.g. ``--variant half student_task_loss_interval=2``.
Round-robin timing (``mmadn.utils.timing.interleaved_latency``) makes the ratios fair on a shared, noisy machine;
absolute times are this machine's.
"""
import argparse
import contextlib
import itertools
import logging
import os.path as osp
import statistics
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmadn  # noqa: E402,F401
from mmadn.models import SubPathDistillation  # noqa: E402
from mmadn.utils.timing import interleaved_latency  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py')


def parse_variant(tokens):
    name, settings = tokens[0], {}
    for token in tokens[1:]:
        key, _, value = token.partition('=')
        if not value:
            raise SystemExit(f'--variant {name}: give KEY=VALUE, got {token!r}')
        settings[key] = eval(value, {}, {})  # numbers, None, tuples: the hook's argument types
    return name, settings


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', default=DEMO_CONFIG)
    parser.add_argument('--iters', type=int, default=12,
                        help='timed iterations of each objective (even, for the interval variants)')
    parser.add_argument('--batches', type=int, default=4, help='train batches cycled through')
    parser.add_argument('--variant', nargs='+', action='append', default=[], metavar='NAME KEY=VALUE',
                        help='another objective: ADNDistillHook arguments')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    cfg.model.backbone.init_cfg = None
    cfg.custom_hooks = []
    cfg.work_dir = tempfile.mkdtemp(prefix='recipe_cost_')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    logger = MMLogger.get_current_instance()
    logger.setLevel(logging.WARNING)
    model.train()
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = iter(runner.train_dataloader)
    batches = [next(loader) for _ in range(args.batches)]

    plain = model.loss
    objectives = {'plain': plain,
                  'Algorithm 1': SubPathDistillation(model, plain, student_task_loss_weight=0),
                  'detection recipe': SubPathDistillation(model, plain)}
    for tokens in args.variant:
        name, settings = parse_variant(tokens)
        objectives[name] = SubPathDistillation(model, plain, **settings)

    # each objective's batches: the first for the warm-up round (allocator, oneDNN kernels), then all in turn
    feeds = {name: itertools.chain(batches[:1], itertools.cycle(batches)) for name in objectives}

    @contextlib.contextmanager
    def installed(name):  # outside the timed call, as the hook installs it before the step
        model.loss = objectives[name]
        yield

    torch.manual_seed(0)
    times = interleaved_latency({name: lambda name=name: model.train_step(next(feeds[name]), optim)
                                 for name in objectives}, next(model.parameters()).device, warmup=1, runs=args.iters,
                                around=installed)
    del model.loss

    ms = {name: statistics.mean(t['samples_ms']) for name, t in times.items()}
    base = ms['Algorithm 1']
    print(f'# Training iteration per objective: {osp.relpath(args.config, ROOT)}, batch '
          f'{cfg.train_dataloader.batch_size}, torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'mean of {args.iters} round-robin\n')
    print('| objective | ms / iter | / Algorithm 1 |')
    print('|---|---|---|')
    for name in objectives:
        print(f'| {name} | {ms[name]:.0f} | {ms[name] / base:.2f} |')


if __name__ == '__main__':
    main()
