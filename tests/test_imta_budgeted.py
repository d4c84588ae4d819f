"""Budgeted batch classification and anytime evaluation, against hand-worked examples."""
import numpy as np
import pytest
import torch

from mmadn.datasets import make_classification_folder
from mmadn.imta import (AnytimeAccuracy, HoldoutSplit, budget_sweep, evaluate_thresholds, exit_accuracies,
                        exit_fractions, fit_thresholds)

# A hand-worked example: 3 exits, q = 1 -> each exit should take floor(6 / 3) = 2 of the 6 validation samples.
VAL_CONF = np.array([
    [0.90, 0.50, 0.80, 0.30, 0.60, 0.20],  # exit 1: the 2 most confident are s0, s2 -> threshold 0.80
    [0.99, 0.70, 0.95, 0.40, 0.65, 0.75],  # exit 2: s0, s2 have left; of s1, s3, s4, s5: s5, s1 -> 0.70
    [0.50, 0.50, 0.50, 0.50, 0.50, 0.50],  # exit 3 takes the rest
])
TEST_CONF = np.array([
    [0.85, 0.50, 0.79, 0.10],  # t0 leaves at exit 1 (0.85 >= 0.80); t2 just misses (0.79)
    [0.90, 0.72, 0.60, 0.20],  # t1 leaves at exit 2 (0.72 >= 0.70)
    [0.95, 0.80, 0.70, 0.30],  # t2, t3 leave at exit 3
])
TEST_CORRECT = np.array([
    [1, 0, 1, 0],
    [1, 1, 0, 0],
    [1, 1, 1, 0],
], dtype=bool)
FLOPS = [10.0, 25.0, 45.0]  # cumulative per exit


def test_exit_fractions_are_geometric_in_q():
    assert np.allclose(exit_fractions(1.0, 3), [1 / 3] * 3)
    assert np.allclose(exit_fractions(0.5, 3), [4 / 7, 2 / 7, 1 / 7])
    assert np.allclose(exit_fractions(2.0, 3), [1 / 7, 2 / 7, 4 / 7])
    with pytest.raises(ValueError, match='q must be > 0'):
        exit_fractions(0.0, 3)


def test_thresholds_accuracy_and_expected_flops_of_a_hand_worked_example():
    thresholds = fit_thresholds(VAL_CONF, exit_fractions(1.0, 3))
    assert thresholds[0] == pytest.approx(0.80) and thresholds[1] == pytest.approx(0.70)
    assert thresholds[2] == -np.inf
    # on the validation split, 2 samples leave at every exit, as intended
    val = evaluate_thresholds(VAL_CONF, np.ones_like(VAL_CONF, bool), thresholds, FLOPS)
    assert np.allclose(val['exit_shares'], [1 / 3] * 3)

    test = evaluate_thresholds(TEST_CONF, TEST_CORRECT, thresholds, FLOPS)
    assert np.allclose(test['exit_shares'], [0.25, 0.25, 0.5])
    assert test['accuracy'] == pytest.approx(75.0)  # t0, t1, t2 right at their exits, t3 wrong
    assert test['expected_flops'] == pytest.approx(0.25 * 10 + 0.25 * 25 + 0.5 * 45)  # 31.25


def test_edge_budgets():
    # nobody is meant to leave early: +inf thresholds, everything runs the whole network
    thresholds = fit_thresholds(VAL_CONF, [0.0, 0.0, 1.0])
    assert np.isinf(thresholds[:2]).all()
    assert evaluate_thresholds(TEST_CONF, TEST_CORRECT, thresholds, FLOPS)['expected_flops'] == 45.0
    # everybody is meant to leave at exit 1
    thresholds = fit_thresholds(VAL_CONF, [1.0, 0.0, 0.0])
    assert thresholds[0] == pytest.approx(0.20)


def test_sweep_from_softmax_scores():
    # softmax scores N x k x C whose max is VAL_CONF / TEST_CONF, always on class 0 (the rest spread thinly)
    def scores(conf, num_classes=20):
        s = np.repeat(((1 - conf.T) / (num_classes - 1))[..., None], num_classes, axis=2)
        s[:, :, 0] = conf.T
        return s
    val_labels = np.zeros(6, int)
    rows = budget_sweep(scores(VAL_CONF), val_labels, scores(TEST_CONF), np.array([0, 0, 0, 1]), FLOPS, qs=[1.0, 4.0])
    assert rows[0]['q'] == 1.0 and rows[0]['expected_flops'] == pytest.approx(31.25)
    assert rows[0]['accuracy'] == pytest.approx(75.0)  # t3's label is 1, predictions are 0
    assert rows[1]['expected_flops'] > rows[0]['expected_flops']  # larger q: later exits


def test_anytime_metric_reports_every_exit():
    # 3 samples, 2 exits, 4 classes
    scores = torch.tensor([
        [[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]],
        [[0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.6, 0.1]],
        [[0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.1, 0.7]],
    ])
    labels = torch.tensor([0, 2, 3])
    acc = exit_accuracies(scores, labels, topk=(1, 2))
    # exit 1: top-1 right for sample 2 only, top-2 too (sample 0 ranks classes 1, 2; sample 1 ranks 0, 1)
    assert torch.allclose(acc, torch.tensor([[100 / 3, 100 / 3], [100.0, 100.0]]))
    metric = AnytimeAccuracy(topk=(1, 2))
    metric.process(None, [dict(exit_scores=s, gt_label=y.view(1)) for s, y in zip(scores, labels)])
    assert metric.evaluate(3) == pytest.approx({'exits/exit1_top1': 100 / 3, 'exits/exit1_top2': 100 / 3,
                                                'exits/exit2_top1': 100.0, 'exits/exit2_top2': 100.0})
    with pytest.raises(ValueError, match='lower `topk`'):
        exit_accuracies(scores, labels, topk=(5, ))
    with pytest.raises(KeyError, match='exit_scores'):
        AnytimeAccuracy().process(None, [dict(gt_label=labels[:1])])


def test_holdout_split_partitions_the_training_set(tmp_path):
    make_classification_folder(str(tmp_path), classes=('cross', 'ring'), train_per_class=10, val_per_class=1,
                               size=16, seed=1)
    base = dict(type='CustomDataset', data_root=str(tmp_path), data_prefix='train', pipeline=[])
    train = HoldoutSplit(base, num_holdout=6, holdout=False, seed=3)
    held = HoldoutSplit(base, num_holdout=6, holdout=True, seed=3)
    train_files = {train.get_data_info(i)['img_path'] for i in range(len(train))}
    held_files = {held.get_data_info(i)['img_path'] for i in range(len(held))}
    assert len(train_files) == 14 and len(held_files) == 6 and not train_files & held_files
    again = HoldoutSplit(base, num_holdout=6, holdout=True, seed=3)
    assert held_files == {again.get_data_info(i)['img_path'] for i in range(len(again))}
    with pytest.raises(ValueError, match='lower num_holdout'):
        HoldoutSplit(base, num_holdout=20)
