"""Real early exit (issue 17): each sample stops at the exit where it is confident, and gets exactly what the
simulated budgeted evaluation (all exits run, thresholds applied afterwards) gives it."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import save_checkpoint
from mmpretrain.registry import MODELS

from mmadn.datasets import make_classification_folder
from mmadn.imta import (all_exit_scores, confidence_and_correct, early_exit_predict, evaluate_thresholds,
                        exit_costs, exit_fractions, exit_taken, fit_thresholds)
from tests._cli import ROOT, run_tool

TINY_ARCH = dict(num_exits=4, step_mode='even', step=1, base=1, channels=4, growth_rate=2, gr_factor=(1, 2, 4),
                 bn_factor=(1, 2, 4), stem='cifar')


def tiny_model(isc=None, num_classes=6):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MultiExitClassifier', backbone=dict(type='MSDNet', arch=TINY_ARCH),
                              head=dict(type='MultiExitClsHead', num_classes=num_classes, inter_channels=8,
                                        isc=isc)))
    # spread the BN statistics and the last layers a little, so that the exits' confidences differ
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(4)
    return model.double().eval()


@pytest.mark.parametrize('isc', [None, dict(transfer='learned'), dict(transfer='residual')])
def test_early_exit_predictions_equal_the_simulated_evaluation(isc):
    model = tiny_model(isc)
    torch.manual_seed(1)
    val, test = torch.randn(30, 3, 32, 32, dtype=torch.float64), torch.randn(20, 3, 32, 32, dtype=torch.float64)
    labels = torch.randint(0, 6, (20, ))
    val_conf, _ = confidence_and_correct(all_exit_scores(model, val).numpy(), np.zeros(30))
    # the simulation: every sample runs every exit, the thresholds pick one afterwards
    sim_scores = all_exit_scores(model, test)
    conf, correct = confidence_and_correct(sim_scores.numpy(), labels.numpy())
    for q in (0.5, 1.0, 2.0):
        thresholds = fit_thresholds(val_conf, exit_fractions(q, 4))  # fitted as today, on held-out scores
        sim_exit = exit_taken(conf, thresholds)
        simulated = evaluate_thresholds(conf, correct, thresholds, [1.0, 2.0, 3.0, 4.0])

        seen = []
        hooks = [b.register_forward_hook(lambda m, i, o: seen.append(o[-1].size(0))) for b in model.backbone.blocks]
        out = early_exit_predict(model, test, thresholds)
        for h in hooks:
            h.remove()
        assert torch.equal(out['exits'], torch.from_numpy(sim_exit)), q
        taken = sim_scores[torch.arange(20), out['exits']]
        assert torch.allclose(out['scores'], taken, rtol=0, atol=1e-12)
        assert torch.equal(out['scores'].argmax(1), taken.argmax(1))
        accuracy = (out['scores'].argmax(1) == labels).double().mean().item() * 100
        assert accuracy == pytest.approx(simulated['accuracy'])
        assert np.allclose(np.bincount(out['exits'].numpy(), minlength=4) / 20, simulated['exit_shares'])
        # the batch is split: block j computes only the samples that have not left before it
        still_running = [int((out['exits'] >= j).sum()) for j in range(4)]
        assert out['batch_sizes'].tolist() == still_running
        assert seen == [r for r in still_running if r > 0]
        if q == 1.0:  # the thresholds do send samples to several exits
            assert len(set(sim_exit.tolist())) >= 3, sim_exit


def test_everyone_leaves_at_the_first_exit_and_nobody_early():
    model = tiny_model()
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    first = early_exit_predict(model, x, [-np.inf, 0.5, 0.5, 0.5])
    assert first['exits'].tolist() == [0] * 5 and first['batch_sizes'].tolist() == [5, 0, 0, 0]
    last = early_exit_predict(model, x, [np.inf] * 4)
    assert last['exits'].tolist() == [3] * 5 and last['batch_sizes'].tolist() == [5] * 4
    assert torch.allclose(last['scores'], all_exit_scores(model, x)[:, -1])
    with pytest.raises(ValueError, match='one per exit'):
        early_exit_predict(model, x, [0.5, 0.5])


@pytest.mark.slow
def test_benchmark_tool_reports_time_and_expected_flops(tmp_path):
    root = str(tmp_path / 'data')
    make_classification_folder(root, classes=('cross', 'ring', 'square'), train_per_class=10, val_per_class=6,
                               size=32, seed=0)
    model = tiny_model(num_classes=3).float()  # a phase-I model: the phase-II config adds ISC and the teacher
    ckpt = str(tmp_path / 'tiny.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    opts = [f'{k}={v}' for k, v in {
        'model.head.inter_channels': 8, 'model.backbone.arch.channels': 4, 'model.backbone.arch.growth_rate': 2,
        'model.backbone.arch.num_exits': 4, 'holdout_dataloader.dataset.num_holdout': 12,
        'holdout_dataloader.dataset.dataset.data_root': root, 'test_dataloader.dataset.data_root': root}.items()]
    out_dir = tmp_path / 'bench'
    config = osp.join(ROOT, 'configs/imta/imta_tiny-4exits_synthetic.py')
    _, out = run_tool('tools/imta/early_exit_benchmark.py', config, ckpt, '--out-dir', out_dir, '--qs', '0.5', '2',
                      '--repeats', '1', '--batch-size', '18', '--cfg-options', *opts, timeout=300)
    results = json.loads((out_dir / 'early_exit.json').read_text())
    assert (out_dir / 'early_exit.md').is_file()
    flops = exit_costs(tiny_model(dict(transfer='learned'), num_classes=3).float(), (3, 32, 32))[0]
    assert results['exit_flops'] == flops and results['num_images'] == 18
    assert len(results['rows']) == 2
    for row in results['rows']:
        assert row['predictions_match_simulation']
        assert abs(sum(row['exit_shares']) - 1) < 1e-9
        assert row['expected_flops'] == pytest.approx(float(np.dot(row['exit_shares'], flops)))
        assert row['ms_per_image'] > 0 and row['all_exits_ms_per_image'] > 0
        assert row['predicted_from_exit_times_ms_per_image'] > 0 and row['measured_over_predicted_fastest'] > 0
        assert row['predicted_ms_per_image'] == pytest.approx(
            row['all_exits_ms_per_image'] * row['expected_flops'] / flops[-1])
    assert results['rows'][0]['expected_flops'] <= results['rows'][1]['expected_flops']
    assert 'expected MFLOPs' in out and 'measured / predicted' in out
