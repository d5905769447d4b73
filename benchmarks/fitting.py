"""How the matrix trains one model (`Matrix` inherits `Fitting`): the task's budget scaled by
`--epochs-scale`, `--lr-sweep`'s rates, the task's `restarts`, one training run with its stopping
criterion wrapped in the progress line, the early stop and the cell timeout's projection, and a
row of yours given its rescue at other rates and its bounded extension. Framework-free.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnn_behaviour.adapters import BUILTINS, Adapter
from rnn_behaviour.adapters.base import FitLog, Model
from rnn_behaviour.benchmarks.diagnosis import Level, Projection
from rnn_behaviour.benchmarks.early_stop import EarlyStop
from rnn_behaviour.benchmarks.extension import RESCUE, extend, rescue
from rnn_behaviour.benchmarks.restarts import restart
from rnn_behaviour.benchmarks.sweep import sweep
from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import Budget, Data


class Criterion:
    """The task's stopping criterion as handed to `fit`, which also reports progress: at most one
    line every `every` seconds (epoch, training loss, elapsed), and one when the criterion is met."""

    def __init__(self, stop: Callable[[Any], bool], label: str, progress: Callable[[str], None], every: float):
        self.stop, self.label, self.progress, self.every = stop, label, progress, every
        self.start = self.last = time.perf_counter()
        self.epoch, self.loss = 0, math.nan

    def epoch_done(self, epoch: int, loss: float) -> None:
        self.epoch, self.loss = epoch, loss

    def __call__(self, model: Any) -> bool:
        met = self.stop(model)
        now = time.perf_counter()
        if met or now - self.last >= self.every:
            self.last = now
            status = "criterion met" if met else "training"
            self.progress(f"{self.label}: epoch {self.epoch}, loss {self.loss:.4g}, {now - self.start:.1f} s, {status}")
        return met


@dataclass
class Trained:
    model: Model
    log: FitLog
    adapter: Adapter
    #: Under --lr-sweep, what each learning rate gave and which won (benchmarks/sweep.py).
    sweep: dict[str, Any] | None = None
    #: For a task with `restarts`, what each run gave and which was kept (benchmarks/restarts.py).
    restarts: dict[str, Any] | None = None
    #: Why the run was stopped before its cap, its fate known (benchmarks/early_stop.py).
    early_stop: str | None = None
    #: The bounded extension of a row of yours that ended without its criterion (benchmarks/extension.py).
    extension: dict[str, Any] | None = None


class Fitting:
    """The training half of `Matrix`: what it needs of the matrix is declared here, set there."""

    tier: str
    progress: Callable[[str], None] | None
    progress_every: float
    cell_timeout: float
    lr_multiples: tuple[float, ...]
    early_stop: bool
    epochs_scale: float

    def data(self, task: Task, seed: int) -> Data:
        raise NotImplementedError

    def level(self, task: Task, seed: int) -> Level | None:
        raise NotImplementedError

    def _fit(self, adapter: Adapter, task: Task, seed: int, spent: float = 0.0) -> Trained:
        """Train one model (under --lr-sweep, one per learning rate, keeping the best); `spent`
        seconds of the cell's timeout went to its earlier seeds."""
        data = self.data(task, seed)
        budget = task.budget(self.tier)
        if self.epochs_scale != 1.0:
            budget = dataclasses.replace(budget, max_epochs=max(1, math.ceil(budget.max_epochs * self.epochs_scale)))
        if self.lr_multiples:
            trained, budget = self._sweep(adapter, task, seed, budget, spent, self.lr_multiples)
        else:
            trained = self._fit_at(adapter, task, seed, budget, spent)
            # A row of yours stuck at the recipe's rate is tried at others; the built-ins' rates are their calibration.
            why = None if adapter.name in BUILTINS else rescue(trained, task, data, self.tier, self.level(task, seed))
            if why is not None:
                trained, budget = self._sweep(adapter, task, seed, budget, spent, (1.0, *RESCUE), trained, why)
        if adapter.name not in BUILTINS:  # the built-ins' budgets are their calibration
            label = f"{adapter.name} on {task.id} (seed {seed}, extended)"
            more = lambda extra: self._stop(task, seed, extra, spent + trained.log.seconds, label, False)[0]  # noqa: E731
            extend(trained, task, data, self.tier, budget, more)
        return trained

    def _sweep(
        self,
        adapter: Adapter,
        task: Task,
        seed: int,
        budget: Budget,
        spent: float,
        multiples: tuple[float, ...],
        done: Trained | None = None,
        why: str | None = None,
    ) -> tuple[Trained, Budget]:
        """One model per multiple of the budget's rate, the best kept (benchmarks/sweep.py), with its
        `lr_sweep`; and its budget. `done` is the model already trained at the recipe's rate, and `why`
        says why a rescue (benchmarks/extension.py) tries the others."""
        aside = ", rescue" if why else ""

        def at(rate: Budget, before: float) -> Trained:
            if done is not None and rate.learning_rate == budget.learning_rate:
                return done
            return self._fit_at(adapter, task, seed, rate, spent + before, f", lr {rate.learning_rate:.3g}{aside}")

        trained, summary = sweep(task, self.data(task, seed), budget, multiples, at)
        trained.sweep = summary if why is None else {**summary, "why": f"at the recipe's rate: {why}"}
        return trained, dataclasses.replace(budget, learning_rate=budget.learning_rate * summary["multiple"])

    def _fit_at(self, adapter: Adapter, task: Task, seed: int, budget: Budget, spent: float, lr: str = "") -> Trained:
        """One model of `seed` at `budget`: the task's `restarts` runs at most (benchmarks/restarts.py)."""

        def run(run_seed: int, before: float) -> Trained:
            again = f", run seed {run_seed}" if run_seed != seed else ""
            return self._fit_run(adapter, task, seed, run_seed, budget, spent + before, f"{lr}{again}")

        trained, summary = restart(task, self.data(task, seed), seed, run)
        trained.restarts = summary
        return trained

    def _fit_run(
        self, adapter: Adapter, task: Task, seed: int, run_seed: int, budget: Budget, spent: float, aside: str
    ) -> Trained:
        """One training run from `run_seed`; `aside` (its rate, its run seed) goes in the progress line."""
        data = self.data(task, seed)
        model = adapter.build(dataclasses.replace(task.spec, sequence_length=int(data.train.x.shape[1])), run_seed)
        label = f"{adapter.name} on {task.id} (seed {seed}{aside})"
        stop, early = self._stop(task, seed, budget, spent, label, self.early_stop)
        log = model.fit(data.train, data.valid, budget, stop)
        trained = Trained(model, log, adapter)
        if early is not None and early.reason is not None:
            trained.log = dataclasses.replace(log, stop_reason="early_stop", time_to_criterion_s=None)
            trained.early_stop = early.reason
        return trained

    def _stop(
        self, task: Task, seed: int, budget: Budget, spent: float, label: str, early: bool
    ) -> tuple[Callable[[Any], bool], EarlyStop | None]:
        """The task's criterion as `fit` gets it, with the progress line, the early stop (when
        `early`) and the cell timeout's projection around it; and the early stop, to ask it why."""
        data = self.data(task, seed)
        stop: Callable[[Any], bool] = lambda m: task.stop(m, data)  # noqa: E731
        if self.progress is not None:
            stop = Criterion(stop, label, self.progress, self.progress_every)
        pace = task.budget(self.tier).learning_rate / budget.learning_rate  # > 1 for a slower rate of --lr-sweep
        fate = EarlyStop(stop, self.level(task, seed), self.tier, task.id, budget.max_epochs, pace) if early else None
        stop = fate or stop
        if self.cell_timeout:
            stop = Projection(stop, budget.max_epochs, self.cell_timeout, spent)
        return stop, fate
