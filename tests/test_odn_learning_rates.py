"""ODN's learning rates as the authors ran them (issue 35): every config, the rate each epoch trains at.

The notebooks (saktx/Optimally_Deep_Networks) call ``warm_up(model, warm_up_epochs, learning_rate, ...)`` with a
``CosineAnnealingLR(optimizer, epochs)`` stepped once per epoch, then ``train_till_convergence(..., learning_rate)``
with a new rate, and restart every later depth with ``SGD(lr=learning_rate / 2)`` (CIFAR-10: ``learning_rate``):

| notebook | warm_up_epochs | warm-up rate | depth 1 | later depths |
|---|---|---|---|---|
| MNIST, Fashion-MNIST | 3 | 0.001 | 0.01 | 0.005 |
| SVHN | 3 | 0.01 | 0.1 | 0.05 |
| CIFAR-10 | 0 | - | 0.01 | 0.01 |

Each config is run for real (its optimizer, scheduler and ODNTrainLoop, on a few generated images with a 3-level
network): a hook reads the rate every epoch trains at.
"""
import math

import pytest
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS, PARAM_SCHEDULERS

from mmadn.datasets.synthetic_digits import make_digits_folder
from mmadn.odn import DepthExpansion, ODNTrainLoop

from ._odn_runs import run_training

# the optimizer is not stepped when only the schedule's rates are read
pytestmark = pytest.mark.filterwarnings('ignore:Detected call of `scheduler.step\\(\\)` before')

# config -> (warm-up epochs, warm-up rate, depth 1's rate, later depths' rate)
NOTEBOOKS = {
    'configs/odn/odn_resnet18_1xb128_mnist.py': (3, 0.001, 0.01, 0.005),
    'configs/odn/odn_resnet34_1xb128_fashion-mnist.py': (3, 0.001, 0.01, 0.005),
    'configs/odn/odn_resnet34_1xb128_svhn.py': (3, 0.01, 0.1, 0.05),
    'configs/odn/odn_resnet50_1xb128_cifar10.py': (0, None, 0.01, 0.01),
}
# the generated sets no notebook trained on keep one rate (docs/odn.md, "Defaults")
TOY = {
    'configs/odn/odn_resnet18_synthetic.py': (3, 0.05, 0.05, 0.05),
    'configs/odn/odn_resnet18_dotted-lines.py': (3, 0.05, 0.05, 0.05),
}
COSINE = (1.0, 0.75, 0.25)  # torch's CosineAnnealingLR(T_max=3) after 0, 1, 2 epoch steps


def warmup_rates(cfg, epochs):
    """The optimizer and scheduler built from the config, stepped once per epoch as ParamSchedulerHook does."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        configs = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
        schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in configs]
    rates = []
    for _ in range(epochs):
        rates.append(wrapper.param_groups[0]['lr'])
        for scheduler in schedulers:
            assert scheduler.by_epoch
            scheduler.step()
    return rates


@pytest.mark.parametrize('path', sorted({**NOTEBOOKS, **TOY}))
def test_config_sets_the_warmup_and_expansion_rates(path):
    warmup_epochs, warmup_lr, depth1_lr, later_lr = {**NOTEBOOKS, **TOY}[path]
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.warmup_epochs == warmup_epochs
    if warmup_epochs:
        # stepped per epoch, not per iteration: x1, x0.75, x0.25 of the warm-up rate
        assert not cfg.param_scheduler.get('convert_to_iter_based', False)
        assert warmup_rates(cfg, warmup_epochs) == pytest.approx([warmup_lr * c for c in COSINE])
    else:
        assert cfg.param_scheduler == []  # nothing to schedule: the loop sets depth 1's rate from the first epoch
    expansion_lr = cfg.train_cfg.expansion_lr or cfg.optim_wrapper.optimizer.lr
    assert expansion_lr == pytest.approx(depth1_lr)
    assert expansion_lr * cfg.train_cfg.deeper_lr_factor == pytest.approx(later_lr)


def test_per_iteration_cosine_would_warm_up_at_half_the_rate_on_average():
    """What convert_to_iter_based=True (the configs before issue 35) gave: x0.5 on average, against x0.67."""
    cfg = Config.fromfile('configs/odn/odn_resnet18_1xb128_mnist.py')
    iters = 391  # MNIST's 50k training images at batch 128
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        scheduler = PARAM_SCHEDULERS.get('CosineAnnealingLR').build_iter_from_epoch(
            wrapper, T_max=3, begin=0, end=3, epoch_length=iters)
    rates = []
    for _ in range(3 * iters):
        rates.append(wrapper.param_groups[0]['lr'] / 0.001)
        scheduler.step()
    assert sum(rates) / len(rates) == pytest.approx(0.5, abs=0.01)
    assert sum(COSINE) / 3 == pytest.approx(0.667, abs=0.001)


class RateRecorder(Hook):
    """The learning rate and depth level every epoch trains at."""

    def __init__(self):
        self.lr, self.level = [], []

    def before_train_epoch(self, runner):
        self.lr.append(runner.optim_wrapper.param_groups[0]['lr'])
        self.level.append(runner.model.level)


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    return make_digits_folder(str(tmp_path_factory.mktemp('digits')), train_per_class=3, val_per_class=2, size=16,
                              distractors=0)


def train(path, work_dir, data_root, param_scheduler=None, **overrides):
    cfg = Config.fromfile(path)
    if param_scheduler is not None:
        cfg.param_scheduler = param_scheduler
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    # the config's optimizer, scheduler and loop; a 3-level network and a few generated images instead of its data
    cfg.merge_from_dict({
        'model.backbone.num_levels': 3,
        'model.backbone.in_channels': 3,
        'model.backbone.base_channels': 4,
        'model.backbone.stem_channels': 4,
        'model.head.head.num_classes': 10,
        # min_delta 100: only a depth's first epoch improves; with patience 2 and lr_patience 1 every depth trains
        # 3 epochs: the new depth's rate, x0.6 (decay), then deepen (or stop at full depth)
        'train_cfg.target': 101.0,
        'train_cfg.patience': 2,
        'train_cfg.lr_patience': 1,
        'train_cfg.min_delta': 100.0,
        'train_cfg.max_epochs': 20,
        'default_hooks.logger.interval': 1,
        **overrides,
    })
    cfg.data_preprocessor = ConfigDict(num_classes=10, mean=[60.0] * 3, std=[60.0] * 3)
    for split in ('train', 'val'):
        cfg[f'{split}_dataloader'] = ConfigDict(
            batch_size=10,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=split == 'train'),
            dataset=dict(type='CustomDataset', data_root=data_root, data_prefix=split, pipeline=pipeline))
    cfg.val_evaluator = ConfigDict(type='Accuracy', topk=(1, ))
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    recorder = RateRecorder()
    runner = run_training(cfg, work_dir, recorder)
    return recorder, runner.train_loop.result()


@pytest.mark.slow
@pytest.mark.parametrize('path', sorted(NOTEBOOKS) + ['configs/odn/odn_resnet18_synthetic.py'])
def test_each_epoch_trains_at_the_notebooks_rate(path, tmp_path, digits):
    warmup_epochs, warmup_lr, depth1_lr, later_lr = {**NOTEBOOKS, **TOY}[path]
    recorder, result = train(path, tmp_path, digits)
    assert result['finished'] and result['depth'] == 3
    warmup = [warmup_lr * c for c in COSINE[:warmup_epochs]]
    # each depth: two epochs at its starting rate (the second is stale: decay), one at x0.6 (stale again: the next
    # depth, a fresh optimizer at its own rate, as the notebooks' SGD(lr=learning_rate / 2)); the full depth is
    # fine-tuned the same way, then the run stops
    expected = warmup + [depth1_lr, depth1_lr, depth1_lr * 0.6] + [later_lr, later_lr, later_lr * 0.6] * 2
    assert recorder.level == [3] * warmup_epochs + [1] * 3 + [2] * 3 + [3] * 3
    assert recorder.lr == pytest.approx(expected, rel=1e-9)
    assert result['settings']['deeper_lr_factor'] == pytest.approx(later_lr / depth1_lr)


def test_expansion_lr_keeps_the_ratio_of_parameter_groups_and_of_auto_scaled_rates(tmp_path, digits):
    # a head at 10x the backbone's rate, and --auto-scale-lr at batch 10 against 20 (x0.5)
    recorder, _ = train(
        'configs/odn/odn_resnet18_1xb128_mnist.py', tmp_path, digits, **{
            'optim_wrapper.paramwise_cfg': dict(custom_keys={'head': dict(lr_mult=10.0)}),
            'auto_scale_lr': dict(base_batch_size=20, enable=True),
            'train_cfg.max_epochs': 4,
        })
    # group 0 is the backbone's: warm-up 0.001 x0.5 (auto-scaled), depth 1 0.01 x0.5
    assert recorder.lr == pytest.approx([0.0005, 0.000375, 0.000125, 0.005])


def test_without_warmup_the_first_epoch_trains_depth_1_at_the_expansion_rate(tmp_path, digits):
    # the CIFAR-10 config with an optimizer lr that differs from expansion_lr: it is never used
    recorder, _ = train('configs/odn/odn_resnet50_1xb128_cifar10.py', tmp_path, digits,
                        **{'optim_wrapper.optimizer.lr': 0.5, 'train_cfg.max_epochs': 2})
    assert recorder.level == [1, 1] and recorder.lr == pytest.approx([0.01, 0.01])


def test_warmup_of_zero_epochs_needs_no_scheduler_and_says_so(tmp_path, digits):
    with pytest.raises(ValueError, match=r'warmup_epochs=0.*param_scheduler = \[\]'):
        train('configs/odn/odn_resnet50_1xb128_cifar10.py', tmp_path, digits,
              param_scheduler=dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, T_max=3))


@pytest.mark.parametrize('setting, value, message', [
    ('expansion_lr', 0, 'expansion_lr is the learning rate of depth 1'),
    ('expansion_lr', -0.1, 'expansion_lr is the learning rate of depth 1'),
    ('expansion_lr', math.inf, 'expansion_lr is the learning rate of depth 1'),
    ('expansion_lr', '0.01', 'expansion_lr is the learning rate of depth 1'),
    ('deeper_lr_factor', 0, 'deeper_lr_factor'),
    ('deeper_lr_factor', -0.5, 'deeper_lr_factor'),
    ('deeper_lr_factor', math.nan, 'deeper_lr_factor'),
    ('deeper_lr_factor', None, 'deeper_lr_factor'),
])
def test_bad_rates_are_refused_when_the_loop_is_built(setting, value, message):
    with pytest.raises(ValueError, match=message):
        ODNTrainLoop(runner=None, dataloader=None, target=99.5, **{setting: value})


def test_defaults_keep_one_rate_for_every_depth():
    """Backward compatible: without the new settings every new depth starts at the base rate, as before."""
    rule = DepthExpansion(3, target=101.0, warmup_epochs=1, patience=1, min_delta=100.0)
    scales = [rule.step(50.0).lr_scale for _ in range(7)]
    assert scales == [1.0] * 7
    rule = DepthExpansion(3, target=101.0, warmup_epochs=1, patience=1, min_delta=100.0, deeper_lr_factor=0.5)
    assert [(d.action, d.lr_scale) for d in (rule.step(50.0) for _ in range(7))] == [
        ('start', 1.0), ('continue', 1.0), ('expand', 0.5), ('continue', 0.5), ('expand', 0.5), ('continue', 0.5),
        ('stop', 0.5)
    ]
    state = rule.state_dict()
    assert state['lr_scale'] == 0.5
