"""``ODNTrainLoop``: the ODN training procedure as an mmengine train loop (ODN spec, "Training").

Each epoch trains, runs the validation loop, and feeds its accuracy to :class:`DepthExpansion`, whose decision
is applied here: the model's depth level and warm-up loss, the learning rate (the expansion rate for depth 1,
``deeper_lr_factor`` times it for every later depth, reduce-on-plateau), the optimizer state, the warm-up
weights, and the best checkpoint of the current depth. The warm-up trains at the optimizer's own rate, under the
config's ``param_scheduler``.

Resuming: mmengine saves the epoch checkpoint before validation, so a checkpoint holds the expansion state
decided up to the previous epoch. On resume the loop finds that one epoch is trained but not decided, validates
the (restored) weights and replays the decision; everything after is as in an uninterrupted run. The state
lives in the message hub (``'odn'``), which mmengine checkpoints and restores.
"""
import json
import math
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Union

from mmengine import dist
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmengine.runner.checkpoint import load_checkpoint
from torch.utils.data import DataLoader

from mmadn.registry import register_loop
from .expansion import WARMUP, Decision, DepthExpansion, expansion_settings

STATE_KEY = 'odn'
RESULT_FILE = 'odn_result.json'
WARMUP_CHECKPOINT = 'odn_warmup.pth'


@register_loop
class ODNTrainLoop(EpochBasedTrainLoop):
    """Warm-up over all levels, progressive depth expansion, then fine-tuning at the chosen depth.

    Args:
        expansion_lr (float, optional): Learning rate of depth 1 after the warm-up (the notebooks' rate of
            ``train_till_convergence``, e.g. 0.01 for MNIST after a 0.001 warm-up). Parameter groups with a rate
            of their own (``paramwise_cfg``) and ``--auto-scale-lr`` scale it as they scale the optimizer's
            ``lr``. Defaults to None: the optimizer's ``lr``, the warm-up's.
        restart_from_warmup (bool): Each new depth starts from the warm-up weights (the public code) rather
            than from the weights the previous depth ended with (the paper's "as the earlier blocks converge").
            Defaults to True, as the public code: on the dotted-lines demo neither is better throughout (which
            reaches the target sooner changes with the warm-up schedule; docs/odn.md, "Where a new depth starts").
        metric (str): Validation metric that drives the decisions. Defaults to ``'accuracy/top1'``.
        max_epochs (int): Safety cap on the total number of epochs; the procedure normally ends by itself.
        **expansion_args: The decision rule's settings, documented with their defaults in
            :class:`DepthExpansion`: ``target`` (required: the validation accuracy the task needs, percent for
            ``Accuracy``), ``tolerance``, ``warmup_epochs``, ``patience``, ``lr_patience``, ``lr_factor``,
            ``min_delta`` and ``deeper_lr_factor`` (every depth after the first starts at this multiple of
            ``expansion_lr``).
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 expansion_lr: Optional[float] = None,
                 restart_from_warmup: bool = True,
                 metric: str = 'accuracy/top1',
                 max_epochs: int = 1000,
                 **expansion_args) -> None:
        settings = expansion_settings()
        unknown = sorted(set(expansion_args) - set(settings))
        if unknown:
            raise TypeError(f'ODNTrainLoop has no setting {", ".join(unknown)}: train_cfg takes '
                            f'{", ".join(settings)} (the decision rule, see DepthExpansion) and expansion_lr, '
                            'restart_from_warmup, metric, max_epochs')
        if expansion_args.get('target') is None:
            raise ValueError('ODNTrainLoop needs the accuracy the task needs: set train_cfg.target (e.g. '
                             'target=99.5 for 99.5 % top-1 accuracy)')
        self.expansion_args = {**settings, **expansion_args}  # every setting, in the rule's order
        if expansion_lr is not None and not (isinstance(expansion_lr, (int, float))
                                             and not isinstance(expansion_lr, bool) and math.isfinite(expansion_lr)
                                             and expansion_lr > 0):
            raise ValueError(f'train_cfg.expansion_lr is the learning rate of depth 1 after the warm-up: a number '
                             f'> 0 (e.g. 0.01), or None for the optimizer\'s lr; got {expansion_lr!r}')
        self.expansion_lr = expansion_lr
        DepthExpansion(1, **self.expansion_args)  # bad settings fail when the runner is built, not hours later
        super().__init__(runner, dataloader, max_epochs=max_epochs, val_begin=1, val_interval=1)
        self.restart_from_warmup = restart_from_warmup
        self.metric = metric
        self.controller: Optional[DepthExpansion] = None
        self.base_lrs = []
        self.best_checkpoint: Optional[str] = None
        self.warmup_checkpoint: Optional[str] = None
        self.elapsed: List[float] = []  # seconds since the start of training after each decided epoch
        self._clock = time.perf_counter()

    @property
    def model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    # ------------------------------------------------------------------ the procedure
    def run(self):
        self.runner.call_hook('before_train')
        self._prepare()
        # a resumed run counts on from the time its checkpoint recorded
        self._clock = time.perf_counter() - (self.elapsed[-1] if self.elapsed else 0.0)
        if self.controller.epoch < self._epoch:
            self.runner.logger.info(f'ODN: epoch {self._epoch} was trained but not yet validated before the '
                                    'interruption; validating it now')
            self._validate_and_decide()
        while not self.controller.finished and self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._validate_and_decide()
        self._finish()
        self.runner.call_hook('after_train')
        return self.runner.model

    def _prepare(self) -> None:
        model = self.model
        for attr in ('level', 'num_levels', 'supervise_all_levels'):
            if not hasattr(model, attr):
                raise TypeError(f'ODNTrainLoop trains an ODNClassifier (model.type="ODNClassifier"); '
                                f'{type(model).__name__} has no attribute {attr!r}')
        if self.runner.val_loop is None:
            raise ValueError('ODNTrainLoop decides from the validation accuracy of every epoch: set '
                             'val_dataloader, val_evaluator and val_cfg in the config')
        self._check_schedulers()
        self._check_ddp()
        self.controller = DepthExpansion(model.num_levels, **self.expansion_args)
        state = self.runner.message_hub.get_info(STATE_KEY)
        if state is None:
            if self._epoch != 0:
                raise RuntimeError(f'resumed at epoch {self._epoch} from a checkpoint without ODN state; resume '
                                   'from a checkpoint written by ODNTrainLoop, or start with load_from instead')
            self.base_lrs = self._expansion_lrs()
            if self.controller.phase != WARMUP:  # no warm-up: depth 1 trains from the first epoch
                self._set_lrs()
                if self.restart_from_warmup:
                    self._save_warmup()  # each depth restarts from the initial weights
        else:
            self.controller.load_state_dict(state['expansion'])
            self.base_lrs = list(state['base_lrs'])
            self.best_checkpoint = state['best_checkpoint']
            self.warmup_checkpoint = state['warmup_checkpoint']
            self.elapsed = list(state.get('elapsed', []))
            if self.controller.epoch not in (self._epoch, self._epoch - 1):
                raise RuntimeError(f'the checkpoint was saved after epoch {self._epoch} but its ODN state has '
                                   f'decisions for {self.controller.epoch} epochs; it was not written by '
                                   'ODNTrainLoop with the default CheckpointHook')
            c = self.controller
            self.runner.logger.info(f'ODN: resuming after epoch {self._epoch} in phase {c.phase!r} at depth '
                                    f'{c.level}/{c.num_levels}, best so far {c.best}')
        self._apply_phase()
        self._save_state()

    def _check_schedulers(self) -> None:
        """A scheduler running past the warm-up would fight the loop's own learning-rate control."""
        schedulers = self.runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        warmup_epochs = self.expansion_args['warmup_epochs']
        for scheduler in schedulers:
            end_epochs = scheduler.end if scheduler.by_epoch else scheduler.end / len(self.dataloader)
            if end_epochs > warmup_epochs and warmup_epochs == 0:
                raise ValueError(
                    f'{type(scheduler).__name__} schedules the learning rate, but train_cfg.warmup_epochs=0: '
                    'there is no warm-up to schedule, and after it ODNTrainLoop sets the learning rate itself. '
                    'Set param_scheduler = [] in the config.')
            if end_epochs > warmup_epochs:
                raise ValueError(
                    f'{type(scheduler).__name__} ends at epoch {end_epochs:g}, after the warm-up '
                    f'({warmup_epochs} epochs). After the warm-up ODNTrainLoop sets the learning rate itself '
                    '(base rate for each new depth, decay on plateau): give the scheduler '
                    f'end={warmup_epochs} (by_epoch=True), or remove it.')

    def _check_ddp(self) -> None:
        wrapper = self.runner.model
        if is_model_wrapper(wrapper) and hasattr(wrapper, 'find_unused_parameters') \
                and not wrapper.find_unused_parameters:
            raise ValueError('ODN trains one depth at a time, so the deeper blocks and the other heads get no '
                             'gradient: set find_unused_parameters=True in the config for distributed training')

    def _validate_and_decide(self) -> Decision:
        metrics = self.runner.val_loop.run()
        if self.metric not in metrics:
            raise KeyError(f'ODNTrainLoop decides on {self.metric!r}, but validation returned {sorted(metrics)}; '
                           'set train_cfg.metric to one of them')
        decision = self.controller.step(metrics[self.metric])
        self.elapsed.append(round(time.perf_counter() - self._clock, 3))
        # the checkpoints are written from the weights just validated, before a new depth changes them
        if decision.improved:
            self._save_best(decision)
        if decision.action == 'start' and self.restart_from_warmup:
            self._save_warmup()
        if decision.action == 'expand' and self.restart_from_warmup:
            self._load_warmup()
        if decision.action in ('start', 'expand'):
            self.runner.optim_wrapper.optimizer.state.clear()  # a new depth starts a fresh optimizer
        if decision.action in ('start', 'expand', 'decay'):
            self._set_lrs()
        self._apply_phase()
        self._log(decision)
        self._save_state()
        return decision

    def _expansion_lrs(self) -> List[float]:
        """Each parameter group's rate for depth 1: its warm-up rate, times ``expansion_lr / optimizer lr``."""
        groups = self.runner.optim_wrapper.param_groups
        warmup_lrs = [group.get('initial_lr', group['lr']) for group in groups]  # before any scheduler
        if self.expansion_lr is None:
            return warmup_lrs
        # the optimizer's own lr, before --auto-scale-lr scaled the groups: the ratio keeps lr_mult and scaling
        optimizer_lr = self.runner.optim_wrapper.optimizer.defaults.get('lr')
        if not optimizer_lr:
            raise ValueError(f'train_cfg.expansion_lr={self.expansion_lr} scales every parameter group by '
                             f'expansion_lr / optim_wrapper.optimizer.lr, but that lr is {optimizer_lr!r}: give '
                             'the optimizer the warm-up\'s rate (> 0)')
        return [lr * self.expansion_lr / optimizer_lr for lr in warmup_lrs]

    def _set_lrs(self) -> None:
        for group, base_lr in zip(self.runner.optim_wrapper.param_groups, self.base_lrs):
            group['lr'] = base_lr * self.controller.lr_scale

    def _apply_phase(self) -> None:
        self.model.level = self.controller.level
        self.model.supervise_all_levels = self.controller.phase == WARMUP

    # ------------------------------------------------------------------ checkpoints and state
    def _save_best(self, decision: Decision) -> None:
        filename = f'best_depth{decision.level}.pth'
        path = osp.join(self.runner.work_dir, filename)
        meta = dict(
            epoch=self._epoch,
            iter=self._iter,
            odn=dict(
                level=decision.level,
                num_levels=self.controller.num_levels,
                accuracy=decision.accuracy,
                metric=self.metric,
                epoch=decision.epoch))
        self.runner.save_checkpoint(
            self.runner.work_dir, filename, save_optimizer=False, save_param_scheduler=False, meta=meta)
        if self.best_checkpoint and self.best_checkpoint != path and dist.is_main_process() \
                and osp.isfile(self.best_checkpoint):
            os.remove(self.best_checkpoint)  # only the current depth's best is kept
        self.best_checkpoint = path

    def _save_warmup(self) -> None:
        self.runner.save_checkpoint(
            self.runner.work_dir,
            WARMUP_CHECKPOINT,
            save_optimizer=False,
            save_param_scheduler=False,
            meta=dict(epoch=self._epoch, iter=self._iter))
        self.warmup_checkpoint = osp.join(self.runner.work_dir, WARMUP_CHECKPOINT)
        dist.barrier()  # every rank reloads it at the next new depth

    def _load_warmup(self) -> None:
        if not self.warmup_checkpoint or not osp.isfile(self.warmup_checkpoint):
            raise FileNotFoundError(
                f'restart_from_warmup=True needs the warm-up weights, but {self.warmup_checkpoint} is missing; '
                'resume in the work dir the run was started in, or set train_cfg.restart_from_warmup=False')
        load_checkpoint(self.model, self.warmup_checkpoint, map_location='cpu', strict=True)

    def _save_state(self) -> None:
        self.runner.message_hub.update_info(
            STATE_KEY,
            dict(
                expansion=self.controller.state_dict(),
                base_lrs=list(self.base_lrs),
                best_checkpoint=self.best_checkpoint,
                warmup_checkpoint=self.warmup_checkpoint,
                elapsed=list(self.elapsed)))

    # ------------------------------------------------------------------ reporting
    def _log(self, d: Decision) -> None:
        c = self.controller
        where = f'ODN epoch {d.epoch} [{d.phase}] depth {d.level}/{c.num_levels}: {self.metric} {d.accuracy:.2f}'
        if d.best is not None:
            where += f', best {d.best:.2f}'
            if not d.improved:
                where += f' ({d.stale_epochs} epoch(s) without improvement)'
        what = {
            'warmup': 'warm-up continues',
            'start': 'warm-up done, expansion starts at depth 1',
            'continue': 'continue',
            'decay': f'decay the learning rate to x{d.lr_scale:.4g}',
            'expand': f'deepen to depth {d.next_level}' + (' from the warm-up weights' if self.restart_from_warmup
                                                           else ' from the current weights'),
            'finetune': f'reached target {c.target:g} - {c.tolerance:g}: stop deepening, fine-tune depth {d.level}',
            'stop': f'stop: optimal depth {d.level} of {c.num_levels}',
        }[d.action]
        self.runner.logger.info(f'{where} -> {what}')
        scalars = {'odn/depth': d.level, 'odn/accuracy': d.accuracy, 'odn/lr_scale': d.lr_scale}
        if d.best is not None:
            scalars['odn/best_accuracy'] = d.best
        self.runner.visualizer.add_scalars(scalars, step=d.epoch)

    def result(self) -> dict:
        """The outcome so far: chosen depth, best accuracy per depth, checkpoints, every decision."""
        c = self.controller
        return dict(
            finished=c.finished,
            depth=c.level,
            num_levels=c.num_levels,
            accuracy=c.best.get(c.level),
            metric=self.metric,
            best_per_depth={str(k): v for k, v in sorted(c.best.items())},
            best_checkpoint=self.best_checkpoint,
            target=c.target,
            tolerance=c.tolerance,
            restart_from_warmup=self.restart_from_warmup,
            settings=dict(
                self.expansion_args,
                num_levels=c.num_levels,
                restart_from_warmup=self.restart_from_warmup,
                expansion_lr=self.expansion_lr),
            epochs=c.epoch,
            elapsed_s=list(self.elapsed),
            history=c.history)

    def _finish(self) -> None:
        c = self.controller
        result = self.result()
        if dist.is_main_process():
            with open(osp.join(self.runner.work_dir, RESULT_FILE), 'w') as f:
                json.dump(result, f, indent=1)
        if c.finished:
            self.runner.logger.info(
                f'ODN finished after {c.epoch} epochs: optimal depth {c.level} of {c.num_levels} '
                f'({self.metric} {result["accuracy"]:.2f}, target {c.target:g} - {c.tolerance:g}); best checkpoint '
                f'{self.best_checkpoint}. Extract the smaller model with: python tools/odn/extract_subnet.py '
                f'CONFIG {self.best_checkpoint} --out-dir DIR')
        else:
            self.runner.logger.warning(
                f'ODN stopped after {self._epoch} epochs (train_cfg.max_epochs={self._max_epochs}) before the '
                f'expansion finished, in phase {c.phase!r} at depth {c.level}; resume with --resume and a larger '
                'train_cfg.max_epochs to continue')
