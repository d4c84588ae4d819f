"""Switch an ADN model's depth at run time so that each call meets its deadline.

Before each call the controller picks the best-quality sub-network of the measured table whose predicted time
fits the call's deadline (``select_subnet`` on a latency budget), switches to it (a depth switch costs
microseconds), runs the call and times it. The prediction is the table's latency at a percentile (the tail, not
the median, is what misses deadlines) times a correction learnt from the calls so far: the ratio of the measured
time to the table's median, averaged exponentially. The correction absorbs what the table did not time (data
preparation, a busier machine than when the table was measured), so a table measured once stays usable.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

import torch
from torch import nn

from mmadn.analysis.measure import time_once
from mmadn.models.utils.subnet import set_subnet
from .selection import Budget, row_cost, select_subnet


@dataclass
class CallRecord:
    """What one controlled call ran and how long it took."""
    skip: str
    deadline_ms: float
    elapsed_ms: float
    predicted_ms: float

    @property
    def hit(self) -> bool:
        return self.elapsed_ms <= self.deadline_ms


class DeadlineController:
    """Sets ``model``'s depth before each call from a measured ``table`` (subnets.json of benchmark_subnets.py).

    Args:
        model: the ADN model (or backbone) whose depth is switched.
        table: the loaded table (``load_table``) or its rows with ``quality_key``.
        percentile: latency percentile of the table used as the prediction (its timed runs).
        headroom: fraction of the deadline a prediction may use (the rest absorbs jitter).
        adapt: weight of the newest call in the running correction (0: trust the table as it is).
        device: where the calls run (CUDA is synchronised around each).
    """

    def __init__(self,
                 model: nn.Module,
                 table: Union[Dict, List[Dict]],
                 quality_key: Optional[str] = None,
                 percentile: float = 90,
                 headroom: float = 0.95,
                 adapt: float = 0.2,
                 device: Union[str, torch.device] = 'cpu') -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f'headroom is the fraction of a deadline a prediction may use, in (0, 1]: {headroom}')
        if not 0 <= adapt <= 1:
            raise ValueError(f'adapt is the weight of the newest call in the correction, in [0, 1]: {adapt}')
        self.model = model
        self.rows = table['subnets'] if isinstance(table, dict) else list(table)
        self.quality_key = quality_key or (table.get('quality_key') if isinstance(table, dict) else None)
        self.percentile = percentile
        self.headroom = headroom
        self.adapt = adapt
        self.device = torch.device(device)
        self.correction = 1.0
        self._median = {r['skip']: row_cost(r, 'latency') for r in self.rows}
        self._tail = {r['skip']: row_cost(r, 'latency', percentile) for r in self.rows}
        self.records: List[CallRecord] = []
        select_subnet(self.rows, Budget('latency', 1e12), percentile, self.quality_key)  # the table is usable

    def predict(self, skip: str) -> float:
        """Predicted time (ms) of one call at depth ``skip``."""
        return self._tail[skip] * self.correction

    def choose(self, deadline_ms: float) -> str:
        """The best sub-network whose predicted time fits ``headroom * deadline_ms``; the cheapest if none does."""
        budget = Budget('latency', max(deadline_ms * self.headroom / self.correction, 1e-9))
        selection = select_subnet(self.rows, budget, self.percentile, self.quality_key)
        return selection.skip if selection.fits else selection.cheapest['skip']

    def observe(self, skip: str, elapsed_ms: float) -> None:
        """Fold one measured call into the correction."""
        ratio = elapsed_ms / self._median[skip]
        self.correction = (1 - self.adapt) * self.correction + self.adapt * ratio

    def __call__(self, fn: Callable[[], object], deadline_ms: float):
        """Run ``fn()`` at the depth chosen for ``deadline_ms``; returns its result (the record is appended to
        ``records``)."""
        skip = self.choose(deadline_ms)
        predicted = self.predict(skip)
        set_subnet(self.model, skip)
        result = []
        elapsed = time_once(lambda: result.append(fn()), self.device)
        self.observe(skip, elapsed)
        self.records.append(CallRecord(skip, deadline_ms, elapsed, predicted))
        return result[0]
