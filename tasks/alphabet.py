"""Next letter of the alphabet: seed 001 (Brownlee's "stateful LSTM" tutorial, in Chinese).

Letters are encoded as index/26 and the next letter is one of 26 classes (softmax head,
cross-entropy). The seed's lesson is about encoding: the same three letters given as one
timestep of three features reach ~87%, given as three timesteps of one feature 100%; one letter
alone reaches ~84% in 500 epochs; a stateful model fed one letter per step learns the sequence.
Every alphabet pair is in the training set: the seed scores on the training pairs, and so do we.

The memoryless baseline here is 100%: the last letter decides the next one, so none of these
tasks needs memory in principle; what they show is how the encoding changes what is learned in a
fixed budget, and (`alphabet_stateful.cold_start`) whether a stateful model leans on its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckResult,
    Data,
    LookupMemoryless,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    accuracy,
    tiered,
)

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
N_LETTERS = len(ALPHABET)
WINDOW = 3
MAX_SUBSTRING = 5
#: RNN(32) -> softmax(26) on one letter per step: the model of every window task.
LETTER_SPEC = ModelSpec(input_size=1, output_size=N_LETTERS, hidden_size=32, return_sequences=False, head="softmax")
N_VARLEN_TRAIN, N_VARLEN_VALID, N_VARLEN_TEST = 1000, 300, 500
VARLEN_CRITERION = 0.99


def _encode(indices: np.ndarray) -> np.ndarray:
    return (np.asarray(indices, np.float32) / N_LETTERS).astype(np.float32)


def _decode(values: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(values) * N_LETTERS).astype(int)


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(N_LETTERS, dtype=np.float32)[np.clip(labels, 0, N_LETTERS - 1)]


class NextLetter:
    """The oracle of the window tasks: the letter after the last one seen."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return _one_hot(_decode(x[:, -1, -1]) + 1), None


class MostFrequent:
    """Null control: always the most frequent training label."""

    def __init__(self, train: Split) -> None:
        self.label = int(np.bincount(np.asarray(train.y).ravel().astype(int)).argmax())

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return _one_hot(np.full(len(x), self.label)), None


def _accuracy_check(source: str, threshold: float, description: str) -> tuple[Check, ...]:
    return (Check("accuracy", "accuracy", threshold, True, source, description),)


@dataclass(frozen=True)
class _WindowTask(Task):
    """Shared by the window tasks: every pair once, scored by accuracy on all of them."""

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        x, y = self.pairs()
        split = Split(x, y)
        return Data(split, split, split)

    def stop(self, model: Predictor, data: Data) -> bool:
        return accuracy(model.predict(data.valid.x)[0], data.valid.y) >= 1.0

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        probs = model.predict(data.test.x)[0]
        value = accuracy(probs, data.test.y)
        wrong = [
            f"{''.join(ALPHABET[i] for i in _decode(x.ravel()) if 0 <= i < N_LETTERS)}->{ALPHABET[int(p)]}"
            for x, p, t in zip(data.test.x, np.argmax(probs, axis=-1), data.test.y, strict=True)
            if p != t
        ]
        detail = f"{len(data.test) - len(wrong)}/{len(data.test)} right" + (
            f"; wrong: {', '.join(wrong[:6])}" if wrong else ""
        )
        return CheckResult(value, gate.passes(value), detail)

    def memoryless(self, data: Data) -> Predictor:
        return LookupMemoryless(data.train, N_LETTERS)

    def oracle(self, data: Data) -> Predictor:
        return NextLetter()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {"most_frequent": NullControl(MostFrequent(data.train), frozenset({"accuracy"}))}


def _windows(length: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(N_LETTERS - length)
    x = _encode(starts[:, None] + np.arange(length)[None, :])
    return x, starts + length


@dataclass(frozen=True)
class AlphabetOneChar(_WindowTask):
    """Seed 001, "one-char to one-char mapping": A->B ... Y->Z, one letter as one timestep.

    The seed's LSTM(32) reaches 84% after 500 epochs of batch size 1: with no context, the
    network has to carve 25 classes out of one scalar.
    """

    id: str = "alphabet_one_char"
    version: int = 1
    tags: tuple[str, ...] = ("seed001", "alphabet", "encoding", "fixed-data")
    spec: ModelSpec = LETTER_SPEC
    budgets: Any = field(
        default_factory=lambda: tiered(150, 500, 1000, batch_size=1, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = _accuracy_check("seed 001 §1", 0.4, "accuracy on the 25 pairs (seed: 84%)")

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = _windows(1)
        return x[:, :, None], y


@dataclass(frozen=True)
class AlphabetFeatures(_WindowTask):
    """Seed 001, "three-char feature window": ABC->D with the three letters as 1 timestep x 3
    features. The seed reaches 86.96%: the window is context, but not given as time."""

    id: str = "alphabet_features"
    version: int = 1
    tags: tuple[str, ...] = ("seed001", "alphabet", "encoding", "fixed-data")
    spec: ModelSpec = replace(LETTER_SPEC, input_size=WINDOW)
    budgets: Any = field(
        default_factory=lambda: tiered(150, 500, 1000, batch_size=1, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = _accuracy_check("seed 001 §2", 0.6, "accuracy on the 23 windows (seed: 86.96%)")

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = _windows(WINDOW)
        return x[:, None, :], y


@dataclass(frozen=True)
class AlphabetTimesteps(_WindowTask):
    """Seed 001, "three-char time step window": ABC->D with the letters as 3 timesteps x 1
    feature, the right way to give an RNN context. The seed reaches 100%, the gate here."""

    id: str = "alphabet_timesteps"
    version: int = 1
    tags: tuple[str, ...] = ("seed001", "alphabet", "encoding", "fixed-data")
    spec: ModelSpec = LETTER_SPEC
    # 100% is reached in 110-160 epochs (LSTM/GRU, 30 seeds): smoke gets the full 500 too.
    budgets: Any = field(
        default_factory=lambda: tiered(500, 500, 1000, batch_size=1, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = _accuracy_check("seed 001 §3", 1.0, "accuracy on the 23 windows (seed: 100%)")

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = _windows(WINDOW)
        return x[:, :, None], y


@dataclass(frozen=True)
class AlphabetVarlen(_WindowTask):
    """Seed 001's variable-length part: random substrings of 1..5 letters, left zero-padded to
    5 steps, predict the next letter (the seed: 98.9% on 20 random substrings). Trained on 1000
    random substrings, scored on 500 fresh ones drawn the same way."""

    id: str = "alphabet_varlen"
    version: int = 1
    tags: tuple[str, ...] = ("seed001", "alphabet", "variable-length")
    spec: ModelSpec = LETTER_SPEC
    budgets: Any = field(
        default_factory=lambda: tiered(600, 600, 1000, batch_size=32, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = _accuracy_check("seed 001 §4", 0.95, "accuracy on 500 fresh substrings of 1..5 letters")

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        splits = []
        for n in (N_VARLEN_TRAIN, N_VARLEN_VALID, N_VARLEN_TEST):
            lengths = rng.integers(1, MAX_SUBSTRING + 1, size=n)
            starts = rng.integers(0, N_LETTERS - lengths)
            splits.append(Split(*_padded(starts, lengths)))
        return Data.of(splits)

    def stop(self, model: Predictor, data: Data) -> bool:
        return accuracy(model.predict(data.valid.x)[0], data.valid.y) >= VARLEN_CRITERION


def _padded(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((len(starts), MAX_SUBSTRING, 1), np.float32)
    for row, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        x[row, MAX_SUBSTRING - length :, 0] = _encode(np.arange(start, start + length))
    return x, starts + lengths


class PositionCounter:
    """The stateful oracle: its state is the number of letters seen since the reset, and it
    predicts the letter after that position whatever the input (right from A, wrong cold)."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        start = np.zeros(len(x), int) if state is None else np.asarray(state, int)
        positions = start[:, None] + np.arange(1, x.shape[1] + 1)[None, :]
        return _one_hot(positions), start + x.shape[1]


class CounterReset(PositionCounter):
    """Null control: counts from zero on every call, whatever state it is given."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return super().predict(x, None)


class StepLookup:
    """The memoryless baseline of the stream: next letter from the current letter, every step."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return _one_hot(_decode(x[..., -1]) + 1), None


@dataclass(frozen=True)
class AlphabetStateful(Task):
    """Seed 001's stateful part (and seed 004's question "what does stateful mean?"): one letter
    per step, batch size 1, `stateful=True`, no shuffle, the state reset every epoch.

    `from_a`: fed A, B, C, ... one letter per call with the returned state, every next letter is
    right. `cold_start`: started cold at each later letter, the model is mostly wrong (the seed:
    "K -> B"), which shows it leans on its state rather than on the letter it is given.
    """

    id: str = "alphabet_stateful"
    version: int = 1
    tags: tuple[str, ...] = ("seed001", "seed004", "alphabet", "state contract", "stateful", "state", "fixed-data")
    spec: ModelSpec = ModelSpec(
        input_size=1,
        output_size=N_LETTERS,
        hidden_size=50,
        return_sequences=True,
        head="softmax",
        stateful=True,
        batch_size=1,
    )
    budgets: Any = field(
        default_factory=lambda: tiered(
            150, 300, 600, batch_size=1, learning_rate=1e-2, loss="crossentropy", shuffle=False, window=1
        )
    )
    checks: tuple[Check, ...] = (
        Check("from_a", "accuracy_from_a", 1.0, True, "seed 001 §5", "fed A..Y one per call with the state: all right"),
        Check(
            "cold_start",
            "accuracy_cold",
            0.5,
            False,
            "seed 001 §5",
            "each letter B..Y fed alone from the zero state: mostly wrong (the model uses its state)",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        letters = np.arange(N_LETTERS - 1)
        stream = Split(_encode(letters)[None, :, None], (letters + 1)[None, :])
        return Data(stream, stream, stream)

    def stop(self, model: Predictor, data: Data) -> bool:
        return accuracy(model.predict(data.valid.x)[0], data.valid.y) >= 1.0

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        x, y = data.test.x, data.test.y
        if check == "from_a":
            state, predicted = None, []
            for t in range(x.shape[1]):
                probs, state = model.predict(x[:, t : t + 1], state)
                predicted.append(int(np.argmax(probs[0, -1])))
            right = np.array(predicted) == y[0]
            value = float(right.mean())
            wrong = [f"{ALPHABET[t]}->{ALPHABET[p]}" for t, p in enumerate(predicted) if not right[t]]
            detail = f"{int(right.sum())}/{len(right)} right" + (f"; wrong: {', '.join(wrong[:6])}" if wrong else "")
            return CheckResult(value, gate.passes(value), detail)
        if check == "cold_start":
            cold = x[0, 1:, :][:, None, :]
            probs = model.predict(cold)[0][:, -1]
            predicted = np.argmax(probs, axis=-1)
            value = float(np.mean(predicted == y[0, 1:]))
            detail = f"cold at K the model says {ALPHABET[int(predicted[9])]}; right cold on {value:.0%} of B..Y"
            return CheckResult(value, gate.passes(value), detail)
        raise TaskError(f"task {self.id!r} has no check {check!r}")

    def memoryless(self, data: Data) -> Predictor:
        return StepLookup()

    def oracle(self, data: Data) -> Predictor:
        return PositionCounter()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "most_frequent": NullControl(_PerStep(MostFrequent(data.train)), frozenset({"from_a"})),
            "state_reset": NullControl(CounterReset(), frozenset({"from_a"})),
            "memoryless": NullControl(StepLookup(), frozenset({"cold_start"})),
        }


class _PerStep:
    def __init__(self, inner: MostFrequent) -> None:
        self.inner = inner

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        probs = _one_hot(np.full(x.shape[:2], self.inner.label))
        return probs, None
