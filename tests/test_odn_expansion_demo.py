"""ODN's expansion demo (issue 17) and how a new depth starts (issue 18, item 6), on tiny real runs.

- the dotted-lines generator draws what it says (orientation, spacing, inside the image), reproducibly;
- ``restart_from_warmup=True`` starts every new depth from the warm-up weights, ``False`` from the weights the
  previous depth ended with (both with a fresh optimizer at the base learning rate), checked on the weights the
  loop actually trains from;
- ``tools/odn/plot_expansion.py`` turns the decision logs into the picture, the per-depth summary and the table.
"""
import json
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmadn.odn.dotted_lines import class_name, draw_dotted_line, make_dotted_lines_folder, orientations
from mmadn.odn.report import expansion_summary, load_result

from ._cli import run_tool
from ._odn_runs import BASE_LR, data_settings, run_training, tiny_settings

CONFIG = 'configs/odn/odn_resnet18_dotted-lines.py'
# 3 depth levels, 1 warm-up epoch; min_delta 100 makes every epoch after a depth's first stale and the target
# is out of reach, so with patience 1 the run is: warm-up, depth 1 (2 epochs) -> 2 (2) -> 3 (2, full depth) -> stop
SETTINGS = {
    'model.backbone.num_levels': 3,
    **tiny_settings(warmup_epochs=1, target=101.0, patience=1, lr_patience=5, min_delta=100.0, max_epochs=20)
}
DEPTH_STARTS = (4, 6)  # first epochs of depths 2 and 3


def test_dotted_lines_are_drawn_at_the_class_orientation_and_spacing():
    rng = np.random.default_rng(0)
    assert orientations(4) == (0, 45, 90, 135) and class_name(45) == '045deg'
    for angle in orientations(4):
        for _ in range(50):
            img, centres = draw_dotted_line(rng, angle, size=32, spacing=(7, 12), dots=(2, 3), jitter=8.0)
            assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and 2 <= len(centres) <= 3
            for (x0, y0), (x1, y1) in zip(centres, centres[1:]):
                dx, dy = x1 - x0, y0 - y1  # y up
                # rounding to pixels moves each end by <= 0.71 px
                assert 7 - 1.5 <= math.hypot(dx, dy) <= 12 + 1.5
                measured = math.degrees(math.atan2(dy, dx)) % 180
                error = min(abs(measured - angle), 180 - abs(measured - angle))
                assert error <= 8.0 + math.degrees(math.asin(1.5 / 5.5)), (angle, centres)
            for x, y in centres:
                assert 2 <= x <= 29 and 2 <= y <= 29
                assert img[y, x].mean() > 120  # a light dot on the dark background


def test_dotted_lines_folder_is_reproducible_and_refuses_bad_settings(tmp_path):
    a = make_dotted_lines_folder(str(tmp_path / 'a'), train_per_class=3, val_per_class=2, num_classes=6, seed=3)
    b = make_dotted_lines_folder(str(tmp_path / 'b'), train_per_class=3, val_per_class=2, num_classes=6, seed=3)
    names = sorted(osp.relpath(p, a) for p in map(str, (tmp_path / 'a').rglob('*.png')))
    assert len(names) == 6 * 5 and names[0] == 'train/000deg/00000.png' and 'val/150deg/00001.png' in names
    for name in names:
        assert np.array_equal(cv2.imread(osp.join(a, name)), cv2.imread(osp.join(b, name)))
    with pytest.raises(ValueError, match='divide 180'):
        make_dotted_lines_folder(str(tmp_path / 'c'), num_classes=7)
    with pytest.raises(ValueError, match='does not fit'):
        draw_dotted_line(np.random.default_rng(0), 0, size=16, spacing=(14, 14), dots=(2, 2))


class WeightRecorder(Hook):
    """The weights, optimizer state and learning rate each epoch starts from, and the weights it ends with."""

    def __init__(self):
        self.before, self.after, self.optimizer_state, self.lr, self.level = {}, {}, {}, {}, {}

    @staticmethod
    def _weights(runner):
        return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}

    def before_train_epoch(self, runner):
        epoch = runner.epoch + 1
        self.before[epoch] = self._weights(runner)
        self.optimizer_state[epoch] = len(runner.optim_wrapper.optimizer.state)
        self.lr[epoch] = runner.optim_wrapper.param_groups[0]['lr']
        self.level[epoch] = runner.model.level

    def after_train_epoch(self, runner):
        self.after[runner.epoch + 1] = self._weights(runner)


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope='module')
def lines(tmp_path_factory):
    return make_dotted_lines_folder(str(tmp_path_factory.mktemp('lines')), train_per_class=12, val_per_class=5,
                                    size=16, spacing=(3, 6))


def train(work_dir, data_root, restart):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({**SETTINGS, 'train_cfg.restart_from_warmup': restart, **data_settings(data_root)})
    recorder = WeightRecorder()
    run_training(cfg, work_dir, recorder)
    return recorder, load_result(str(work_dir))


@pytest.fixture(scope='module')
def runs(tmp_path_factory, lines):
    out = {}
    for mode in ('restart', 'continue'):
        work_dir = tmp_path_factory.mktemp(mode)
        out[mode] = (work_dir, *train(work_dir, lines, restart=mode == 'restart'))
    return out


def test_both_runs_deepen_twice_and_stop_by_the_rule(runs):
    for _, recorder, result in runs.values():
        assert result['finished'] and result['depth'] == 3 and result['epochs'] == 7
        assert [h['action'] for h in result['history']] == [
            'start', 'continue', 'expand', 'continue', 'expand', 'continue', 'stop'
        ]
        assert [recorder.level[e] for e in range(1, 8)] == [3, 1, 1, 2, 2, 3, 3]
        assert len(result['elapsed_s']) == 7 and result['elapsed_s'] == sorted(result['elapsed_s'])


def test_restart_mode_starts_every_new_depth_from_the_warmup_weights(runs):
    work_dir, recorder, result = runs['restart']
    assert result['restart_from_warmup'] is True
    warmup = recorder.after[1]
    for start in DEPTH_STARTS:
        assert same(recorder.before[start], warmup), start
        assert not same(recorder.before[start], recorder.after[start - 1]), start  # training had moved them
    assert osp.isfile(osp.join(work_dir, 'odn_warmup.pth'))


def test_continue_mode_starts_every_new_depth_from_where_the_previous_one_ended(runs):
    work_dir, recorder, result = runs['continue']
    assert result['restart_from_warmup'] is False
    for start in DEPTH_STARTS:
        assert same(recorder.before[start], recorder.after[start - 1]), start
        assert not same(recorder.before[start], recorder.after[1]), start
    assert not osp.isfile(osp.join(work_dir, 'odn_warmup.pth'))  # nothing to go back to


def test_the_default_restarts_from_the_warmup_weights_as_the_public_code():
    import inspect

    from mmadn.odn import ODNTrainLoop
    assert inspect.signature(ODNTrainLoop).parameters['restart_from_warmup'].default is True
    for config in (CONFIG, 'configs/odn/odn_resnet18_1xb128_mnist.py'):
        assert Config.fromfile(config).train_cfg.restart_from_warmup is True


def test_every_new_depth_gets_a_fresh_optimizer_at_the_base_rate(runs):
    for _, recorder, _ in runs.values():
        for start in (2, ) + DEPTH_STARTS:
            assert recorder.optimizer_state[start] == 0, start
            assert recorder.lr[start] == pytest.approx(BASE_LR), start
        assert recorder.optimizer_state[7] > 0  # momentum buffers again after one epoch


@pytest.mark.slow
def test_plot_tool_draws_and_summarises_the_decision_logs(tmp_path, runs):
    out = tmp_path / 'figs' / 'expansion.png'
    _, printed = run_tool('tools/odn/plot_expansion.py', runs['restart'][0], runs['continue'][0], '--labels',
                          'restart', 'continue', '--out', out)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 800
    assert image.std() > 10  # something was drawn
    summaries = json.load(open(tmp_path / 'figs' / 'expansion.json'))
    assert list(summaries) == ['restart', 'continue']
    for name, s in summaries.items():
        _, _, result = runs[name]
        assert s == json.loads(json.dumps(expansion_summary(result)))
        assert [d['depth'] for d in s['depths']] == [1, 2, 3]
        assert [(d['end'], d['end_epoch'], d['epochs']) for d in s['depths']] == [('expand', 3, 2), ('expand', 5, 2),
                                                                                   ('stop', 7, 2)]
        assert [d['best'] for d in s['depths']] == [result['best_per_depth'][k] for k in ('1', '2', '3')]
        assert s['deepened'] == 2 and s['target_reached_epoch'] is None and s['warmup_epochs'] == 1
        assert s['patience'] == 1 and s['restart_from_warmup'] == (name == 'restart')
        assert s['total_s'] == result['elapsed_s'][-1]
    table = open(tmp_path / 'figs' / 'expansion.md').read()
    assert table in printed and '| restart | 3 of 3 |' in table and '| continue | 3 of 3 |' in table


@pytest.mark.slow
def test_plot_tool_says_what_it_needs(tmp_path):
    code, out = run_tool('tools/odn/plot_expansion.py', tmp_path, '--out', tmp_path / 'x.png', check=False)
    assert code != 0 and 'odn_result.json' in out and 'give the work dir of an ODN run' in out
