"""ODN end to end on generated digits: warm-up, expansion, fine-tuning, resume, extraction (spec odn.md).

Real mmengine runs of configs/odn/odn_resnet18_synthetic.py, shrunk (8-channel ResNet-18, 16x16 digits, short
patience) so that the whole procedure takes seconds on 2 CPU cores.
"""
import json
import os.path as osp
import re
from glob import glob

import pytest
from mmengine.config import Config

from mmadn.odn import DepthExpansion, make_digits_folder
from mmadn.utils import safe_torch_load

from ._cli import run_tool
from ._odn_runs import BASE_LR, data_settings, run_training, tiny_settings

CONFIG = 'configs/odn/odn_resnet18_synthetic.py'
SETTINGS = tiny_settings(warmup_epochs=2, target=30.0, patience=2, lr_patience=1, min_delta=5.0, max_epochs=25)


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    return make_digits_folder(str(tmp_path_factory.mktemp('digits')), train_per_class=40, val_per_class=10, size=16,
                              distractors=0)


def train(work_dir, data_root, **overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({**SETTINGS, **data_settings(data_root), **overrides})
    run_training(cfg, work_dir)
    with open(osp.join(work_dir, 'odn_result.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def run(tmp_path_factory, digits):
    work_dir = tmp_path_factory.mktemp('odn_run')
    return work_dir, train(work_dir, digits)


def test_procedure_picks_a_depth_by_the_rule_and_keeps_its_best_checkpoint(run):
    work_dir, result = run
    assert result['finished'] and 1 <= result['depth'] <= 8
    history = result['history']
    actions = [h['action'] for h in history]
    assert actions[:2] == ['warmup', 'start'] and actions[-1] == 'stop'
    # every decision the loop applied is the rule's decision for the accuracies it measured
    rule = DepthExpansion(8, target=30.0, warmup_epochs=2, patience=2, lr_patience=1, min_delta=5.0)
    assert [rule.step(h['accuracy']).as_dict() for h in history] == history
    at_depth = [h for h in history if h['level'] == result['depth'] and h['phase'] != 'warmup']
    # the best is the last epoch that improved by more than min_delta (5 here), not necessarily the maximum
    best = [h['accuracy'] for h in at_depth if h['improved']][-1]
    assert result['accuracy'] == best == result['best_per_depth'][str(result['depth'])]
    assert max(h['accuracy'] for h in at_depth) <= best + SETTINGS['train_cfg.min_delta']
    assert result['best_checkpoint'] == osp.join(work_dir, f'best_depth{result["depth"]}.pth')
    assert sorted(osp.basename(p) for p in glob(osp.join(work_dir, 'best_depth*.pth'))) == [
        f'best_depth{result["depth"]}.pth'
    ]
    meta = safe_torch_load(result['best_checkpoint'], map_location='cpu')['meta']['odn']
    assert (meta['level'], meta['accuracy']) == (result['depth'], result['accuracy'])


def test_learning_rate_follows_the_decisions(run):
    """After the warm-up each epoch trains at base LR x the scale decided at the end of the previous epoch."""
    work_dir, result = run
    scalars = glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[0]
    with open(scalars) as f:
        records = [json.loads(line) for line in f]
    lrs = {r['epoch']: r['lr'] for r in records if 'lr' in r}
    history = result['history']
    # cosine over the 2 warm-up epochs, stepped per epoch as the notebooks: x1, then x0.5
    assert (lrs[1], lrs[2]) == (pytest.approx(BASE_LR), pytest.approx(BASE_LR * 0.5))
    for epoch in range(3, len(history) + 1):
        assert lrs[epoch] == pytest.approx(BASE_LR * history[epoch - 2]['lr_scale']), epoch
    logged = [json.loads(line) for line in open(scalars) if '"odn/depth"' in line]
    assert [r['odn/depth'] for r in logged] == [h['level'] for h in history]


def test_resumed_run_ends_exactly_as_the_uninterrupted_one(tmp_path, digits, run):
    _, uninterrupted = run
    stopped = train(tmp_path, digits, **{'train_cfg.max_epochs': 6})  # interrupted after epoch 6
    assert not stopped['finished'] and len(stopped['history']) == 6
    resumed = train(tmp_path, digits, resume=True)
    assert resumed['history'] == uninterrupted['history']
    assert (resumed['depth'], resumed['accuracy']) == (uninterrupted['depth'], uninterrupted['accuracy'])


def test_extracted_model_reproduces_the_accuracy_at_the_chosen_depth(tmp_path, digits, run):
    _, result = run
    depth = result['depth']
    data = [f'{k}={v}' for k, v in data_settings(digits).items()]
    settings = [f'{k}={v}' for k, v in SETTINGS.items()]
    _, out = run_tool('tools/odn/extract_subnet.py', CONFIG, result['best_checkpoint'], '--out-dir', tmp_path,
                      '--shape', 16, 16, '--cfg-options', *settings, *data)
    assert f'depth {depth} of 8' in out and 'predictions equal the full model' in out
    report = json.load(open(tmp_path / f'odn_resnet18_synthetic_depth{depth}.json'))
    assert report['extracted']['params'] < report['full_network']['params']
    assert report['reduction_percent']['params'] > 0 and report['max_logit_difference'] <= 1e-5

    name = tmp_path / f'odn_resnet18_synthetic_depth{depth}'
    _, out = run_tool('tools/test.py', f'{name}.py', f'{name}.pth', '--work-dir', tmp_path / 'test')
    measured = float(re.findall(r'accuracy/top1: ([\d.]+)', out)[-1])
    assert measured == pytest.approx(result['accuracy'], abs=1e-3)


@pytest.mark.parametrize('overrides, error, message', [
    ({'param_scheduler.end': 5, 'param_scheduler.T_max': 5}, ValueError, 'after the warm-up'),
    ({'train_cfg.target': None}, ValueError, 'set train_cfg.target'),
])
def test_a_misconfigured_run_stops_before_training_and_says_how_to_fix_it(tmp_path, digits, overrides, error,
                                                                         message):
    with pytest.raises(error, match=message):
        train(tmp_path, digits, **overrides)
