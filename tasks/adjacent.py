"""Adjacent sums, "selective forgetting": seed 002 (TensorFlow LSTM, in Chinese).

The seed trains LSTM(10) -> linear on y_t = x_{t-1} + x_t and asks whether the LSTM finds the
rule: it should keep the previous input and forget the one before it. It tests two sequences,
[1,2,3,4] -> [1,3,5,7] and [4,5,6,7] -> [4,9,11,13]. The seed trains on only three sequences;
here the training set is 1000 random integer sequences so that the result is about the network,
not about luck with three samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckResult,
    ConstantMean,
    Data,
    LinearMemoryless,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    mse,
    nan_max,
    tiered,
)

LENGTH = 8
MAX_VALUE = 9
N_TRAIN, N_VALID, N_TEST = 1000, 200, 500
HELD_OUT_MSE = 0.05
CRITERION_MSE = 0.02
SEED_EXAMPLES = (((1, 2, 3, 4), (1, 3, 5, 7)), ((4, 5, 6, 7), (4, 9, 11, 13)))
#: How far x_{t-2} is moved when testing that y_t forgets it.
NUDGE = 5.0


def _adjacent(x: np.ndarray) -> np.ndarray:
    previous = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    return x + previous


class AdjacentOracle:
    """y_t = x_{t-1} + x_t exactly, with the last input as its state."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        last = np.zeros((len(x), 1, x.shape[2]), np.float32) if state is None else np.asarray(state)[:, None, :]
        previous = np.concatenate([last, x[:, :-1]], axis=1)
        return (x + previous).astype(np.float32), x[:, -1].copy()


class RunningTotal:
    """Null control: remembers everything (the running sum), so it does not forget x_{t-2}."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y = np.cumsum(x, axis=1, dtype=np.float32)
        return y, y[:, -1].copy()


@dataclass(frozen=True)
class AdjacentSum(Task):
    """Seed 002: y_t = x_{t-1} + x_t on integer sequences; does the LSTM forget selectively?

    `seed_examples`: the seed's two test sequences within 0.5 at every step; `held_out`: MSE on
    fresh sequences; `forgets`: moving x_{t-2} by 5 moves y_t (and every later output) by less
    than 0.2 on average: what is two steps back has been forgotten.
    """

    id: str = "adjacent_sum"
    version: int = 1
    tags: tuple[str, ...] = ("seed002", "forgetting")
    spec: ModelSpec = ModelSpec(input_size=1, output_size=1, hidden_size=10, return_sequences=True)
    budgets: Any = field(default_factory=lambda: tiered(100, 200, 400, batch_size=32, learning_rate=1e-2))
    checks: tuple[Check, ...] = (
        Check(
            "seed_examples",
            "max_abs_err_seed_examples",
            0.5,
            False,
            "seed 002",
            "[1,2,3,4] -> [1,3,5,7] and [4,5,6,7] -> [4,9,11,13], every step within 0.5",
        ),
        Check("held_out", "test_mse", HELD_OUT_MSE, False, "seed 002", "MSE on 500 fresh sequences of length 8"),
        Check(
            "forgets",
            "mean_abs_shift_from_x_t_minus_2",
            0.2,
            False,
            "seed 002",
            "moving x_{t-2} by 5 moves y_t and later outputs by < 0.2 on average",
            capability="memory length",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        splits = []
        for n in (N_TRAIN, N_VALID, N_TEST):
            x = rng.integers(0, MAX_VALUE + 1, size=(n, LENGTH, 1)).astype(np.float32)
            splits.append(Split(x, _adjacent(x)))
        return Data.of(splits)

    def stop(self, model: Predictor, data: Data) -> bool:
        return mse(model.predict(data.valid.x)[0], data.valid.y) <= CRITERION_MSE

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check == "seed_examples":
            x = np.array([xs for xs, _ in SEED_EXAMPLES], np.float32)[..., None]
            expected = np.array([ys for _, ys in SEED_EXAMPLES], np.float64)
            got = model.predict(x)[0][..., 0]
            value = float(np.max(np.abs(got - expected)))
            detail = "; ".join(
                f"{list(xs)} -> [{', '.join(f'{v:.2f}' for v in row)}] (want {list(ys)})"
                for (xs, ys), row in zip(SEED_EXAMPLES, got, strict=True)
            )
            return CheckResult(value, gate.passes(value), detail)
        if check == "held_out":
            value = mse(model.predict(data.test.x)[0], data.test.y)
            return CheckResult(value, gate.passes(value))
        if check == "forgets":
            x = data.test.x
            base = model.predict(x)[0].astype(np.float64)
            shifts = []
            for p in range(LENGTH - 2):
                nudged = x.copy()
                nudged[:, p] = (nudged[:, p] + NUDGE) % (MAX_VALUE + 1)
                moved = model.predict(nudged)[0].astype(np.float64)
                shifts.append(np.abs(moved[:, p + 2 :] - base[:, p + 2 :]).mean())
            value = float(np.mean(shifts))
            return CheckResult(value, gate.passes(value), f"largest mean shift at one position: {nan_max(*shifts):.3f}")
        raise TaskError(f"task {self.id!r} has no check {check!r}")

    def oracle(self, data: Data) -> Predictor:
        return AdjacentOracle()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        fit = frozenset({"seed_examples", "held_out"})
        return {
            "constant": NullControl(ConstantMean(data.train), fit),
            "memoryless": NullControl(LinearMemoryless(data.train), fit),
            "running_total": NullControl(RunningTotal(), frozenset({"forgets", "seed_examples"})),
        }
