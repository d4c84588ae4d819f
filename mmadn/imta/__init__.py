"""IMTA: multi-exit MSDNet with gradient equilibrium, ISC and OFA distillation (spec: imta.md).

Importing registers ``MSDNet``, ``MultiExitClsHead`` and ``MultiExitClassifier`` (mmdet and mmpretrain model
registries), the ``AnytimeAccuracy`` metric and the ``HoldoutSplit`` dataset wrapper (mmpretrain).
Budgeted inference: simulated from all exits' scores (``budgeted``), or with real early exit (``early_exit``).
"""
from .budgeted import (budget_sweep, confidence_and_correct, evaluate_thresholds, exit_fractions, exit_taken,
                       fit_thresholds)
from .classifier import MultiExitClassifier
from .complexity import exit_costs
from .datasets import HoldoutSplit
from .early_exit import all_exit_scores, early_exit_predict
from .gradient_equilibrium import ge_factors, scale_gradient
from .metrics import AnytimeAccuracy, exit_accuracies
from .msdnet import MSDNet
from .multi_exit_head import MultiExitClsHead, phase1_to_phase2
from .one_for_all import one_for_all_losses

__all__ = [
    'MSDNet', 'MultiExitClsHead', 'MultiExitClassifier', 'AnytimeAccuracy', 'HoldoutSplit', 'scale_gradient',
    'ge_factors', 'one_for_all_losses', 'phase1_to_phase2', 'exit_costs', 'exit_accuracies',
    'exit_fractions', 'fit_thresholds', 'exit_taken', 'evaluate_thresholds', 'confidence_and_correct', 'budget_sweep',
    'early_exit_predict', 'all_exit_scores'
]
