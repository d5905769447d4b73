"""Sine forecasting by autoregressive rollout: seed 003 (LSTM fitting sin/cos, in Chinese).

The seed makes windows of 20 values of sin over [-50π, 50π) in steps of 0.1, trains
LSTM(32, tanh) -> Dense(1, tanh) to predict the next value (Adam, MSE, batch 32, 25 epochs),
then forecasts [0, 10π) from the first 20 true values, feeding each prediction back in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckResult,
    Data,
    LinearMemoryless,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    mse,
    tiered,
)

STEP = 0.1
N_STEPS = 20
N_VALID = 300
CRITERION_MSE = 1e-5


def windows(series: np.ndarray) -> Split:
    idx = np.arange(len(series) - N_STEPS)[:, None] + np.arange(N_STEPS)[None, :]
    return Split(series[idx][..., None].astype(np.float32), series[N_STEPS:, None].astype(np.float32))


def rollout(model: Predictor, start: np.ndarray, steps: int) -> np.ndarray:
    """Forecast `steps` values after `start` (N_STEPS true values), feeding predictions back."""
    values = list(np.asarray(start, np.float32))
    for _ in range(steps):
        window = np.asarray(values[-N_STEPS:], np.float32).reshape(1, N_STEPS, 1)
        values.append(float(model.predict(window)[0].ravel()[0]))
    return np.asarray(values[N_STEPS:])


class SineRecurrence:
    """The oracle: sin(t+h) = 2cos(h)·sin(t) − sin(t−h), exact for any sine of step h."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return (2 * np.cos(STEP) * x[:, -1] - x[:, -2]).astype(np.float32), None


class Persistence:
    """Null control: the next value is the last one."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return x[:, -1].astype(np.float32), None


@dataclass(frozen=True)
class SineRollout(Task):
    """Seed 003: next value of a sine from a window of 20, then a closed-loop forecast.

    `one_step`: MSE of next-value predictions over the test range; `rollout`: RMSE of the
    autoregressive forecast of [0, 10π) from its first 20 true values (the seed's plot);
    `beats_persistence`: that RMSE over the RMSE of repeating the last true value.
    """

    id: str = "sine_rollout"
    version: int = 1
    tags: tuple[str, ...] = ("seed003", "forecasting", "rollout")
    spec: ModelSpec = ModelSpec(input_size=1, output_size=1, hidden_size=32, return_sequences=False, head="tanh")
    budgets: Any = field(default_factory=lambda: tiered(50, 50, 100, batch_size=32, learning_rate=3e-3))
    checks: tuple[Check, ...] = (
        Check("one_step", "test_mse", 1e-4, False, "seed 003 §6.3", "MSE of one-step predictions on [0, 10π)"),
        Check(
            "rollout",
            "rollout_rmse",
            0.25,
            False,
            "seed 003 §6.3",
            "RMSE of the closed-loop forecast of [0, 10π) (persistence: 1.2)",
        ),
        Check(
            "beats_persistence",
            "rmse_ratio_vs_persistence",
            0.5,
            False,
            "seed 003 §6.3",
            "rollout RMSE / RMSE of repeating the last true value",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        samples = windows(np.sin(np.arange(-50 * np.pi, 50 * np.pi, STEP)))
        order = rng.permutation(len(samples))
        valid, train = order[:N_VALID], order[N_VALID:]
        test_series = np.sin(np.arange(0, 10 * np.pi, STEP)).astype(np.float32)
        return Data(
            Split(samples.x[train], samples.y[train]),
            Split(samples.x[valid], samples.y[valid]),
            windows(test_series),
            probes={"series": test_series},
        )

    def stop(self, model: Predictor, data: Data) -> bool:
        return mse(model.predict(data.valid.x)[0], data.valid.y) <= CRITERION_MSE

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check == "one_step":
            value = mse(model.predict(data.test.x)[0], data.test.y)
            return CheckResult(value, gate.passes(value))
        if check not in ("rollout", "beats_persistence"):
            raise TaskError(f"task {self.id!r} has no check {check!r}")
        series = data.probes["series"]
        truth = series[N_STEPS:].astype(np.float64)
        forecast = rollout(model, series[:N_STEPS], len(truth))
        rmse = float(np.sqrt(np.mean((forecast - truth) ** 2)))
        persistence = float(np.sqrt(np.mean((series[N_STEPS - 1] - truth) ** 2)))
        value = rmse if check == "rollout" else rmse / persistence
        curve = {
            "step": [float(i) for i in range(1, len(truth) + 1)],
            "forecast": [float(v) for v in forecast],
            "truth": [float(v) for v in truth],
        }
        detail = f"rollout RMSE {rmse:.3g}, persistence RMSE {persistence:.3g}"
        return CheckResult(value, gate.passes(value), detail, curve=curve)

    def oracle(self, data: Data) -> Predictor:
        return SineRecurrence()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        every = frozenset(c.name for c in self.checks)
        return {
            "persistence": NullControl(Persistence(), every),
            "memoryless": NullControl(LinearMemoryless(data.train), every),
        }
