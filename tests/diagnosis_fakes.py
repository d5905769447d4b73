"""Fake adapters for the training diagnosis and the time projection (issue 15): they never learn
(a counter that stops after one step, so the counting tasks' criterion is never met) and train
through the shared epoch loop with a scripted loss per epoch, or with slow epochs."""

from __future__ import annotations

import time
from typing import Any

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
