"""The IMTA schedule end to end on generated data: phase I (GE) and phase II (ISC + OFA from the phase-I teacher)
with mmengine's runner, then tools/imta/evaluate_budgets.py on the result."""
import json
import os.path as osp
import runpy

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmadn.datasets import make_classification_folder
from mmadn.utils import load_config
from tests._cli import ROOT, run_tool

CONFIGS = osp.join(ROOT, 'configs', 'imta')
TINY = dict(num_exits=3, step_mode='even', step=1, base=1, channels=4, growth_rate=2, gr_factor=(1, 2, 4),
            bn_factor=(1, 2, 4), stem='cifar')


def _shrink(cfg: Config, data_root: str, work_dir: str, name: str) -> Config:
    """The synthetic config on a handful of images, a 3-exit model and two short epochs."""
    cfg.merge_from_dict({
        'model.backbone.arch': TINY,
        'model.head.inter_channels': 8,
        'train_dataloader.batch_size': 6,
        'train_dataloader.dataset.num_holdout': 6,
        'train_dataloader.dataset.dataset.data_root': data_root,
        'holdout_dataloader.dataset.num_holdout': 6,
        'holdout_dataloader.dataset.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'train_cfg.max_epochs': 2,
        'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    })
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    return cfg


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('imta_data'))
    make_classification_folder(root, classes=('cross', 'ring', 'square'), train_per_class=8, val_per_class=4,
                               size=32, seed=0)
    return root


@pytest.mark.slow
def test_two_phase_training_and_budgeted_evaluation(data_root, tmp_path):
    # phase I: MSDNet with Gradient Equilibrium, plain CE summed over exits
    cfg1 = _shrink(load_config(osp.join(CONFIGS, 'msdnet-ge_tiny-4exits_synthetic.py')), data_root,
                   str(tmp_path / 'phase1'), f'imta_phase1_{tmp_path.name}')
    runner1 = Runner.from_cfg(cfg1)
    runner1.train()
    assert runner1.model.backbone.gradient_equilibrium
    assert runner1.optim_wrapper.optimizer.defaults['nesterov']  # SGD with Nesterov momentum, as in phase II
    metrics1 = runner1.val_loop.run()
    assert set(metrics1) >= {'accuracy/top1', 'exits/exit1_top1', 'exits/exit3_top1'}
    assert metrics1['accuracy/top1'] == pytest.approx(metrics1['exits/exit3_top1'])  # pred_score: the last exit
    phase1_ckpt = str(tmp_path / 'phase1' / 'epoch_2.pth')
    phase1_backbone = {k: v.clone() for k, v in runner1.model.backbone.state_dict().items()}
    phase1_last_fc = runner1.model.head.exits[2].fc.weight.detach().clone()
    phase1_fcs = [e.fc.weight.detach().clone() for e in runner1.model.head.exits]

    # phase II: frozen phase-I model, ISC + OFA with the phase-I final exit as teacher
    cfg2 = _shrink(load_config(osp.join(CONFIGS, 'imta_tiny-4exits_synthetic.py')), data_root,
                   str(tmp_path / 'phase2'), f'imta_phase2_{tmp_path.name}')
    cfg2.load_from = phase1_ckpt
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()
    model2 = runner2.model
    assert runner2.optim_wrapper.optimizer.defaults['nesterov']
    assert torch.equal(model2.head.teacher_fc.weight, phase1_last_fc)
    # fine-tuned, not re-initialised: the exits' linear layers moved from their phase-I weights, by less than their
    # norm (a fresh init, independent of them, would be sqrt(|start|^2 + |init|^2) > |start| away; the fine-tuned
    # ones moved up to 0.63 |start| in the runs seen, the amount varying with the thread count)
    for i, (start, fc) in enumerate(zip(phase1_fcs, model2.head.exits)):
        moved = (fc.fc.weight[:, :start.size(1)] - start).norm()
        assert 0 < moved < start.norm(), i
    for k, v in model2.backbone.state_dict().items():  # frozen: weights and BN statistics unchanged
        assert torch.equal(v, phase1_backbone[k]), k
    phase2_ckpt = str(tmp_path / 'phase2' / 'epoch_2.pth')

    # the tool: anytime table, budget table and curve from CONFIG + CHECKPOINT
    out_dir = tmp_path / 'eval'
    cfg_options = [f'{k}={v}' for k, v in {
        'model.head.inter_channels': 8,
        'model.backbone.arch.channels': 4, 'model.backbone.arch.growth_rate': 2, 'model.backbone.arch.num_exits': 3,
        'holdout_dataloader.dataset.num_holdout': 6,
        'holdout_dataloader.dataset.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root}.items()]
    _, out = run_tool('tools/imta/evaluate_budgets.py', osp.join(CONFIGS, 'imta_tiny-4exits_synthetic.py'), phase2_ckpt,
                      '--out-dir', out_dir, '--qs', '0.25', '1', '4', '--cfg-options', *cfg_options, timeout=300)
    for name in ('anytime.md', 'budget.md', 'budget.tsv', 'budget_curve.png', 'results.json'):
        assert (out_dir / name).is_file(), (name, out)
    results = json.loads((out_dir / 'results.json').read_text())
    flops, rows = results['exit_flops'], results['budget']
    assert len(flops) == 3 and flops == sorted(flops) and len(rows) == 3
    assert len(results['anytime']['top1']) == 3
    for row in rows:
        assert flops[0] - 1e-6 <= row['expected_flops'] <= flops[-1] + 1e-6
        assert abs(sum(row['exit_shares']) - 1) < 1e-9
        assert 0 <= row['accuracy'] <= 100
        shares = torch.tensor(row['exit_shares'], dtype=torch.float64)
        assert abs(float(shares @ torch.tensor(flops, dtype=torch.float64)) - row['expected_flops']) < 1e-3
    # a larger q sends samples to later exits, never cheaper
    assert rows[0]['expected_flops'] <= rows[1]['expected_flops'] <= rows[2]['expected_flops']
    assert 'Budgeted batch classification' in out and 'Anytime prediction' in out


def test_evaluation_tool_explains_a_missing_holdout_split(tmp_path, monkeypatch):
    tool = osp.join(ROOT, 'tools', 'imta', 'evaluate_budgets.py')
    monkeypatch.setattr('sys.argv', [tool, osp.join(CONFIGS, 'imta_tiny-4exits_synthetic.py'), 'missing.pth',
                                     '--out-dir', str(tmp_path), '--cfg-options', 'holdout_dataloader=None'])
    with pytest.raises(SystemExit, match='has no `holdout_dataloader`'):
        runpy.run_path(tool, run_name='__main__')
