"""Fake adapters for the training diagnosis, the time projection (issue 15), the early stop and the
bounded extension (issue 27): they train through the shared epoch loop with a scripted loss per
epoch (or slow epochs), and never learn (a counter that stops after one step, so the counting
tasks' criterion is never met, or the uniform guess), or learn only after a number of epochs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import FitLog, train_loop
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split
from rnn_behaviour.tasks.counting import RunningSum
from tests.fakes import CountingOracle, _FakeModel


class _Scripted(_FakeModel):
    def __init__(self, predictor: Any, losses: Any, seconds_per_epoch: float = 0.0) -> None:
        super().__init__(predictor)
        self.losses, self.seconds_per_epoch = losses, seconds_per_epoch

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        epochs = iter(range(budget.max_epochs))

        def run_epoch() -> float:
            time.sleep(self.seconds_per_epoch)
            return float(self.losses(next(epochs)))

        return train_loop(self, train, budget, stop, run_epoch)


class FlatLoss(CountingOracle):
    """Its loss stays at 100 (far above the counting tasks' memoryless MSE): "did not train"."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Scripted(RunningSum(spec.return_sequences, horizon=1), lambda epoch: 100.0)


class RisingLoss(CountingOracle):
    """Its loss doubles every epoch until it overflows: "diverged"."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Scripted(RunningSum(spec.return_sequences, horizon=1), lambda epoch: 1.0 * 2.0**epoch)


class SlowEpochs(CountingOracle):
    """Each epoch takes 0.3 s, so 100 epochs cannot finish within a few seconds' cell timeout."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Scripted(RunningSum(spec.return_sequences, horizon=1), lambda epoch: 1.0, seconds_per_epoch=0.3)


#: The highest learning rate `RateSensitive` trains at; count_steps' recipe (3e-3) is above it.
RATE_SENSITIVE_MAX = 1e-3


class _RateSensitive(_Scripted):
    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        if budget.learning_rate <= RATE_SENSITIVE_MAX:
            self.predictor, self.losses = RunningSum(self.predictor.per_step), lambda epoch: 0.5 / (1 + epoch)
        return super().fit(train, valid, budget, stop)


class RateSensitive(CountingOracle):
    """Learns to count exactly at a learning rate of at most 1e-3; above it, its loss doubles every
    epoch and it stops after one step ("diverged"): the recipe's rate fails it, --lr-sweep's x0.1
    and x0.3 let it pass."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _RateSensitive(RunningSum(spec.return_sequences, horizon=1), lambda epoch: 1.0 * 2.0**epoch)


class _Uniform:
    """Outputs zeros: uniform probabilities for a softmax task, the mean guess of none for a regression."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        per_step = (len(x), x.shape[1]) if self.spec.return_sequences else (len(x),)
        shape = (*per_step, self.spec.output_size)
        if self.spec.head == "softmax":
            return np.full(shape, 1.0 / self.spec.output_size, np.float32), None
        return np.zeros(shape, np.float32), None


class AtChance(CountingOracle):
    """Its loss stays at 100 on any task and it outputs the uniform guess: a run whose fate is known
    (benchmarks/early_stop.py stops it at its task's milestone)."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Scripted(_Uniform(spec), lambda epoch: 100.0)


class _LearnsLate(_Scripted):
    """Counts from one step back until it has trained `after` epochs in all (over every `fit`), then
    exactly; its loss falls every epoch."""

    def __init__(self, per_step: bool, after: int) -> None:
        super().__init__(RunningSum(per_step, horizon=1), self._loss)
        self.per_step, self.after, self.trained = per_step, after, 0

    def _loss(self, epoch: int) -> float:
        self.trained += 1
        if self.trained > self.after:
            self.predictor = RunningSum(self.per_step)
        return 1.0 / self.trained

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        self.losses = self._loss
        return super().fit(train, valid, budget, stop)


class SlowLearner(CountingOracle):
    """A correct module slower than the budget: still improving at count_steps' smoke cap (100
    epochs), it counts exactly from its 101st epoch. The bounded extension lets it pass."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _LearnsLate(spec.return_sequences, after=100)


class NeverLearns(CountingOracle):
    """Its loss falls every epoch and it never counts: extended once, then failed, the message
    saying what would settle it."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _LearnsLate(spec.return_sequences, after=10**9)


class _Widening(_Scripted):
    """Counts the last 1 + (epochs trained in all) // 20 steps: closer to the whole count the longer
    it trains, never there on count_steps' length 20 within 200 epochs."""

    def __init__(self, per_step: bool) -> None:
        super().__init__(RunningSum(per_step, horizon=1), self._loss)
        self.per_step, self.trained = per_step, 0

    def _loss(self, epoch: int) -> float:
        self.trained += 1
        self.predictor = RunningSum(self.per_step, horizon=1 + self.trained // 20)
        return 1.0 / self.trained


class StillClosing(CountingOracle):
    """A module whose fit moves towards its gate with every epoch and is still short of it after its
    extension: inconclusive, not failed (benchmarks/extension.py)."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Widening(spec.return_sequences)
