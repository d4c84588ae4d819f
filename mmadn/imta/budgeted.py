"""Budgeted batch classification (MSDNet's dynamic evaluation), as pure functions of the exits' softmax scores.

A sample leaves at the first exit whose confidence (max softmax probability) reaches that exit's threshold. For a
budget parameter q the share of samples meant to leave at exit j is proportional to q^j (small q: most leave
early). Thresholds are fitted on a held-out validation split and applied to the test set; sweeping q gives one
accuracy / expected-FLOPs curve.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

DEFAULT_QS = tuple(p / 20 for p in range(1, 41))  # the public code's sweep


def exit_fractions(q: float, num_exits: int) -> np.ndarray:
    """Intended share of samples per exit: p_j proportional to q^j (j = 1..k), normalised to sum to 1."""
    if q <= 0:
        raise ValueError(f'the budget parameter q must be > 0, got {q}')
    log_p = np.arange(1, num_exits + 1) * math.log(q)
    p = np.exp(log_p - log_p.max())  # stable for any q
    return p / p.sum()


def fit_thresholds(confidences: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Per-exit thresholds from validation confidences (k x N) and intended shares (k).

    In exit order, among the samples that have not left yet, exit j's threshold is the confidence of the
    floor(N * p_j)-th most confident one, so that many leave there (more on ties; all that remain if fewer
    remain). floor(N * p_j) = 0 gives +inf (nobody leaves). The last exit takes everything (-inf).
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    num_exits, n = confidences.shape
    if len(fractions) != num_exits:
        raise ValueError(f'{len(fractions)} fractions for {num_exits} exits')
    thresholds = np.full(num_exits, np.inf)
    remaining = np.ones(n, dtype=bool)
    for j in range(num_exits - 1):
        wanted = math.floor(n * fractions[j] + 1e-9)  # the epsilon keeps e.g. 6 * (1/3) from flooring to 1
        candidates = np.sort(confidences[j][remaining])[::-1]
        if wanted > 0 and candidates.size:
            thresholds[j] = candidates[min(wanted, candidates.size) - 1]
        remaining &= confidences[j] < thresholds[j]
    thresholds[-1] = -np.inf
    return thresholds


def exit_taken(confidences: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Index of the exit each sample leaves at: the first j with confidence_j >= threshold_j."""
    passes = np.asarray(confidences) >= np.asarray(thresholds, dtype=np.float64)[:, None]
    passes[-1] = True
    return passes.argmax(axis=0)


def evaluate_thresholds(confidences: np.ndarray, correct: np.ndarray, thresholds: Sequence[float],
                        flops: Sequence[float]) -> Dict[str, object]:
    """Accuracy (%), expected FLOPs per image and the share of samples at each exit, for fixed thresholds.

    ``correct`` (k x N, bool) says whether exit j classifies sample i correctly; ``flops`` are cumulative per exit.
    """
    confidences, correct = np.asarray(confidences), np.asarray(correct, dtype=bool)
    num_exits, n = confidences.shape
    if len(flops) != num_exits:
        raise ValueError(f'{len(flops)} FLOP counts for {num_exits} exits')
    taken = exit_taken(confidences, thresholds)
    shares = np.bincount(taken, minlength=num_exits) / n
    accuracy = correct[taken, np.arange(n)].mean() * 100
    return dict(accuracy=float(accuracy), expected_flops=float(np.dot(shares, flops)), exit_shares=shares.tolist())


def confidence_and_correct(exit_scores: np.ndarray, labels: np.ndarray):
    """From softmax scores (N x k x C) and labels (N): confidences and correctness, both k x N."""
    exit_scores = np.asarray(exit_scores)
    if exit_scores.ndim != 3:
        raise ValueError(f'exit_scores must be N x num_exits x num_classes, got shape {exit_scores.shape}')
    conf = exit_scores.max(axis=2).T
    correct = (exit_scores.argmax(axis=2) == np.asarray(labels).reshape(-1, 1)).T
    return conf, correct


def budget_sweep(val_scores: np.ndarray, val_labels: np.ndarray, test_scores: np.ndarray, test_labels: np.ndarray,
                 flops: Sequence[float], qs: Optional[Sequence[float]] = None) -> List[Dict[str, object]]:
    """One point per q: thresholds fitted on the validation split, accuracy and expected FLOPs on the test set."""
    val_conf, val_correct = confidence_and_correct(val_scores, val_labels)
    test_conf, test_correct = confidence_and_correct(test_scores, test_labels)
    num_exits = val_conf.shape[0]
    rows = []
    for q in (DEFAULT_QS if qs is None else qs):
        thresholds = fit_thresholds(val_conf, exit_fractions(q, num_exits))
        val = evaluate_thresholds(val_conf, val_correct, thresholds, flops)
        test = evaluate_thresholds(test_conf, test_correct, thresholds, flops)
        rows.append(dict(q=float(q), thresholds=thresholds.tolist(), val_accuracy=val['accuracy'], **test))
    return rows
