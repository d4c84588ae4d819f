"""The ODN decision rule, as a pure state machine fed one validation accuracy per epoch (ODN spec, "Training").

Kept free of mmengine so that every decision can be checked against the spec with a scripted sequence of
accuracies; ``ODNTrainLoop`` applies the decisions to a real run and stores ``state_dict()`` in checkpoints.

Phases: ``warmup`` (all levels, fixed number of epochs) -> ``expand`` (from depth 1, one level deeper each time
the current one stops improving for ``patience`` epochs below ``target - tolerance``) -> ``finetune`` (deepening
stopped: the target was reached, or the full depth is being trained; continue until ``patience`` epochs without
improvement) -> ``done``. In every phase after warm-up the learning rate decays by ``lr_factor`` after
``lr_patience`` epochs without improvement (reduce-on-plateau), and each new depth restarts at the base rate
(depth 1) or at ``deeper_lr_factor`` times it (every later depth: the notebooks' half rate).
"""
import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

WARMUP, EXPAND, FINETUNE, DONE = 'warmup', 'expand', 'finetune', 'done'
PHASES = (WARMUP, EXPAND, FINETUNE, DONE)

# What the loop must do after an epoch:
#   warmup   keep warming up
#   start    warm-up over: train depth 1 alone from the base learning rate
#   continue nothing changes
#   decay    multiply the learning rate by lr_factor
#   expand   deepen by one level, from the base learning rate x deeper_lr_factor
#   finetune the target is reached: stop deepening, keep training this depth
#   stop     the procedure is over; this depth is the optimal one
ACTIONS = ('warmup', 'start', 'continue', 'decay', 'expand', 'finetune', 'stop')


@dataclass(frozen=True)
class Decision:
    """The outcome of one epoch: what was measured and what happens next."""
    epoch: int  # 1-based number of the epoch just validated
    phase: str  # phase of that epoch
    level: int  # depth level trained and validated in that epoch (the full depth during warm-up)
    accuracy: float
    improved: bool  # a new best for this level (always False in warm-up)
    best: Optional[float]  # best accuracy of this level so far (None in warm-up)
    stale_epochs: int  # consecutive epochs of this level without improvement, this one included
    action: str
    next_level: int
    next_phase: str
    lr_scale: float  # learning rate of the next epoch, as a multiple of the base rate

    def as_dict(self) -> dict:
        return asdict(self)


class DepthExpansion:
    """Decide, epoch by epoch, when to decay the learning rate, deepen, stop deepening and stop.

    ``ODNTrainLoop`` takes the same settings (all but ``num_levels``) from ``train_cfg``, with these defaults.

    Args:
        num_levels (int): Depth levels of the network (residual blocks).
        target (float): Accuracy the task needs, in the metric's unit (percent for mmpretrain's Accuracy).
        tolerance (float): Deepening stops once the best accuracy reaches ``target - tolerance``. Defaults to 0.5.
        warmup_epochs (int): Epochs of all-level training (the sum of every level's cross-entropy) before
            expansion starts at depth 1. Defaults to 3.
        patience (int): Epochs without improvement after which a depth is given up (deepen) or, when
            deepening has stopped, training ends. Defaults to 23.
        lr_patience (int): The learning rate decays on the ``lr_patience``-th consecutive epoch without
            improvement, and again every ``lr_patience`` such epochs (the notebooks' ``no_improvement % 5 == 0``;
            torch's ``ReduceLROnPlateau(patience=lr_patience - 1)`` is the same rule). Defaults to 5.
        lr_factor (float): Learning-rate decay factor. Defaults to 0.6.
        min_delta (float): An epoch improves when its accuracy exceeds the best by more than this. Defaults to 0.
        deeper_lr_factor (float): Every depth after the first starts at this multiple of the base rate (the
            notebooks restart depths 2, 3, ... at half the expansion rate: 0.5; CIFAR-10's at the full rate: 1).
            Defaults to 1.0.
    """

    def __init__(self,
                 num_levels: int,
                 target: float,
                 tolerance: float = 0.5,
                 warmup_epochs: int = 3,
                 patience: int = 23,
                 lr_patience: int = 5,
                 lr_factor: float = 0.6,
                 min_delta: float = 0.0,
                 deeper_lr_factor: float = 1.0):
        _check(isinstance(num_levels, int) and num_levels >= 1, f'num_levels must be an int >= 1, got {num_levels}')
        _check(isinstance(target, (int, float)) and math.isfinite(target),
               f'target must be the accuracy to reach (e.g. 99.5 for 99.5 %), got {target!r}')
        _check(tolerance >= 0, f'tolerance must be >= 0, got {tolerance}')
        _check(isinstance(warmup_epochs, int) and warmup_epochs >= 0, f'warmup_epochs must be an int >= 0, '
               f'got {warmup_epochs!r}')
        _check(isinstance(patience, int) and patience >= 1, f'patience must be an int >= 1, got {patience!r}')
        _check(isinstance(lr_patience, int) and lr_patience >= 1,
               f'lr_patience must be an int >= 1, got {lr_patience!r}')
        _check(0 < lr_factor <= 1, f'lr_factor must be in (0, 1], got {lr_factor}')
        _check(min_delta >= 0, f'min_delta must be >= 0, got {min_delta}')
        _check(isinstance(deeper_lr_factor, (int, float)) and not isinstance(deeper_lr_factor, bool)
               and math.isfinite(deeper_lr_factor) and deeper_lr_factor > 0,
               f'deeper_lr_factor (the rate of depths 2, 3, ... as a multiple of depth 1\'s) must be a number > 0, '
               f'e.g. 0.5 for the notebooks\' half rate; got {deeper_lr_factor!r}')
        self.num_levels = num_levels
        self.target = float(target)
        self.tolerance = float(tolerance)
        self.warmup_epochs = warmup_epochs
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = float(lr_factor)
        self.min_delta = float(min_delta)
        self.deeper_lr_factor = float(deeper_lr_factor)

        self.epoch = 0
        self.best: Dict[int, float] = {}
        self.history: List[dict] = []
        self.lr_scale = 1.0
        self.bad_epochs = 0
        self.lr_bad_epochs = 0
        if warmup_epochs > 0:
            self.phase, self.level = WARMUP, num_levels
        else:
            self._enter_level(1)

    @property
    def threshold(self) -> float:
        """Deepening stops once the best accuracy of a depth reaches this."""
        return self.target - self.tolerance

    @property
    def finished(self) -> bool:
        return self.phase == DONE

    def _enter_level(self, level: int) -> None:
        # the full depth cannot be deepened: training it is already the fine-tuning
        self.phase = FINETUNE if level == self.num_levels else EXPAND
        self.level = level
        self.bad_epochs = self.lr_bad_epochs = 0
        self.lr_scale = 1.0 if level == 1 else self.deeper_lr_factor

    def step(self, accuracy: float) -> Decision:
        """Feed the validation accuracy of the epoch just trained; returns the decision for the next one."""
        if self.finished:
            raise RuntimeError(f'the expansion has finished (optimal depth {self.level}); no epoch is left to decide')
        accuracy = float(accuracy)
        _check(math.isfinite(accuracy), f'validation accuracy must be a finite number, got {accuracy}')
        self.epoch += 1
        phase, level = self.phase, self.level
        improved, best, stale = False, None, 0
        if phase == WARMUP:
            if self.epoch < self.warmup_epochs:
                action = 'warmup'
            else:
                action = 'start'
                self._enter_level(1)
        else:
            previous = self.best.get(level)
            improved = previous is None or accuracy > previous + self.min_delta
            if improved:
                self.best[level] = accuracy
                self.bad_epochs = self.lr_bad_epochs = 0
            else:
                self.bad_epochs += 1
                self.lr_bad_epochs += 1
            best, stale = self.best[level], self.bad_epochs
            if phase == EXPAND and best >= self.threshold:
                action = 'finetune'
                self.phase = FINETUNE
            elif self.bad_epochs >= self.patience:
                if phase == EXPAND:
                    action = 'expand'
                    self._enter_level(level + 1)
                else:
                    action = 'stop'
                    self.phase = DONE
            elif self.lr_bad_epochs >= self.lr_patience:
                action = 'decay'
                self.lr_scale *= self.lr_factor
                self.lr_bad_epochs = 0
            else:
                action = 'continue'
        decision = Decision(
            epoch=self.epoch,
            phase=phase,
            level=level,
            accuracy=accuracy,
            improved=improved,
            best=best,
            stale_epochs=stale,
            action=action,
            next_level=self.level,
            next_phase=self.phase,
            lr_scale=self.lr_scale)
        self.history.append(decision.as_dict())
        return decision

    def state_dict(self) -> dict:
        """Everything needed to continue after an interruption (plain Python values, safe to checkpoint)."""
        return dict(
            num_levels=self.num_levels,
            epoch=self.epoch,
            phase=self.phase,
            level=self.level,
            best={str(k): v for k, v in self.best.items()},
            bad_epochs=self.bad_epochs,
            lr_bad_epochs=self.lr_bad_epochs,
            lr_scale=self.lr_scale,
            history=[dict(d) for d in self.history])

    def load_state_dict(self, state: dict) -> None:
        if state['num_levels'] != self.num_levels:
            raise ValueError(f'the saved expansion state is for {state["num_levels"]} depth levels, this model has '
                             f'{self.num_levels}: resume with the config the run was started with')
        if state['phase'] not in PHASES:
            raise ValueError(f'unknown phase {state["phase"]!r} in the saved expansion state')
        self.epoch = int(state['epoch'])
        self.phase = state['phase']
        self.level = int(state['level'])
        self.best = {int(k): float(v) for k, v in state['best'].items()}
        self.bad_epochs = int(state['bad_epochs'])
        self.lr_bad_epochs = int(state['lr_bad_epochs'])
        self.lr_scale = float(state['lr_scale'])
        self.history = [dict(d) for d in state['history']]


def expansion_settings() -> Dict[str, Any]:
    """The settings of :class:`DepthExpansion` (all but ``num_levels``) and their defaults, in its order
    (``target`` has none: None). Declared once, by its signature, for the loop that passes them on."""
    parameters = list(inspect.signature(DepthExpansion).parameters.values())[1:]
    return {p.name: None if p.default is p.empty else p.default for p in parameters}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
