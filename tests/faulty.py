"""Fake adapters that break in the ways a real implementation can, for the fault-isolation tests:
a loss that goes NaN, a forward that raises, a training that hangs or kills the process, a
framework that will not import. Each must become that cell's failure or error with the reason, and the run go on."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import FitLog
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split
from rnn_behaviour.tasks.counting import RunningSum
from tests.fakes import CountingOracle, _FakeModel


class _Diverged(_FakeModel):
    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        return FitLog(epochs=3, seconds=0.0, loss_history=[1.0, 1e30, float("nan")], stop_reason="non_finite_loss")

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y, state = super().predict(x, state)
        return np.full_like(y, np.nan), state


class NaNLoss(CountingOracle):
    """Its loss goes NaN in the third epoch and its outputs are NaN: every gated check fails."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Diverged(RunningSum(per_step=spec.return_sequences))


class _RaisingForward(_FakeModel):
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        raise RuntimeError("boom in forward")


class RaisingForward(CountingOracle):
    """Trains, then raises in every forward: each check is that cell's error."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _RaisingForward(RunningSum(per_step=spec.return_sequences))


class _Hanging(_FakeModel):
    fits = 0

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        _Hanging.fits += 1
        time.sleep(3600)
        raise AssertionError("unreachable: the cell timeout ends the sleep")


class Hanging(CountingOracle):
    """Its training never ends: `--cell-timeout` makes it that cell's error, once per model."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Hanging(RunningSum(per_step=spec.return_sequences))


class _Aborting(_FakeModel):
    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        os.abort()  # what a segfault in native code does to the process: no Python exception


class Aborting(CountingOracle):
    """Its training kills the process: under pytest-xdist each model crashes one worker, and every
    check of it is that cell's error."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Aborting(RunningSum(per_step=spec.return_sequences))
