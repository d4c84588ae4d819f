"""Pick the sub-network to run under a budget from a measured table (``benchmark_subnets.py``'s subnets.json).

A budget is measured on the device that will run the model, so FLOPs alone do not decide: on a CPU the base-net
saves less time than FLOPs (the skippable blocks run at a lower GFLOP/s than the rest). The choice is the best
quality whose cost fits; ties go to the cheaper sub-network. A table saved once is enough: nothing is re-measured.

Every tool that takes a budget exits with :data:`NO_SUBNET_FITS` when no measured sub-network fits it (after
writing what it makes), so a script that chains on the exit code stops there.
"""
import json
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

#: Exit code of every tool whose budget no measured sub-network fits (``benchmark_subnets.py --budget``,
#: ``select_subnet.py``, ``deadline_demo.py``). Not 1, which Python exits with on any uncaught error, nor 2,
#: argparse's code for a bad command line: a script can tell "nothing fits" from a failure.
NO_SUBNET_FITS = 3

# metric -> (table column, unit of that column, accepted units with their factor to it)
_METRICS = {
    'latency': ('latency_ms', 'ms', {'ms': 1.0, 's': 1e3, 'us': 1e-3, '': 1.0}),
    'flops': ('gflops', 'GFLOPs', {'g': 1.0, 'gflops': 1.0, 'm': 1e-3, 'mflops': 1e-3, 't': 1e3, '': 1.0}),
    'memory': ('memory_mib', 'MiB', {'mib': 1.0, 'mb': 1e6 / 2**20, 'gib': 1024.0, 'gb': 1e9 / 2**20,
                                     'kib': 1 / 1024, 'kb': 1e3 / 2**20, '': 1.0}),
}
_BUDGET = re.compile(r'^\s*(\w+)\s*[=:<]\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*([a-zA-Z]*)\s*$')


@dataclass(frozen=True)
class Budget:
    """An upper bound on one cost of the table: latency (ms), flops (GFLOPs, mmengine's multiply-adds) or
    memory (MiB: the weights the sub-network runs plus its peak of live activations in one call, the table's
    ``memory_mib``)."""
    metric: str
    limit: float

    def __post_init__(self):
        if self.metric not in _METRICS:
            raise ValueError(f'unknown budget metric {self.metric!r}: use one of {", ".join(_METRICS)}')
        if not self.limit > 0:
            raise ValueError(f'a {self.metric} budget must be positive, got {self.limit}')

    @classmethod
    def parse(cls, text: str) -> 'Budget':
        """``'latency=40ms'``, ``'flops=20G'``, ``'memory=300MB'`` (MB = 10^6 bytes, MiB = 2^20)."""
        match = _BUDGET.match(text)
        if not match:
            raise ValueError(f'invalid budget {text!r}: write METRIC=VALUE[UNIT], e.g. latency=40ms, flops=20G, '
                             'memory=300MB')
        metric, value, unit = match.group(1).lower(), float(match.group(2)), match.group(3)
        if metric not in _METRICS:
            raise ValueError(f'invalid budget {text!r}: unknown metric {metric!r}, use one of {", ".join(_METRICS)}')
        units = _METRICS[metric][2]
        if unit.lower() not in units:
            accepted = ', '.join(u for u in units if u)
            raise ValueError(f'invalid budget {text!r}: unit {unit!r} is not one of {metric}\'s ({accepted})')
        return cls(metric, value * units[unit.lower()])

    @property
    def unit(self) -> str:
        return _METRICS[self.metric][1]

    def __str__(self) -> str:
        return f'{self.metric} <= {self.limit:.4g} {self.unit}'


def add_budget_arguments(parser) -> None:
    """``--budget`` / ``--percentile`` of the tools that select (benchmark_subnets.py, select_subnet.py)."""
    import argparse

    def budget(text: str) -> Budget:
        try:
            return Budget.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def percentile(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
        if not 0 <= value <= 100:
            raise argparse.ArgumentTypeError(f'must be in [0, 100], got {value:g}')
        return value

    parser.add_argument('--budget', type=budget, metavar='METRIC=VALUE',
                        help='latency=40ms | flops=20G | memory=300MB: choose the best sub-network that fits '
                        '(latency: the median unless --percentile; memory: the weights the sub-network runs plus '
                        'its peak of live activations in one call, the memory_mib column); exits with '
                        f'{NO_SUBNET_FITS} when none does')
    parser.add_argument('--percentile', type=percentile, metavar='P',
                        help='hold the P-th percentile of the timed runs to a latency budget (default: median)')


def row_cost(row: Dict, metric: str, percentile: Optional[float] = None) -> float:
    """The cost of one measured sub-network. Latency is the median unless ``percentile`` is given: then the
    percentile of the row's timed runs (``latency_samples_ms``; without them only 50 and 90 are known)."""
    column = _METRICS[metric][0]
    if metric != 'latency' or percentile is None or percentile == 50:
        if row.get(column) is None:
            if metric == 'memory' and row.get('peak_mem_mib') is not None:
                raise KeyError(f'sub-network {row.get("skip")} has no {column!r}: the table is from before it was '
                               'measured (its peak_mem_mib holds the activations only, not the weights); re-run '
                               'benchmark_subnets.py')
            raise KeyError(f'sub-network {row.get("skip")} has no {column!r}: the table does not measure {metric}')
        return float(row[column])
    if not 0 <= percentile <= 100:
        raise ValueError(f'percentile must be in [0, 100], got {percentile}')
    samples = row.get('latency_samples_ms')
    if samples:
        return latency_percentile(samples, percentile)
    if percentile == 90 and row.get('latency_p90_ms') is not None:
        return float(row['latency_p90_ms'])
    raise KeyError(f'sub-network {row.get("skip")} has no timed runs (latency_samples_ms) to take the '
                   f'{percentile:g}th percentile from: re-run benchmark_subnets.py, or use --percentile 50 / 90')


def latency_percentile(samples: Sequence[float], percentile: float) -> float:
    """Nearest-rank percentile (the convention of ``latency_stats``' p90)."""
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))])


@dataclass
class Selection:
    """The outcome of ``select_subnet``: ``chosen`` is None when nothing fits (``cheapest`` says what would)."""
    budget: Budget
    quality_key: str
    percentile: Optional[float]
    chosen: Optional[Dict]
    cost: Optional[float]
    cheapest: Dict
    cheapest_cost: float
    fitting: List[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.chosen is not None

    @property
    def skip(self) -> Optional[str]:
        return self.chosen['skip'] if self.chosen else None

    @property
    def quality(self) -> Optional[float]:
        return self.chosen[self.quality_key] if self.chosen else None

    @property
    def margin(self) -> Optional[float]:
        """How much of the budget is left over, in its unit (negative: over budget)."""
        return self.budget.limit - (self.cost if self.fits else self.cheapest_cost)

    def cost_name(self) -> str:
        if self.budget.metric == 'latency' and self.percentile not in (None, 50):
            return f'p{self.percentile:g} latency'
        return {'latency': 'median latency', 'flops': 'FLOPs', 'memory': 'memory'}[self.budget.metric]

    def summary(self) -> str:
        unit = self.budget.unit
        if not self.fits:
            return (f'no sub-network fits {self.budget}: the cheapest, {self.cheapest["skip"]}, needs '
                    f'{self.cheapest_cost:.4g} {unit} ({self.cost_name()}), {-self.margin:.4g} {unit} over')
        return (f'{self.skip} for {self.budget}: {self.quality_key} {self.quality:.4g}, {self.cost_name()} '
                f'{self.cost:.4g} {unit}, margin {self.margin:.4g} {unit} ({len(self.fitting)} of the measured '
                'sub-networks fit)')

    @property
    def exit_code(self) -> int:
        """What a tool that selected exits with: 0, or :data:`NO_SUBNET_FITS`."""
        return 0 if self.fits else NO_SUBNET_FITS

    def to_dict(self) -> Dict:
        return dict(budget=dict(metric=self.budget.metric, limit=self.budget.limit, unit=self.budget.unit),
                    percentile=self.percentile, quality_key=self.quality_key, fits=self.fits, skip=self.skip,
                    quality=self.quality, cost=self.cost, margin=self.margin, fitting=self.fitting,
                    chosen=self.chosen, cheapest=self.cheapest['skip'], cheapest_cost=self.cheapest_cost,
                    summary=self.summary())


def exit_code(selections: Iterable[Selection]) -> int:
    """0 when every budget of a run found a sub-network, else :data:`NO_SUBNET_FITS` (one code for all tools)."""
    return max((s.exit_code for s in selections), default=0)


def load_table(path: str) -> Dict:
    """A table written by ``benchmark_subnets.py`` (subnets.json): ``title``, ``quality_key``, ``subnets``."""
    try:
        with open(path) as f:
            table = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'no measured table at {path}: run tools/analysis_tools/benchmark_subnets.py '
                                'CONFIG CHECKPOINT first (it writes subnets.json to its --out-dir)') from None
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not a benchmark table (JSON error: {err})') from None
    if not isinstance(table, dict) or not table.get('subnets') or 'quality_key' not in table:
        raise ValueError(f'{path} is not a benchmark table: expected the subnets.json of benchmark_subnets.py '
                         '(keys title, quality_key, subnets)')
    return table


def write_selection(selection: Selection, path: str) -> str:
    with open(path, 'w') as f:
        json.dump(selection.to_dict(), f, indent=2)
    return path


def table_rows(table: Union[Dict, Sequence[Dict]], quality_key: Optional[str] = None) -> Tuple[List[Dict], str]:
    """``(rows, quality_key)`` of a loaded subnets.json or of its rows, checked: a choice can be made from them."""
    if isinstance(table, dict):
        rows, quality_key = table['subnets'], quality_key or table.get('quality_key')
    else:
        rows = list(table)
    if not rows:
        raise ValueError('the table has no sub-networks to choose from')
    if quality_key is None:
        raise ValueError('give quality_key (e.g. bbox_mAP, top1) to choose by when the table is a list of rows')
    missing = [r.get('skip') for r in rows if r.get(quality_key) is None]
    if missing:
        raise KeyError(f'sub-networks {missing} have no {quality_key!r} to choose by')
    return rows, quality_key


def select_subnet(table: Union[Dict, Sequence[Dict]],
                  budget: Union[Budget, str],
                  percentile: Optional[float] = None,
                  quality_key: Optional[str] = None) -> Selection:
    """The best-quality sub-network of ``table`` (a loaded subnets.json, or its rows with ``quality_key``)
    whose cost fits ``budget``."""
    rows, quality_key = table_rows(table, quality_key)
    budget = Budget.parse(budget) if isinstance(budget, str) else budget
    costs = [row_cost(r, budget.metric, percentile) for r in rows]
    fitting = [i for i, c in enumerate(costs) if c <= budget.limit]
    cheapest = min(range(len(rows)), key=lambda i: (costs[i], -rows[i][quality_key]))
    best = max(fitting, key=lambda i: (rows[i][quality_key], -costs[i])) if fitting else None
    return Selection(budget, quality_key, percentile, rows[best] if best is not None else None,
                     costs[best] if best is not None else None, rows[cheapest], costs[cheapest],
                     [rows[i]['skip'] for i in fitting])
