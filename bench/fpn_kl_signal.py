"""How far the base-net's FPN features are from the super-net's, and what each form of the KL term says about it.

    python bench/fpn_kl_signal.py CONFIG CKPT [CKPT ...] [--batches 5]

For each detector checkpoint, on the first validation batches of CONFIG: per FPN level, the super-net's feature
scale (std), the relative distance ||f_base - f_super|| / ||f_super||, the neck KL term as ADNDistillHook
computes it in 'channel' mode, raw and with ``normalize=True``, and the shares of the squared deviation that are
a constant offset per channel (invisible to 'spatial') and per position (invisible to 'channel'); and, for one
training batch, the gradient the KL term sends into the base-net's twin norms beside the one the task loss sends
into the backbone. This is the measurement behind the detection default of docs/adn.md ("The FPN term").
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmadn  # noqa: E402,F401
from mmadn.models import SubPathDistillation, feature_kl, subnet  # noqa: E402
from mmadn.utils import load_config  # noqa: E402


def offset_shares(sup, base):
    """Shares of ||f_base - f_super||^2 that are a constant per image and channel (what the spatial softmax cannot
    see) and a constant per image and position (what the channel softmax cannot see)."""
    diff = base - sup
    total = diff.pow(2).sum()
    return dict(per_channel=(diff.mean(dim=(2, 3), keepdim=True).expand_as(diff).pow(2).sum() / total).item(),
                per_position=(diff.mean(dim=1, keepdim=True).expand_as(diff).pow(2).sum() / total).item())


def level_stats(model, batches):
    rows = None
    for data in batches:
        with torch.no_grad(), subnet(model, 'super'):
            sup = model.extract_feat(data['inputs'])
        with torch.no_grad(), subnet(model, 'base'):
            base = model.extract_feat(data['inputs'])
        stats = [dict(std=s.std().item(), rel_dist=((b - s).norm() / s.norm()).item(),
                      kl_raw=feature_kl(s, b, 'channel').item(),
                      kl_normalized=feature_kl(s, b, 'channel', normalize=True).item(),
                      **offset_shares(s, b)) for s, b in zip(sup, base)]
        rows = stats if rows is None else [{k: r[k] + s[k] for k in r} for r, s in zip(rows, stats)]
    return [{k: v / len(batches) for k, v in r.items()} for r in rows]


def gradient_share(model, data, mode, normalize):
    """|grad| the KL terms send into the twins (the base-net's own norms, trained by nothing else) and |grad| the
    task losses send into the shared norms the twins stand in for (the same parameters of the super-net)."""
    objective = SubPathDistillation(model, model.loss, features=dict(neck=dict(mode=mode, normalize=normalize)))
    model.train()
    torch.manual_seed(0)
    losses = objective(data['inputs'], data['data_samples'])
    params = dict(model.backbone.named_parameters())
    twins = [name for name in params if '_skip.' in name]
    shared = [name.replace('_skip.', '.') for name in twins]
    kl = sum(v for k, v in losses.items() if k.startswith('loss_kl'))
    task = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
               if 'loss' in k and not k.startswith('loss_kl'))
    kl_grad = torch.autograd.grad(kl, [params[n] for n in twins], retain_graph=True, allow_unused=True)
    task_grad = torch.autograd.grad(task, [params[n] for n in shared], allow_unused=True)
    model.eval()
    norm = lambda grads: torch.sqrt(sum((g**2).sum() for g in grads if g is not None)).item()  # noqa: E731
    return norm(kl_grad), norm(task_grad), kl.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--batches', type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    for ckpt in args.checkpoints:
        cfg = load_config(args.config)
        cfg.work_dir = osp.join('work_dirs', 'fpn_kl_signal')
        cfg.load_from = ckpt
        cfg.custom_hooks = []
        runner = Runner.from_cfg(cfg)
        runner.load_or_resume()
        model = runner.model.eval()
        val = iter(runner.val_dataloader)
        batches = [model.data_preprocessor(next(val), False) for _ in range(args.batches)]
        print(f'\n{ckpt}')
        print('| level | super-net std | rel. distance base vs super | KL channel (raw) | KL channel (normalize) | '
              'offset share per channel (spatial-blind) | per position (channel-blind) |')
        print('|---|---|---|---|---|---|---|')
        for i, r in enumerate(level_stats(model, batches)):
            print(f'| P{i + 2} | {r["std"]:.3f} | {r["rel_dist"]:.3f} | {r["kl_raw"]:.2e} | {r["kl_normalized"]:.3f} | '
                  f'{r["per_channel"]:.3f} | {r["per_position"]:.3f} |')
        train = model.data_preprocessor(next(iter(runner.train_dataloader)), True)
        print('\n| neck term | sum of KL terms (x 0.5 in the loss) | grad into twins from KL | grad into their shared '
              'norms from the task losses | ratio |\n|---|---|---|---|---|')
        for mode, normalize in (('channel', False), ('channel', True), ('spatial', False), ('spatial', True)):
            kl_grad, task_grad, kl = gradient_share(model, train, mode, normalize)
            print(f'| {mode}{", normalize" if normalize else ""} | {kl:.3e} | {kl_grad:.3e} | {task_grad:.3e} | '
                  f'{kl_grad / task_grad:.3g} |')


if __name__ == '__main__':
    main()
