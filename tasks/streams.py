"""Stateful streams: seed 004 (a Q&A on Keras's stateful LSTM, in Japanese) and seed 001's
stateful part.

Seed 004 asks what `stateful=True` means and answers: the final state of one batch is the initial
state of the next, which is how to learn and predict *online* with, e.g., 400 stocks as a batch
of 400 parallel streams with 8 features each. `moving_average_stateful` is the smallest problem
that needs the carried state; `streams` is the seed's 400 x 8 set-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckNotApplicable,
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
from rnn_behaviour.tasks.rounding import Rounding, float64_twin, second_opinion

# --- moving average ----------------------------------------------------------------------------

MA_STREAMS, MA_TRAIN_STEPS, MA_VALID_STEPS, MA_TEST_STEPS = 8, 400, 200, 400
MA_MSE = 0.005
MA_CRITERION = 0.002


def _moving_average(x: np.ndarray) -> np.ndarray:
    previous = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    return ((x + previous) / 2).astype(np.float32)


class PairMean:
    """The oracle: (x_{t-1} + x_t) / 2 with the last input as its state."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        last = np.zeros_like(x[:, :1]) if state is None else np.asarray(state)[:, None, :]
        previous = np.concatenate([last, x[:, :-1]], axis=1)
        return ((x + previous) / 2).astype(np.float32), x[:, -1].copy()


class PairMeanReset(PairMean):
    """Null control: drops the state it is given."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return super().predict(x, None)


def feed_one_step_at_a_time(model: Predictor, x: np.ndarray, carry: bool) -> np.ndarray:
    """Feed a batch of streams one step per call, with the returned state or from zero."""
    state, outputs = None, []
    for t in range(x.shape[1]):
        y, new_state = model.predict(x[:, t : t + 1], state if carry else None)
        outputs.append(y)
        state = new_state
    return np.concatenate(outputs, axis=1)


@dataclass(frozen=True)
class MovingAverageStateful(Task):
    """Seed 004's stateful recipe on the smallest problem that needs it: a noise stream and the
    mean of its last two values, learned with stateful training (8 streams as one batch, chunks of
    10 steps, the state carried between chunks).

    `stateful`: fed one step per call with the returned state, the model tracks the mean.
    `stateless_window1`: the control, the same stream fed one step per call from the zero state;
    it must fail (no state, no x_{t-1}), which proves the state is what solves the task.
    """

    id: str = "moving_average_stateful"
    version: int = 1
    tags: tuple[str, ...] = ("seed004", "seed001", "state contract", "stateful", "state")
    spec: ModelSpec = ModelSpec(
        input_size=1, output_size=1, hidden_size=20, return_sequences=True, stateful=True, batch_size=MA_STREAMS
    )
    budgets: Any = field(
        default_factory=lambda: tiered(
            60, 150, 300, batch_size=MA_STREAMS, learning_rate=1e-2, shuffle=False, window=10
        )
    )
    checks: tuple[Check, ...] = (
        Check(
            "stateful",
            "mse_one_step_per_call",
            MA_MSE,
            False,
            "seed 004",
            "a test stream fed one step per call with the returned state (memoryless: 1/12)",
        ),
        Check(
            "stateless_window1",
            "mse_one_step_from_zero_state",
            MA_MSE,
            False,
            "seed 004",
            "control: the same stream fed one step per call from the zero state must fail",
            control=True,
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        splits = []
        for n, steps in ((MA_STREAMS, MA_TRAIN_STEPS), (MA_STREAMS, MA_VALID_STEPS), (1, MA_TEST_STEPS)):
            x = rng.uniform(-1, 1, size=(n, steps, 1)).astype(np.float32)
            splits.append(Split(x, _moving_average(x)))
        return Data.of(splits)

    def stop(self, model: Predictor, data: Data) -> bool:
        return mse(model.predict(data.valid.x)[0], data.valid.y) <= MA_CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check not in ("stateful", "stateless_window1"):
            raise TaskError(f"task {self.id!r} has no check {check!r}")
        y = feed_one_step_at_a_time(model, data.test.x, carry=check == "stateful")
        value = mse(y[:, 1:], data.test.y[:, 1:])
        return CheckResult(value, gate.passes(value))

    def oracle(self, data: Data) -> Predictor:
        return PairMean()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "memoryless": NullControl(LinearMemoryless(data.train), frozenset({"stateful"})),
            "state_reset": NullControl(PairMeanReset(), frozenset({"stateful"})),
        }


# --- 400 streams x 8 features --------------------------------------------------------------------

N_STREAMS, N_FEATURES = 400, 8
TRAIN_STEPS, VALID_STEPS, TEST_STEPS, BURN_IN = 120, 60, 60, 10
NOISE = 0.05
SAME_OUTPUT_ATOL = 1e-5


def _stream_block(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines, one frequency per feature and one phase per (stream, feature); the target
    is every feature's next value."""
    omega = np.linspace(0.15, 0.6, N_FEATURES)
    phase = rng.uniform(0, 2 * np.pi, size=(N_STREAMS, 1, N_FEATURES))
    t = np.arange(steps + 1)[None, :, None]
    series = np.sin(omega * t + phase) + NOISE * rng.standard_normal((N_STREAMS, steps + 1, N_FEATURES))
    return series[:, :-1].astype(np.float32), series[:, 1:].astype(np.float32)


class AutoRegressive:
    """The oracle: per-feature AR(2) by least squares on the training streams (a sine obeys
    x_{t+1} = 2cos(ω)x_t − x_{t−1}), with the last two inputs as its state."""

    def __init__(self, train: Split) -> None:
        x, y = train.x.astype(np.float64), train.y.astype(np.float64)
        self.coef = np.zeros((N_FEATURES, 3))
        for f in range(N_FEATURES):
            design = np.stack([x[:, 1:, f].ravel(), x[:, :-1, f].ravel(), np.ones(x[:, 1:, f].size)], axis=1)
            self.coef[f], *_ = np.linalg.lstsq(design, y[:, 1:, f].ravel(), rcond=None)

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        history = np.zeros((len(x), 2, x.shape[2]), np.float32) if state is None else np.asarray(state)
        full = np.concatenate([history, x], axis=1)
        y = self.coef[:, 0] * full[:, 2:] + self.coef[:, 1] * full[:, 1:-1] + self.coef[:, 2]
        return y.astype(np.float32), full[:, -2:].copy()

    def predict_last(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y, state = self.predict(x, state)
        return y[:, -1], state


class AutoRegressiveReset(AutoRegressive):
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return super().predict(x, None)


class FirstNotLast(AutoRegressive):
    """Null control: a many-to-one path that returns the first step, not the last."""

    def predict_last(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y, state = self.predict(x, state)
        return y[:, 0], state


class StreamPersistence:
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return x.copy(), None


@dataclass(frozen=True)
class Streams(Task):
    """Seed 004: 400 parallel streams x 8 features as one stateful batch, next value of every
    feature at every step.

    `online_equals_offline`: all 400 streams fed one step per call with the returned state give
    the whole-sequence output; `last_is_last`: the many-to-one output (`return_sequences=False`)
    is the last step of the many-to-many output; `beats_persistence`: MSE over the MSE of
    repeating the current value, after a burn-in of 10 steps.
    """

    id: str = "streams"
    version: int = 1
    tags: tuple[str, ...] = ("seed004", "state contract", "stateful", "state", "multivariate")
    spec: ModelSpec = ModelSpec(
        input_size=N_FEATURES,
        output_size=N_FEATURES,
        hidden_size=32,
        return_sequences=True,
        stateful=True,
        batch_size=N_STREAMS,
    )
    budgets: Any = field(
        default_factory=lambda: tiered(60, 150, 300, batch_size=N_STREAMS, learning_rate=1e-2, shuffle=False, window=20)
    )
    checks: tuple[Check, ...] = (
        Check(
            "online_equals_offline",
            "max_abs_diff_online_vs_whole",
            SAME_OUTPUT_ATOL,
            False,
            "seed 004",
            "one step per call with the returned state == the whole sequence in one call (or float32 "
            "rounding only, by the model's float64 twin)",
        ),
        Check(
            "last_is_last",
            "max_abs_diff_many_to_one_vs_last",
            SAME_OUTPUT_ATOL,
            False,
            "seed 004",
            "return_sequences=False output == last step of the return_sequences=True output",
        ),
        Check(
            "beats_persistence",
            "mse_ratio_vs_persistence",
            0.5,
            False,
            "seed 004",
            "test MSE / MSE of repeating the current value, after a 10-step burn-in",
            capability="basics",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        return Data.of(Split(*_stream_block(rng, steps)) for steps in (TRAIN_STEPS, VALID_STEPS, TEST_STEPS))

    def stop(self, model: Predictor, data: Data) -> bool:
        return self._ratio(model, data.valid) <= self.check("beats_persistence").threshold / 2

    @staticmethod
    def _ratio(model: Predictor, split: Split) -> float:
        y = model.predict(split.x)[0]
        return mse(y[:, BURN_IN:], split.y[:, BURN_IN:]) / mse(split.x[:, BURN_IN:], split.y[:, BURN_IN:])

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        x = data.test.x
        if check == "online_equals_offline":
            whole = model.predict(x)[0].astype(np.float64)
            online = feed_one_step_at_a_time(model, x, carry=True)
            value = float(np.max(np.abs(online - whole)))
            detail = f"{x.shape[0]} streams x {x.shape[1]} steps"
            if gate.passes(value) or not np.isfinite(value):
                return CheckResult(value, gate.passes(value), detail)
            opinion = self._rounding(model, x, whole)
            extras = {} if opinion.why_not else {"gap_float64": opinion.gap64, "own_float32": opinion.own32}
            explained = opinion.explains(value)
            return CheckResult(value, explained, f"{detail}; {opinion.describe(value)}", extras,
                               threshold=opinion.gate(gate.threshold) if explained else None)  # fmt: skip
        if check == "last_is_last":
            predict_last = getattr(model, "predict_last", None)
            if predict_last is None:
                raise CheckNotApplicable("the model has no many-to-one path (predict_last)")
            last = predict_last(x)[0].astype(np.float64)
            value = float(np.max(np.abs(last - model.predict(x)[0][:, -1])))
            return CheckResult(value, gate.passes(value))
        if check == "beats_persistence":
            value = self._ratio(model, data.test)
            return CheckResult(value, gate.passes(value))
        raise TaskError(f"task {self.id!r} has no check {check!r}")

    @staticmethod
    def _rounding(model: Predictor, x: np.ndarray, whole: np.ndarray) -> Rounding:
        """Over the gate: is the gap float32 rounding (one step sequential, the whole sequence by
        another algorithm for the same maths, e.g. a log-space scan)? The model's float64 twin
        says (tasks/rounding.py); a model without one keeps the gate."""
        twin = float64_twin(model)
        if isinstance(twin, str):
            return Rounding(why_not=f"the model: {twin}")
        try:
            return second_opinion(whole, twin.predict(x)[0], feed_one_step_at_a_time(twin, x, carry=True))
        except Exception as exc:  # the twin failed where the float32 model ran
            return Rounding(why_not=f"its float64 run raised {type(exc).__name__}")

    def oracle(self, data: Data) -> Predictor:
        return AutoRegressive(data.train)

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "persistence": NullControl(StreamPersistence(), frozenset({"beats_persistence"})),
            "state_reset": NullControl(AutoRegressiveReset(data.train), frozenset({"online_equals_offline"})),
            "first_not_last": NullControl(FirstNotLast(data.train), frozenset({"last_is_last"})),
        }
