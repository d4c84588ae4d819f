"""Switch an ADN model's depth at run time so that each call meets its deadline.

Before each call the controller picks the best-quality sub-network of the measured table whose predicted time
fits the call's deadline (``select_subnet`` on a latency budget), switches to it (a depth switch costs
microseconds), runs the call and times it. The prediction is the table's median at that depth times a factor:
a percentile (the tail, not the median, is what misses deadlines) of the ratios "measured time / table median"
of the last ``window`` calls, whatever depth they ran. Before any call, the ratios are the table's own timed runs.
The factor absorbs what the table did not time: the spread between inputs (a detector's heads cost more on an
image with more objects), data preparation, a busier machine than when the table was measured; so a table
measured once stays usable.

Two ways to hand the depth to a call: ``controller(fn, deadline)`` switches a PyTorch model (``set_subnet``) before
``fn()``; ``controller.run(fn, deadline)`` calls ``fn(skip)``, for a model whose depth is an input of each call (the
whole detector's all-depths ONNX model in a runtime: nothing is switched or reloaded, ``RuntimeDepths``).
"""
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

import torch
from torch import nn

from mmadn.models.utils.subnet import set_subnet
from mmadn.utils.timing import timed_call
from .selection import Budget, latency_percentile, row_cost, select_subnet, table_rows


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
        model: the ADN model (or backbone) whose depth ``__call__`` switches; None when the depth is handed to
            each call (``run``).
        table: the loaded table (``load_table``) or its rows with ``quality_key``.
        percentile: percentile of the recent time ratios the prediction uses (99: nearly the worst of them).
        headroom: fraction of the deadline a prediction may use (the rest absorbs jitter).
        window: how many recent calls the ratios come from (0: the table's timed runs only, never updated).
        device: where the calls run (CUDA is synchronised around each).
    """

    def __init__(self,
                 model: Optional[nn.Module],
                 table: Union[Dict, List[Dict]],
                 quality_key: Optional[str] = None,
                 percentile: float = 99,
                 headroom: float = 0.95,
                 window: int = 50,
                 device: Union[str, torch.device] = 'cpu') -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f'headroom is the fraction of a deadline a prediction may use, in (0, 1]: {headroom}')
        if window < 0:
            raise ValueError(f'window is a number of recent calls, at least 0: {window}')
        if not 0 <= percentile <= 100:
            raise ValueError(f'percentile must be in [0, 100], got {percentile}')
        self.model = model
        self.rows, self.quality_key = table_rows(table, quality_key)
        self.percentile = percentile
        self.headroom = headroom
        self.device = torch.device(device)
        self._median = {r['skip']: row_cost(r, 'latency') for r in self.rows}
        prior = [t / self._median[r['skip']] for r in self.rows for t in r.get('latency_samples_ms') or ()]
        if not prior:  # a table without its timed runs: its p90 where it has one
            prior = [r['latency_p90_ms'] / self._median[r['skip']] for r in self.rows if r.get('latency_p90_ms')]
        self._prior = prior or [1.0]
        self._ratios = deque(maxlen=window) if window else None
        self.records: List[CallRecord] = []

    @property
    def correction(self) -> float:
        """The factor on the table's medians: the ``percentile`` of the recent ratios (the table's before any)."""
        return latency_percentile(self._ratios or self._prior, self.percentile)

    def predict(self, skip: str) -> float:
        """Predicted time (ms) of one call at depth ``skip``."""
        return self._median[skip] * self.correction

    def choose(self, deadline_ms: float) -> str:
        """The best sub-network whose predicted time fits ``headroom * deadline_ms``; the cheapest if none does."""
        budget = Budget('latency', max(deadline_ms * self.headroom / self.correction, 1e-9))
        selection = select_subnet(self.rows, budget, None, self.quality_key)
        return selection.skip if selection.fits else selection.cheapest['skip']

    def observe(self, skip: str, elapsed_ms: float) -> None:
        """Fold one measured call into the recent ratios."""
        if self._ratios is not None:
            self._ratios.append(elapsed_ms / self._median[skip])

    def __call__(self, fn: Callable[[], object], deadline_ms: float):
        """Switch ``model`` to the depth chosen for ``deadline_ms`` and run ``fn()``; returns its result (the
        record is appended to ``records``)."""
        if self.model is None:
            raise TypeError('this controller has no model to switch: hand the depth to the call with run(fn)')
        skip = self.choose(deadline_ms)
        set_subnet(self.model, skip)  # outside the timed call, as the table timed each depth already switched
        return self._timed(skip, fn, deadline_ms)

    def run(self, fn: Callable[[str], object], deadline_ms: float):
        """Run ``fn(skip)`` with the depth chosen for ``deadline_ms`` (the model takes the depth as an input of the
        call); returns its result (the record is appended to ``records``)."""
        skip = self.choose(deadline_ms)
        return self._timed(skip, lambda: fn(skip), deadline_ms)

    def _timed(self, skip: str, fn: Callable[[], object], deadline_ms: float):
        predicted = self.predict(skip)
        elapsed, result = timed_call(fn, self.device)
        self.observe(skip, elapsed)
        self.records.append(CallRecord(skip, deadline_ms, elapsed, predicted))
        return result
