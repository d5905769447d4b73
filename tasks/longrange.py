"""The long-range classics: the adding problem and copy memory.

Seed 003 says plain RNNs lose long dependencies to vanishing gradients and that LSTM's gates
fix it; these two problems from the literature measure exactly that, at a length set by the tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    UNSCORED,
    Check,
    CheckResult,
    ConstantMean,
    Data,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    mse,
    tiered,
)

# --- adding ------------------------------------------------------------------------------------

ADDING_T = {"smoke": 50, "standard": 100, "full": 200}
ADDING_TRAIN, ADDING_VALID, ADDING_TEST = 10000, 500, 1000
ADDING_MSE = 0.01
ADDING_CRITERION = 0.005


def adding_batch(rng: np.random.Generator, n: int, length: int) -> Split:
    """Values U(0,1) and a marker channel with one 1 in each half; y = the two marked values' sum."""
    values = rng.uniform(0, 1, size=(n, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length), np.float32)
    markers[np.arange(n), first] = 1
    markers[np.arange(n), second] = 1
    y = (values[np.arange(n), first] + values[np.arange(n), second])[:, None]
    return Split(np.stack([values, markers], axis=-1), y.astype(np.float32))


class MarkedSum:
    """The adding oracle: sums the marked values exactly (state: the sum so far)."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        start = np.zeros(len(x), np.float32) if state is None else np.asarray(state)
        total = start + np.sum(x[..., 0] * x[..., 1], axis=1)
        return total[:, None].astype(np.float32), total


class SecondHalfOnly(MarkedSum):
    """Null control: remembers only the second half, as a short memory would."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        masked = x.copy()
        masked[:, : x.shape[1] // 2, 1] = 0
        y, total = super().predict(masked, state)
        return y + 0.5, total


@dataclass(frozen=True)
class Adding(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): two channels, values
    U(0,1) and a marker with one 1 in each half; the target is the sum of the two marked values.
    Predicting 1 always scores MSE 1/6 ≈ 0.167, the memoryless baseline. T = 50 / 100 / 200 by
    tier; plain tanh RNNs are expected to fail at each (vanishing gradients, seed 003 §2)."""

    id: str = "adding"
    version: int = 1
    tags: tuple[str, ...] = ("literature", "seed003", "memory length", "long-range")
    spec: ModelSpec = ModelSpec(input_size=2, output_size=1, hidden_size=64, return_sequences=False)
    budgets: Any = field(default_factory=lambda: tiered(15, 30, 60, batch_size=64, learning_rate=3e-3))
    checks: tuple[Check, ...] = (
        Check("mse", "test_mse", ADDING_MSE, False, "Le et al. 2015", "test MSE (memoryless: 0.167)"),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        length = ADDING_T[tier]
        return Data.of(adding_batch(rng, n, length) for n in (ADDING_TRAIN, ADDING_VALID, ADDING_TEST))

    def stop(self, model: Predictor, data: Data) -> bool:
        return mse(model.predict(data.valid.x)[0], data.valid.y) <= ADDING_CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        value = mse(model.predict(data.test.x)[0], data.test.y)
        return CheckResult(value, gate.passes(value), f"T = {data.test.x.shape[1]}")

    def oracle(self, data: Data) -> Predictor:
        return MarkedSum()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "constant": NullControl(ConstantMean(data.train), frozenset({"mse"})),
            "short_memory": NullControl(SecondHalfOnly(), frozenset({"mse"})),
        }


# --- copy memory -------------------------------------------------------------------------------

#: The longest delay T per tier (delays are drawn from 1..T per sequence) and the symbols to recall.
COPY_T = {"smoke": 20, "standard": 50, "full": 100}
COPY_K = {"smoke": 3, "standard": 3, "full": 5}
N_SYMBOLS = 8
BLANK, DELIMITER = 0, N_SYMBOLS + 1
N_CLASSES = N_SYMBOLS + 2
COPY_TRAIN, COPY_VALID, COPY_TEST = 4000, 500, 1000
#: Sequences per delay in the probe behind the recall-vs-delay curve and `longest_delay`.
COPY_PER_DELAY = 40
#: `longest_delay` scores the delays d >= LONGEST * T.
LONGEST = 0.8
COPY_CRITERION = 0.995


def copy_batch(rng: np.random.Generator, n: int, symbols: int, longest: int, delays: np.ndarray | None = None) -> Split:
    """`symbols` symbols of 8, then d blanks with d ~ U{1..longest} per sequence (or `delays`),
    a delimiter, `symbols` blank steps in which the target is the symbols in order; blanks pad
    the sequence to one length. Every other step's target is UNSCORED: with a blank to predict
    there, those steps outweigh the recall (3 of 57 at T = 50) and torch's LSTM stays at chance
    (seed 0, T = 20: recall 0.14 after 800 steps of batch 128; 0.999 when only the recall is
    scored)."""
    length = 2 * symbols + longest + 1
    if delays is None:
        delays = rng.integers(1, longest + 1, size=n)
    given = rng.integers(1, N_SYMBOLS + 1, size=(n, symbols))
    rows = np.arange(n)[:, None]
    tokens = np.zeros((n, length), np.int64)
    tokens[:, :symbols] = given
    delimiter = symbols + np.asarray(delays)
    tokens[rows[:, 0], delimiter] = DELIMITER
    target = np.full((n, length), UNSCORED, np.int64)
    target[rows, delimiter[:, None] + 1 + np.arange(symbols)] = given
    return Split(np.eye(N_CLASSES, dtype=np.float32)[tokens], target)


def recall_steps(x: np.ndarray, symbols: int) -> np.ndarray:
    """Index (rows, steps) of each sequence's recall steps: the `symbols` steps after its delimiter."""
    delimiter = np.argmax(np.argmax(x, axis=-1) == DELIMITER, axis=1)
    return delimiter[:, None] + 1 + np.arange(symbols)


def recall_accuracy(model: Predictor, split: Split, symbols: int) -> np.ndarray:
    """Per sequence, the share of its symbols recalled right."""
    probs = model.predict(split.x)[0]
    steps = recall_steps(split.x, symbols)
    rows = np.arange(len(split))[:, None]
    return np.mean(np.argmax(probs[rows, steps], axis=-1) == split.y[rows, steps], axis=1)


class Copier:
    """The copy oracle: repeats the first symbols after the delimiter. With `span`, it is the null
    control whose memory lasts `span` steps: past that delay it guesses symbol 1."""

    def __init__(self, symbols: int, span: int | None = None) -> None:
        self.symbols, self.span = symbols, span

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        tokens = np.argmax(x, axis=-1)
        steps = recall_steps(x, self.symbols)
        rows = np.arange(len(x))[:, None]
        recalled = tokens[:, : self.symbols]
        if self.span is not None:
            delay = steps[:, :1] - 1 - self.symbols
            recalled = np.where(delay <= self.span, recalled, 1)
        out = np.zeros(tokens.shape, np.int64)
        out[rows, steps] = recalled
        return np.eye(N_CLASSES, dtype=np.float32)[out], None


class BlankThenGuess:
    """The memoryless baseline and null: blanks, then symbol 1 at every recall step (the delimiter
    says when to recall, nothing says what)."""

    def __init__(self, symbols: int) -> None:
        self.symbols = symbols

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        out = np.zeros(x.shape[:2], np.int64)
        out[np.arange(len(x))[:, None], recall_steps(x, self.symbols)] = 1
        return np.eye(N_CLASSES, dtype=np.float32)[out], None


@dataclass(frozen=True)
class CopyMemory(Task):
    """Copy memory (Arjovsky et al. 2016; seed 003 §2's long dependencies), with the delay drawn
    per sequence as in bsuite's `memory_len` sweep: K symbols of 8 (3 at smoke and standard, 5 at
    full), d ~ U{1..T} blanks (T = 20 / 50 / 100 by tier), a delimiter, then the K symbols to
    recall. A fixed long delay gives no gradient to start from (issue 16: chance after 3,700
    steps at a fixed delay of 20); delays drawn per sequence, with only the recall steps scored,
    learn in a few thousand Adam steps and still hold the longest. `recall` is over every delay,
    `longest_delay` over d >= 0.8 T; the record carries recall vs delay for 1..T. The tanh RNN is
    expected to fail (vanishing gradients)."""

    id: str = "copy_memory"
    version: int = 2
    tags: tuple[str, ...] = ("literature", "seed003", "memory length", "long-range")
    spec: ModelSpec = ModelSpec(
        input_size=N_CLASSES, output_size=N_CLASSES, hidden_size=64, return_sequences=True, head="softmax"
    )
    budgets: Any = field(
        default_factory=lambda: tiered(30, 60, 120, batch_size=32, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = (
        Check(
            "recall",
            "recall_accuracy",
            0.99,
            True,
            "Arjovsky et al. 2016",
            "accuracy on the recalled symbols over every delay 1..T (chance: 1/8)",
        ),
        Check(
            "longest_delay",
            "recall_accuracy_longest",
            0.98,
            True,
            "bsuite memory_len (Osband et al. 2020)",
            "accuracy on the recalled symbols after the longest delays, d >= 0.8 T (chance: 1/8)",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        k, t = COPY_K[tier], COPY_T[tier]
        splits = [copy_batch(rng, n, k, t) for n in (COPY_TRAIN, COPY_VALID, COPY_TEST)]
        delays = np.repeat(np.arange(1, t + 1), COPY_PER_DELAY)
        return Data.of(splits, by_delay=copy_batch(rng, len(delays), k, t, delays), delays=delays)

    def stop(self, model: Predictor, data: Data) -> bool:
        return float(np.mean(recall_accuracy(model, data.valid, _symbols(data)))) >= COPY_CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        k, t = COPY_K[tier], COPY_T[tier]
        if check == "recall":
            value = float(np.mean(recall_accuracy(model, data.test, k)))
            return CheckResult(value, gate.passes(value), f"{k} symbols, delays 1..{t}")
        if check != "longest_delay":
            raise TaskError(f"task {self.id!r} has no check {check!r}")
        per_sequence = recall_accuracy(model, data.probes["by_delay"], k)
        delays = data.probes["delays"]
        curve = [float(np.mean(per_sequence[delays == d])) for d in range(1, t + 1)]
        longest = delays >= LONGEST * t
        value = float(np.mean(per_sequence[longest]))
        worst = 1 + int(np.argmin(curve))
        return CheckResult(
            value,
            gate.passes(value),
            f"{k} symbols, delays {int(delays[longest].min())}..{t}; worst {curve[worst - 1]:.3f} at delay {worst}",
            curve={"delay": [float(d) for d in range(1, t + 1)], "recall": curve},
        )

    def memoryless(self, data: Data) -> Predictor:
        return BlankThenGuess(_symbols(data))

    def oracle(self, data: Data) -> Predictor:
        return Copier(_symbols(data))

    def nulls(self, data: Data) -> dict[str, NullControl]:
        k, t = _symbols(data), _longest(data)
        return {
            "blank_then_guess": NullControl(BlankThenGuess(k), frozenset({"recall", "longest_delay"})),
            "short_memory": NullControl(Copier(k, span=int(LONGEST * t) - 1), frozenset({"longest_delay"})),
        }


def _symbols(data: Data) -> int:
    """K, read off the data: a target row holds the K recalled symbols and blanks."""
    return int(np.count_nonzero(data.valid.y[0] > 0))


def _longest(data: Data) -> int:
    """T, read off the data: a sequence is K symbols, T steps of delay and padding, the delimiter, K."""
    return int(data.valid.x.shape[1]) - 2 * _symbols(data) - 1
