"""Dyck-1: is the bracket string balanced so far? A counter tracked over long sequences.

Suzgun et al. 2019 ("LSTM networks can perform dynamic counting") train on prefixes of
well-nested bracket strings and ask, at every step, whether the prefix is balanced: the model must
keep the depth (an unbounded counter) and say whether it is zero. Trained at length 40 and gated
at 100 (Suzgun et al. test at 52-100), it tells a counter that generalises from one fitted to the
training depths; the curve goes on to 500. The
balanced positions are rare (a prefix is mostly open), so the score is the balanced accuracy: the
mean of the accuracy on balanced positions and on open ones; otherwise "always open" would score
~90%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckResult,
    Data,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    tiered,
)

OPEN, CLOSE = 0, 1
BALANCED, UNBALANCED = 0, 1
TRAIN_LENGTH = 40
#: The length `longer` is gated at, and the curve's (to 500, reported, not gated: a counter fitted at
#: 40 drifts by 500 on some seeds of a correct LSTM; see `Dyck1`).
GATE_LENGTHS = (100,)
CURVE_LENGTHS = (40, 60, 100, 200, 300, 500)
N_TRAIN, N_VALID, N_TEST, N_LONG = 2000, 300, 500, 300
#: Training stops early only on a perfect validation split: a model stopped at 0.999 (at length 40)
#: generalised worse in v1 (seed 0, torch-lstm: 0.964 at 500 vs 0.982 after 15 epochs).
CRITERION = 1.0


def prefixes(rng: np.random.Generator, n: int, length: int) -> Split:
    """Prefixes of well-nested strings: a random walk of the depth that opens at depth 0 and
    otherwise opens or closes with equal chance; the label at each step is whether the prefix up
    to it is balanced (depth 0)."""
    coins = rng.random((n, length)) < 0.5
    tokens = np.empty((n, length), np.int64)
    depth = np.zeros(n, np.int64)
    depths = np.empty((n, length), np.int64)
    for t in range(length):
        close = (depth > 0) & coins[:, t]
        tokens[:, t] = np.where(close, CLOSE, OPEN)
        depth = depth + np.where(close, -1, 1)
        depths[:, t] = depth
    return Split(np.eye(2, dtype=np.float32)[tokens], np.where(depths == 0, BALANCED, UNBALANCED))


def balanced_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean of the accuracy on balanced positions and on open ones."""
    predicted = np.argmax(probabilities, axis=-1)
    rates = [float(np.mean(predicted[labels == c] == c)) for c in (BALANCED, UNBALANCED) if np.any(labels == c)]
    return float(np.mean(rates))


class DepthCounter:
    """The oracle: counts the depth (its state); `horizon` is the null that stops counting after
    that many steps of a call (right at the training length, wrong beyond it)."""

    def __init__(self, horizon: int | None = None) -> None:
        self.horizon = horizon

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        tokens = np.argmax(x, axis=-1)
        depth = np.zeros(len(x), np.int64) if state is None else np.asarray(state, np.int64).copy()
        labels = np.empty(tokens.shape, np.int64)
        for t in range(tokens.shape[1]):
            if self.horizon is None or t < self.horizon:
                depth = np.maximum(depth + np.where(tokens[:, t] == OPEN, 1, -1), 0)
            labels[:, t] = np.where(depth == 0, BALANCED, UNBALANCED)
        return np.eye(2, dtype=np.float32)[labels], depth


class LastToken:
    """The memoryless baseline: "balanced" after a closing bracket, "open" after an opening one
    (the best guess from the current token alone)."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        tokens = np.argmax(x, axis=-1)
        return np.eye(2, dtype=np.float32)[np.where(tokens == CLOSE, BALANCED, UNBALANCED)], None


class AlwaysOpen:
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return np.broadcast_to(np.eye(2, dtype=np.float32)[UNBALANCED], (*x.shape[:2], 2)), None


@dataclass(frozen=True)
class Dyck1(Task):
    """Dyck-1 (Suzgun et al. 2019, "LSTM networks can perform dynamic counting"): at every step of
    a prefix of a well-nested bracket string, balanced or open.

    `fit`: balanced accuracy on fresh length-40 prefixes; `longer`: balanced accuracy at length
    100, trained at 40 only, with the accuracy-vs-length curve to 500.

    The curve past 100 is reported, not gated. A float counter fitted at length 40 is exact only to
    the precision those depths demand: over 20 seeds of torch LSTM at standard (v1, gated at 500)
    the balanced accuracy at 500 ranged 0.855-0.996, and 60 epochs instead of 15 did not narrow it
    (seed 2: 0.913 vs 0.965). At 100 (v2's calibration, 20 seeds) torch-lstm's worst is 0.991 and
    torch-gru passes 19/20 (worst 0.972). A gate at 500 would fail correct LSTMs on the luck of the
    seed.
    """

    id: str = "dyck1"
    version: int = 2
    tags: tuple[str, ...] = ("literature", "state tracking", "counting")
    spec: ModelSpec = ModelSpec(input_size=2, output_size=2, hidden_size=32, return_sequences=True, head="softmax")
    budgets: Any = field(
        default_factory=lambda: tiered(40, 40, 80, batch_size=64, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = (
        Check("fit", "balanced_accuracy", 0.99, True, "Suzgun et al. 2019", "balanced accuracy on length-40 prefixes"),
        Check(
            "longer",
            "balanced_accuracy_len100",
            0.98,
            True,
            "Suzgun et al. 2019",
            "balanced accuracy at length 100, trained at 40 only; the curve (40..500) is reported",
            capability="length generalisation",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        train, valid, test = (prefixes(rng, n, TRAIN_LENGTH) for n in (N_TRAIN, N_VALID, N_TEST))
        by_length = {length: prefixes(rng, N_LONG, length) for length in CURVE_LENGTHS}
        return Data(train, valid, test, probes={"by_length": by_length})

    def memoryless(self, data: Data) -> Predictor:
        return LastToken()

    def stop(self, model: Predictor, data: Data) -> bool:
        return balanced_accuracy(model.predict(data.valid.x)[0], data.valid.y) >= CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check == "fit":
            value = balanced_accuracy(model.predict(data.test.x)[0], data.test.y)
            return CheckResult(value, gate.passes(value))
        if check != "longer":
            raise TaskError(f"task {self.id!r} has no check {check!r}")
        curve = {}
        for length, split in data.probes["by_length"].items():
            curve[length] = balanced_accuracy(model.predict(split.x)[0], split.y)
        value = min(curve[length] for length in GATE_LENGTHS)
        detail = ", ".join(f"{curve[length]:.4f} at {length}" for length in CURVE_LENGTHS)
        series = {"length": [float(n) for n in curve], "balanced_accuracy": list(curve.values())}
        return CheckResult(value, gate.passes(value), f"balanced accuracy {detail}", curve=series)

    def oracle(self, data: Data) -> Predictor:
        return DepthCounter()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "memoryless": NullControl(LastToken(), frozenset({"fit", "longer"})),
            "always_open": NullControl(AlwaysOpen(), frozenset({"fit", "longer"})),
            "stops_counting_after_train_length": NullControl(DepthCounter(horizon=TRAIN_LENGTH), frozenset({"longer"})),
        }
