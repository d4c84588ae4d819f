"""ODN's decision rule (spec odn.md, "Training" 1-3) driven by scripted validation accuracies."""
import pytest

from mmadn.odn import DepthExpansion


def drive(rule, script):
    """Feed (accuracy, expected action, expected next level, expected lr scale) rows; check every decision."""
    decisions = []
    for epoch, (accuracy, action, next_level, lr_scale) in enumerate(script, 1):
        d = rule.step(accuracy)
        assert (d.epoch, d.action, d.next_level) == (epoch, action, next_level), (epoch, d)
        assert d.lr_scale == pytest.approx(lr_scale), (epoch, d)
        decisions.append(d)
    return decisions


def test_warmup_expansion_decay_target_finetune_stop():
    # 4 levels, warm-up 2 epochs, patience 3, LR x0.6 after 2 epochs without improvement, target 90 - 0.5
    rule = DepthExpansion(4, target=90.0, tolerance=0.5, warmup_epochs=2, patience=3, lr_patience=2, lr_factor=0.6)
    assert (rule.phase, rule.level) == ('warmup', 4)  # warm-up trains and validates the full depth
    d = drive(rule, [
        (50.0, 'warmup', 4, 1.0),
        (60.0, 'start', 1, 1.0),      # warm-up over: expansion starts at depth 1
        (70.0, 'continue', 1, 1.0),   # first epoch of a depth is its first best
        (69.0, 'continue', 1, 1.0),   # 1 epoch without improvement
        (70.0, 'decay', 1, 0.6),      # equal is not better: 2 epochs -> LR x0.6
        (70.0, 'expand', 2, 1.0),     # 3 epochs (patience), best 70 < 89.5 -> deepen, base LR again
        (80.0, 'continue', 2, 1.0),
        (89.4, 'continue', 2, 1.0),   # just below target - tolerance
        (89.5, 'finetune', 2, 1.0),   # reaches target - tolerance: stop deepening, fine-tune depth 2
        (89.0, 'continue', 2, 1.0),
        (89.0, 'decay', 2, 0.6),      # the plateau rule still applies while fine-tuning
        (90.0, 'continue', 2, 0.6),   # an improvement resets both counters
        (85.0, 'continue', 2, 0.6),
        (85.0, 'decay', 2, 0.36),
        (85.0, 'stop', 2, 0.36),      # patience exhausted while fine-tuning: done, depth 2
    ])
    assert [x.phase for x in d[:2]] == ['warmup'] * 2 and d[1].next_phase == 'expand'
    assert [x.best for x in d[2:6]] == [70.0] * 4 and d[6].best == 80.0  # a new depth starts its own best
    assert [x.stale_epochs for x in d[2:6]] == [0, 1, 2, 3]
    assert d[8].next_phase == 'finetune' and d[-1].next_phase == 'done'
    assert rule.finished and rule.level == 2 and rule.best == {1: 70.0, 2: 90.0}
    with pytest.raises(RuntimeError, match='finished'):
        rule.step(99.0)


def test_full_depth_is_fine_tuned_until_patience_without_reaching_target():
    rule = DepthExpansion(3, target=99.0, warmup_epochs=0, patience=2, lr_patience=5)
    assert (rule.phase, rule.level) == ('expand', 1)  # no warm-up: start at depth 1
    d = drive(rule, [
        (50.0, 'continue', 1, 1.0),
        (40.0, 'continue', 1, 1.0),
        (40.0, 'expand', 2, 1.0),
        (60.0, 'continue', 2, 1.0),
        (55.0, 'continue', 2, 1.0),
        (55.0, 'expand', 3, 1.0),     # into the full depth: deepening stops there
        (70.0, 'continue', 3, 1.0),
        (65.0, 'continue', 3, 1.0),
        (65.0, 'stop', 3, 1.0),       # full depth, target never reached: fine-tuned until patience, stop
    ])
    assert d[5].next_phase == 'finetune'
    assert rule.level == 3 and rule.best == {1: 50.0, 2: 60.0, 3: 70.0}


def test_min_delta_and_target_reached_on_the_first_epoch_of_a_depth():
    rule = DepthExpansion(8, target=95.0, tolerance=1.0, warmup_epochs=1, patience=2, lr_patience=9, min_delta=0.5)
    drive(rule, [
        (10.0, 'start', 1, 1.0),
        (80.0, 'continue', 1, 1.0),
        (80.4, 'continue', 1, 1.0),   # +0.4 <= min_delta: not an improvement
        (80.5, 'expand', 2, 1.0),     # +0.5 is not more than min_delta either: patience 2 -> deepen
        (94.0, 'finetune', 2, 1.0),   # 94 >= 95 - 1 at once
    ])


def test_state_dict_resumes_with_identical_decisions():
    script = [55, 60, 61, 60, 59, 58, 70, 71, 71, 70, 72, 72, 72, 72]
    kwargs = dict(target=80.0, warmup_epochs=1, patience=3, lr_patience=2)
    reference = DepthExpansion(5, **kwargs)
    expected = [reference.step(a) for a in script]
    first = DepthExpansion(5, **kwargs)
    for a in script[:6]:
        first.step(a)
    resumed = DepthExpansion(5, **kwargs)
    resumed.load_state_dict(first.state_dict())
    assert [resumed.step(a) for a in script[6:]] == expected[6:]
    assert resumed.history == reference.history
    with pytest.raises(ValueError, match='for 5 depth levels'):
        DepthExpansion(8, **kwargs).load_state_dict(first.state_dict())


@pytest.mark.parametrize('kwargs, message', [
    (dict(target='high'), 'target must be the accuracy'),
    (dict(target=90, tolerance=-1), 'tolerance'),
    (dict(target=90, patience=0), 'patience'),
    (dict(target=90, lr_factor=1.5), 'lr_factor'),
    (dict(target=90, warmup_epochs=1.5), 'warmup_epochs'),
])
def test_bad_settings_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DepthExpansion(8, **kwargs)
