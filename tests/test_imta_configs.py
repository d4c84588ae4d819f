"""The IMTA configs build the papers' networks and schedules (spec imta.md): the CIFAR network of the IMTA paper's
Table 1 with its per-exit FLOPs, the paper's exit counts, the phase-II schedule and Nesterov momentum."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mmadn.imta import exit_costs
from tests._cli import ROOT

CONFIGS = osp.join(ROOT, 'configs', 'imta')
# IMTA paper, Table 1 (CIFAR-100, 7 exits, linear growth, step 1, base 1), MSDNet's counter
PAPER_TABLE1_MFLOPS = [6.86, 14.35, 27.29, 48.45, 76.43, 108.85, 137.28]
PAPER_TABLE1_MPARAMS = [0.30, 0.65, 1.11, 1.73, 2.38, 3.05, 3.97]

# config -> (classes, exits, total MSDN layers): CIFAR-100 budgeted {4, 5, 6, 8} exits = depths 10, 15, 21, 36,
# Table 1's 7 exits (28 layers); CIFAR-10 {6, 8}
CIFAR = {
    'msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py': (100, 7, 28),
    'imta_anytime-7exits_1xb64-180e_cifar100.py': (100, 7, 28),
    **{f'{p}_budgeted-{k}exits_1xb64-{e}e_cifar100.py': (100, k, k * (k + 1) // 2)
       for k in (4, 5, 6, 8) for p, e in (('msdnet-ge', 300), ('imta', 180))},
    **{f'{p}_budgeted-{k}exits_1xb64-{e}e_cifar10.py': (10, k, k * (k + 1) // 2)
       for k in (6, 8) for p, e in (('msdnet-ge', 300), ('imta', 180))},
}


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model).eval()


def test_every_cifar_config_of_the_papers_is_here():
    present = {osp.basename(p) for p in glob.glob(osp.join(CONFIGS, '*cifar*.py'))}
    assert present == set(CIFAR)


@pytest.mark.parametrize('name', sorted(CIFAR))
def test_cifar_config_builds_the_imta_papers_network(name):
    classes, exits, depth = CIFAR[name]
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    model = build(cfg)
    backbone = model.backbone
    assert backbone.steps == list(range(1, exits + 1)), backbone.steps  # linear growth, step 1, base 1
    assert sum(backbone.steps) == depth
    assert len(model.head.exits) == exits and model.head.num_classes == classes
    assert backbone.gradient_equilibrium and backbone.ge_scope == 'coarsest'


def test_anytime_config_matches_the_papers_table1_per_exit():
    model = build(Config.fromfile(osp.join(CONFIGS, 'msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py')))
    flops, params = exit_costs(model, (3, 32, 32), convention='msdnet')
    for measured, paper in zip([f / 1e6 for f in flops], PAPER_TABLE1_MFLOPS, strict=True):
        assert abs(measured - paper) / paper < 0.001, (flops, PAPER_TABLE1_MFLOPS)
    for measured, paper in zip([p / 1e6 for p in params], PAPER_TABLE1_MPARAMS, strict=True):
        assert abs(measured - paper) < 0.006, (params, PAPER_TABLE1_MPARAMS)


def _schedule(cfg):
    opt, sched = cfg.optim_wrapper.optimizer, cfg.param_scheduler
    return (opt.type, opt.lr, opt.momentum, opt.get('nesterov', False), opt.weight_decay, cfg.train_cfg.max_epochs,
            list(sched.milestones), sched.gamma)


@pytest.mark.parametrize('name', sorted(CIFAR))
def test_cifar_schedules_phase1_300_epochs_phase2_180_nesterov_in_both(name):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    if name.startswith('imta_'):  # phase II: 180 epochs, lr / 10 at 90 and 135, from the phase-I checkpoint
        assert _schedule(cfg) == ('SGD', 0.1, 0.9, True, 1e-4, 180, [90, 135], 0.1)
        assert cfg.model.backbone.frozen and cfg.model.head.frozen_pre_logits
        assert cfg.model.head.ofa == dict(gamma=0.9, temperature=3.0, teacher='phase1', kl_reduction='mean')
        phase1 = name.replace('imta_', 'msdnet-ge_').replace('-180e_', '-300e_')[:-3]
        assert cfg.load_from == f'work_dirs/{phase1}/epoch_300.pth'
    else:  # phase I: 300 epochs, lr / 10 at 50 % and 75 %
        assert _schedule(cfg) == ('SGD', 0.1, 0.9, True, 1e-4, 300, [150, 225], 0.1)
        assert cfg.model.head.get('ofa') is None and cfg.model.head.get('isc') is None


def test_imagenet_schedules_and_ofa_defaults():
    phase1 = Config.fromfile(osp.join(CONFIGS, 'msdnet-ge_step4-5exits_4xb64-90e_in1k.py'))
    phase2 = Config.fromfile(osp.join(CONFIGS, 'imta_step4-5exits_4xb64-90e_in1k.py'))
    for cfg in (phase1, phase2):
        assert _schedule(cfg) == ('SGD', 0.1, 0.9, True, 1e-4, 90, [30, 60], 0.1)
    assert phase2.model.head.ofa == dict(gamma=0.1, temperature=1.0, teacher='phase1', kl_reduction='mean')
    assert phase2.load_from == 'work_dirs/msdnet-ge_step4-5exits_4xb64-90e_in1k/epoch_90.pth'
