"""When ODN's learning rate decays (issue 18, item 7b): on the 5th epoch without improvement, as the authors' notebooks.

The notebooks (saktx/Optimally_Deep_Networks, ``train_till_convergence``) count ``no_improvement`` and call a
``StepLR(gamma=0.6)`` whenever ``no_improvement % 5 == 0``: after the 5th, 10th, 15th and 20th stale epoch.
``DepthExpansion(lr_patience=5)`` does the same. torch's ``ReduceLROnPlateau(patience=5)`` waits for
``num_bad_epochs > patience``, the 6th stale epoch, then counts 6 again: it is ``lr_patience=6``.
"""
import numpy as np
import pytest
import torch

from mmadn.odn import DepthExpansion

# The MNIST notebook's logged validation accuracies at depth 1 (epochs 1-82, rounded to 0.1 as its rule compares
# them) and the epochs after which it printed "LR Step Reduced!" (and, after epoch 82, "Depth Incremented").
NOTEBOOK_MNIST_DEPTH1 = [
    84.2, 84.1, 91.2, 84.3, 94.6, 82.7, 94.7, 94.8, 94.0, 95.7, 94.2, 94.7, 84.0, 91.6, 94.8, 97.3, 93.2, 96.4,
    97.5, 93.9, 92.9, 80.7, 94.1, 86.1, 95.1, 97.0, 96.9, 97.1, 96.6, 97.3, 97.5, 96.4, 95.3, 97.1, 96.4, 98.1,
    98.1, 98.1, 97.6, 97.7, 97.6, 98.0, 98.1, 98.4, 98.2, 98.3, 98.2, 98.2, 98.0, 98.4, 98.4, 98.2, 98.4, 98.3,
    98.4, 98.4, 98.4, 98.4, 98.5, 98.4, 98.4, 98.5, 98.4, 98.4, 98.4, 98.4, 98.4, 98.4, 98.5, 98.4, 98.4, 98.4,
    98.4, 98.5, 98.5, 98.4, 98.4, 98.4, 98.5, 98.5, 98.5, 98.5
]
NOTEBOOK_MNIST_DECAYS = [15, 24, 29, 34, 41, 49, 54, 64, 69, 74, 79]


def ours(accuracies, lr_patience, patience=10**6, target=1000.0):
    """Epochs (1-based) after which DepthExpansion decays, on one depth; the lr scale of every next epoch."""
    rule = DepthExpansion(1, target=target, warmup_epochs=0, patience=patience, lr_patience=lr_patience,
                          lr_factor=0.6)
    decisions = [rule.step(a) for a in accuracies]
    return [d.epoch for d in decisions if d.action == 'decay'], [d.lr_scale for d in decisions]


def torch_plateau(accuracies, patience):
    """The same for torch.optim.lr_scheduler.ReduceLROnPlateau(mode='max', factor=0.6, threshold=0)."""
    base = 1e20  # torch stops decaying once a step changes the rate by less than eps=1e-8: keep it far from that
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode='max', factor=0.6, patience=patience,
                                                           threshold=0.0)
    decays, scales = [], []
    for epoch, accuracy in enumerate(accuracies, 1):
        before = optimizer.param_groups[0]['lr']
        scheduler.step(accuracy)
        after = optimizer.param_groups[0]['lr']
        if after < before:
            decays.append(epoch)
        scales.append(after / base)
    return decays, scales


def test_decay_fires_on_the_fifth_stale_epoch_where_reduce_on_plateau_fires_on_the_sixth():
    # best at epoch 2, then never beaten: epochs 3, 4, ... are stale epochs 1, 2, ...
    accuracies = [50.0, 60.0] + [59.0, 58.0, 60.0, 57.0, 56.0, 55.0, 54.0, 53.0, 52.0, 51.0, 50.0, 49.0, 48.0, 47.0]
    decays, scales = ours(accuracies, lr_patience=5)
    assert decays == [7, 12]  # stale epochs 5 and 10 (equal to the best is not better: epoch 5 is stale)
    assert scales[6] == pytest.approx(0.6) and scales[11] == pytest.approx(0.36)
    torch_decays, _ = torch_plateau(accuracies, patience=5)
    assert torch_decays == [8, 14]  # stale epochs 6 and 12: one later, then 6 more
    assert ours(accuracies, lr_patience=6)[0] == torch_decays


def test_lr_patience_k_is_reduce_on_plateau_patience_k_minus_1_epoch_for_epoch():
    rng = np.random.default_rng(0)
    # plateaus with occasional improvements: a slowly rising noisy curve
    accuracies = list(np.round(60 + 30 * (1 - np.exp(-np.arange(200) / 40)) + rng.normal(0, 2, 200), 1))
    for k in (2, 3, 5, 6):
        decays, scales = ours(accuracies, lr_patience=k)
        torch_decays, torch_scales = torch_plateau(accuracies, patience=k - 1)
        assert len(decays) >= 5, k  # the sequence exercises the rule
        assert decays == torch_decays, k
        assert scales == pytest.approx(torch_scales), k
        assert torch_plateau(accuracies, patience=k)[0] != decays, k


def test_the_notebooks_own_log_is_reproduced_decay_for_decay():
    rule = DepthExpansion(8, target=99.5, tolerance=0.5, warmup_epochs=0, patience=23, lr_patience=5, lr_factor=0.6)
    decisions = [rule.step(a) for a in NOTEBOOK_MNIST_DEPTH1]
    assert [d.epoch for d in decisions if d.action == 'decay'] == NOTEBOOK_MNIST_DECAYS
    assert decisions[-1].action == 'expand' and decisions[-1].stale_epochs == 23  # deepened after epoch 82
    assert [d.action for d in decisions[:-1]].count('expand') == 0
    # torch's scheduler with the same patience would have decayed elsewhere (and less often)
    torch_decays, _ = torch_plateau(NOTEBOOK_MNIST_DEPTH1, patience=5)
    assert torch_decays != NOTEBOOK_MNIST_DECAYS and len(torch_decays) < len(NOTEBOOK_MNIST_DECAYS)
    assert torch_plateau(NOTEBOOK_MNIST_DEPTH1, patience=4)[0] == NOTEBOOK_MNIST_DECAYS
