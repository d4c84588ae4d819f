"""Issue 15: choosing a sub-network for a budget from a measured table, and switching depth under a deadline;
issue 31 (items 6, 7): one exit code for "nothing fits" in every tool, memory budgets on weights + activations."""
import json

import pytest

from mmadn.deploy import Budget, DeadlineController, load_table, select_subnet
from mmadn.deploy.selection import NO_SUBNET_FITS, add_budget_arguments, exit_code, latency_percentile
from mmadn.models import ResNetADN

from ._cli import run_main, run_tool

SELECT_TOOL = 'tools/deployment/select_subnet.py'

# quality, median latency, timed runs, GFLOPs, memory (weights + peak activations): TTFF beats FFTT at the same
# cost; TTTT is cheapest
ROWS = [
    dict(skip='FFFF', top1=90.0, latency_ms=50.0, latency_p90_ms=55.0, latency_samples_ms=[48, 50, 50, 52, 60],
         gflops=4.0, memory_mib=300.0),
    dict(skip='TTFF', top1=89.0, latency_ms=42.0, latency_p90_ms=44.0, latency_samples_ms=[41, 42, 42, 43, 47],
         gflops=3.5, memory_mib=280.0),
    dict(skip='FFTT', top1=88.0, latency_ms=42.0, latency_p90_ms=45.0, latency_samples_ms=[41, 42, 42, 44, 46],
         gflops=3.5, memory_mib=280.0),
    dict(skip='TTTT', top1=86.0, latency_ms=35.0, latency_p90_ms=37.0, latency_samples_ms=[34, 35, 35, 36, 39],
         gflops=2.6, memory_mib=250.0),
]
TABLE = dict(title='hand-made', quality_key='top1', subnets=ROWS)


@pytest.mark.parametrize('text, metric, limit', [
    ('latency=40ms', 'latency', 40.0), ('latency=0.04s', 'latency', 40.0), ('flops=20G', 'flops', 20.0),
    ('flops=500M', 'flops', 0.5), ('memory=300MiB', 'memory', 300.0), ('memory=1GiB', 'memory', 1024.0),
    ('memory=300MB', 'memory', 300e6 / 2**20), ('Latency = 40', 'latency', 40.0)])
def test_budget_parsing(text, metric, limit):
    budget = Budget.parse(text)
    assert budget.metric == metric and budget.limit == pytest.approx(limit)


@pytest.mark.parametrize('text, says', [('speed=40ms', "unknown metric 'speed'"), ('latency=40kg', "unit 'kg'"),
                                        ('latency', 'write METRIC=VALUE'), ('flops=0G', 'must be positive')])
def test_budget_errors_say_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        Budget.parse(text)


def test_best_quality_under_each_budget():
    assert select_subnet(TABLE, 'latency=60ms').skip == 'FFFF'
    chosen = select_subnet(TABLE, 'latency=45ms')
    assert chosen.skip == 'TTFF' and chosen.quality == 89.0 and chosen.margin == pytest.approx(3.0)
    assert chosen.fitting == ['TTFF', 'FFTT', 'TTTT']
    assert select_subnet(TABLE, 'flops=3G').skip == 'TTTT'
    assert select_subnet(TABLE, 'memory=290MiB').skip == 'TTFF'


def test_a_percentile_holds_the_tail_of_the_timed_runs():
    # median 50 ms fits 52 ms, but the 90th percentile of FFFF's runs (nearest rank: 60) does not
    assert select_subnet(TABLE, 'latency=52ms').skip == 'FFFF'
    assert select_subnet(TABLE, 'latency=52ms', percentile=90).skip == 'TTFF'
    assert latency_percentile([48, 50, 50, 52, 60], 90) == 60 and latency_percentile([3, 1, 2], 0) == 1
    without_runs = [{k: v for k, v in r.items() if k != 'latency_samples_ms'} for r in ROWS]
    assert select_subnet(without_runs, 'latency=52ms', 90, 'top1').skip == 'TTFF'  # latency_p90_ms
    with pytest.raises(KeyError, match='no timed runs'):
        select_subnet(without_runs, 'latency=52ms', 99, 'top1')


def test_nothing_fits_says_what_the_cheapest_needs():
    selection = select_subnet(TABLE, 'latency=30ms')
    assert not selection.fits and selection.skip is None
    assert selection.margin == pytest.approx(-5.0)
    assert 'no sub-network fits latency <= 30 ms: the cheapest, TTTT, needs 35 ms' in selection.summary()


@pytest.mark.slow
def test_select_tool_reads_a_saved_table(tmp_path, capsys):
    path = tmp_path / 'subnets.json'
    path.write_text(json.dumps(TABLE))
    _, out = run_tool(SELECT_TOOL, path, '--budget', 'latency=45ms')  # as a user runs it; the rest in-process
    assert 'TTFF for latency <= 45 ms: top1 89' in out
    assert json.load(open(tmp_path / 'selection.json'))['skip'] == 'TTFF'
    code, out = run_main(capsys, SELECT_TOOL, path, '--budget', 'latency=10ms')
    assert code == NO_SUBNET_FITS and 'no sub-network fits' in out
    code, out = run_main(capsys, SELECT_TOOL, path, '--budget', 'latency=45kg')
    assert code == 2 and "unit 'kg'" in out
    code, out = run_main(capsys, SELECT_TOOL, tmp_path / 'none.json', '--budget', 'flops=1G')
    assert code == 2 and 'run tools/analysis_tools/benchmark_subnets.py' in out
    assert load_table(str(path))['quality_key'] == 'top1'


@pytest.mark.slow
def test_nothing_fits_has_one_exit_code_of_its_own(tmp_path):
    """Issue 31, item 6: benchmark_subnets.py exited 0 and select_subnet.py 1 (also any crash's code) when nothing
    fit; every tool that takes a budget now exits with NO_SUBNET_FITS, distinct from a crash and a usage error."""
    assert NO_SUBNET_FITS not in (0, 1, 2)
    fits, unfit = select_subnet(TABLE, 'latency=45ms'), select_subnet(TABLE, 'memory=1KiB')
    assert fits.exit_code == 0 and unfit.exit_code == NO_SUBNET_FITS
    assert exit_code([fits, fits]) == 0 and exit_code([fits, unfit]) == NO_SUBNET_FITS and exit_code([]) == 0
    path = tmp_path / 'subnets.json'
    path.write_text(json.dumps(TABLE))
    code, out = run_tool(SELECT_TOOL, path, '--budget', 'memory=100MB', check=False)  # a chained script sees it
    assert code == NO_SUBNET_FITS and 'no sub-network fits memory <= 95.37 MiB: the cheapest, TTTT, needs 250' in out
    assert json.load(open(tmp_path / 'selection.json'))['fits'] is False


def test_memory_budgets_hold_weights_and_activations_and_old_tables_are_named():
    """Issue 31, item 7: --budget memory= selects on memory_mib (weights run + peak activations); a table from
    before it, with only the activations' peak_mem_mib, is refused with what to do instead of a silent choice."""
    import argparse
    parser = argparse.ArgumentParser()
    add_budget_arguments(parser)
    assert 'weights the sub-network runs plus its peak of live activations' in ' '.join(parser.format_help().split())
    assert [select_subnet(TABLE, f'memory={m}MiB').skip for m in (300, 299, 250)] == ['FFFF', 'TTFF', 'TTTT']
    old = [{**{k: v for k, v in r.items() if k != 'memory_mib'}, 'peak_mem_mib': 3.418} for r in ROWS]
    with pytest.raises(KeyError, match='activations only, not the weights.*re-run benchmark_subnets.py'):
        select_subnet(old, 'memory=3.5MB', None, 'top1')


def test_controller_switches_depth_for_each_deadline_and_learns_the_machine():
    model = ResNetADN(18)
    controller = DeadlineController(model, TABLE, percentile=90, headroom=1.0, window=5)
    # before any call the factor is the table's own: p90 (nearest rank) of its 20 runs / their row's median
    assert controller.correction == pytest.approx(39 / 35)
    assert controller.choose(100) == 'FFFF' and controller.choose(50) == 'TTFF'  # 50 x 1.114 = 55.7, 46.8 fit
    assert controller.choose(20) == 'TTTT'  # nothing fits: the cheapest
    calls = []
    controller(lambda: calls.append(model.skip), deadline_ms=50)
    assert calls == ['TTFF'] and controller.records[-1].skip == 'TTFF'
    # this machine turns out 1.5x slower than the table: the window forgets the table, the plan gets cheaper
    for _ in range(5):
        controller.observe('TTFF', 1.5 * 42)
    assert controller.correction == pytest.approx(1.5)
    assert controller.choose(60) == 'TTTT'  # 1.5 x 42 = 63 would miss; 1.5 x 35 = 52.5 fits
    assert controller.choose(100) == 'FFFF'


def test_controller_plans_on_the_tail_of_recent_calls():
    """One call in ten twice as slow (an image with many objects): at p99 the plan leaves room for it."""
    careful = DeadlineController(ResNetADN(18), TABLE, percentile=99, headroom=1.0, window=10)
    typical = DeadlineController(ResNetADN(18), TABLE, percentile=50, headroom=1.0, window=10)
    frozen = DeadlineController(ResNetADN(18), TABLE, percentile=99, headroom=1.0, window=0)
    for controller in (careful, typical, frozen):
        for i in range(10):
            controller.observe('FFFF', 100.0 if i == 3 else 50.0)
    assert careful.correction == 2.0 and typical.correction == 1.0
    assert frozen.correction == pytest.approx(60 / 50)  # the table's worst run, never updated
    assert careful.choose(90) == 'TTFF' and typical.choose(90) == 'FFFF'


def test_controller_refuses_bad_settings():
    with pytest.raises(ValueError, match='headroom'):
        DeadlineController(ResNetADN(18), TABLE, headroom=1.5)
    with pytest.raises(ValueError, match='window'):
        DeadlineController(ResNetADN(18), TABLE, window=-1)
    with pytest.raises(KeyError, match="no 'top5'"):
        DeadlineController(ResNetADN(18), TABLE, quality_key='top5')
