"""The task contract: synthetic sequence problems, framework-free (NumPy in, NumPy out).

A task says what model to build (`ModelSpec`), how long it may train (`Budget`, per tier), how to
make its data (`generate`, a pure function of the `numpy.random.Generator` it is given), when
training has reached its criterion (`stop`, on the validation split only) and how to score a
trained model (`evaluate`, one named `Check` at a time). It also carries its own controls for
`tests/`: an oracle that must pass every check and null predictors that must fail named checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

TIERS: tuple[str, ...] = ("smoke", "standard", "full")
Head = Literal["linear", "softmax", "tanh"]
Loss = Literal["mse", "crossentropy"]
#: A crossentropy target that is not trained on: the loss is over the other steps only (torch's
#: `ignore_index` default; Keras's `ignore_class`). Tasks score their checks on their own steps.
UNSCORED = -100


class Predictor(Protocol):
    """Anything that runs a batch from a state and hands the final state back.

    `state=None` means the zero state. The state object is opaque to tasks: they only pass back
    what `predict` returned.
    """

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]: ...


@dataclass(frozen=True)
class ModelSpec:
    """What to build: [per-step Dense(input_projection)] -> RNN(hidden_size) -> head."""

    input_size: int
    output_size: int
    hidden_size: int
    return_sequences: bool
    head: Head = "linear"
    input_projection: int | None = None
    stateful: bool = False
    batch_size: int | None = None
    #: The length of the training sequences (padded length; a stateful task's whole stream), set by
    #: the matrix when it trains: offered to a factory that names a `sequence_length` keyword.
    sequence_length: int | None = None


@dataclass(frozen=True)
class Budget:
    """How to train: Adam at `learning_rate`, minibatches, at most `max_epochs` epochs.

    For a stateful spec the training split holds `spec.batch_size` parallel streams
    (streams, time, features); an epoch resets the state, then feeds consecutive chunks of
    `window` steps of every stream as one batch, carrying the state from chunk to chunk (no
    shuffle, truncated backpropagation at chunk boundaries).

    `clip_norm`: when set, the gradients of each step are rescaled so that their global norm
    (over every parameter together) is at most this, before Adam sees them: torch's
    `clip_grad_norm_`, Keras's `global_clipnorm`. An adapter that trains its own way honours it too.
    """

    max_epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: Literal["adam"] = "adam"
    loss: Loss = "mse"
    shuffle: bool = True
    window: int | None = None
    clip_norm: float | None = None


def tiered(smoke: int, standard: int, full: int, **budget: Any) -> dict[str, Budget]:
    """The same budget for every tier but the epochs: {tier: Budget(max_epochs=..., **budget)}."""
    epochs = {"smoke": smoke, "standard": standard, "full": full}
    return {tier: Budget(max_epochs=epochs[tier], **budget) for tier in TIERS}


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Data:
    """Train/valid/test splits, plus `probes`: extra task-specific test material (other lengths,
    chunk plans) generated from the same `Generator`."""

    train: Split
    valid: Split
    test: Split
    probes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, splits: Iterable[Split], **probes: Any) -> Data:
        """From the (train, valid, test) splits in that order."""
        train, valid, test = splits
        return cls(train, valid, test, probes)


#: What a check measures, for the report's capability profile (bsuite's radar by tag): a task
#: names its own in `tags` (the first one there applies to its checks), a check that measures
#: another names it in `Check.capability`; control checks measure none.
CAPABILITIES = (
    "basics",  # the mapping a tutorial teaches: fit, encodings, one-step forecasts
    "memory length",  # recall after a delay: adding, copy, selective copy, n-back
    "state tracking",  # a finite state tracked exactly: parity, cycle navigation, Dyck-1
    "counting",  # an unbounded count within the training lengths
    "length generalisation",  # the same rule past the training length
    "state contract",  # the state handed out continues the sequence; a cold start does not
    "numerical conformance",  # the float64 reference, no training (benchmarks/conformance)
)


@dataclass(frozen=True)
class Check:
    """A named pass/fail gate. `threshold` compares with the value in `higher_is_better`'s sense."""

    name: str
    metric: str
    threshold: float
    higher_is_better: bool
    source: str
    description: str
    #: A control check: any model that honours the state contract fails it (e.g. the same
    #: stream fed with the state thrown away); it proves the task needs the state. It runs as an
    #: expected failure, and the task's oracle must fail it too.
    control: bool = False
    #: What it measures when that is not its task's capability (one of CAPABILITIES).
    capability: str = ""

    def passes(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.threshold if self.higher_is_better else value <= self.threshold


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one trained model.

    `passed` is usually `check.passes(value)`; a compound gate (e.g. `carry_state`, which also
    needs the chunked output to be right) sets it from `extras`. `curve` holds the series behind
    the value (x and y lists) for the report's plots.
    """

    value: float
    passed: bool
    detail: str = ""
    extras: Mapping[str, float] = field(default_factory=dict)
    curve: Mapping[str, list[float]] | None = None
    #: The gate that applied when it is not the check's own: a gap judged float32 rounding by the
    #: model's float64 twin (tasks/rounding.py) was held to its own float32 error, not the check's.
    threshold: float | None = None


@dataclass(frozen=True)
class NullControl:
    """A predictor that must fail `fails` (and may do anything on the other checks)."""

    predictor: Predictor
    fails: frozenset[str]


class TaskError(ValueError):
    """Bad arguments to a task (unknown tier or check)."""


class CheckNotApplicable(Exception):
    """The model lacks what a check needs (e.g. a many-to-one path); the check is skipped."""


@dataclass(frozen=True)
class Task:
    """Base class: subclasses fill in the fields and implement the methods below."""

    id: str
    version: int
    tags: tuple[str, ...]
    spec: ModelSpec
    budgets: Mapping[str, Budget]
    checks: tuple[Check, ...]
    #: Training runs per (adapter, seed) model: more than one where the anchor reports the best of
    #: several runs, because a correct cell learns the task on most runs, not all. The matrix keeps
    #: the first run `keep` accepts, else the one it scores highest (benchmarks/restarts.py).
    restarts: int = 1

    def keep(self, model: Predictor, data: Data) -> tuple[bool, float]:
        """Whether a trained run is kept without another (for `restarts` > 1), and its score (higher
        is better), from material the checks never score (not `data.test`, not a check's probe)."""
        raise NotImplementedError(f"task {self.id!r} allows {self.restarts} runs but does not say which to keep")

    def budget(self, tier: str) -> Budget:
        if tier not in self.budgets:
            raise TaskError(f"task {self.id!r} has no tier {tier!r}; choose from {sorted(self.budgets)}")
        return self.budgets[tier]

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise TaskError(f"task {self.id!r} has no check {name!r}; choose from {[c.name for c in self.checks]}")

    def capability(self, check: str) -> str | None:
        """What `check` measures (CAPABILITIES): its own, else the first of the task's tags that is
        one, else "basics"; None for a control check, which measures nothing of the model."""
        spec = self.check(check)
        if spec.control:
            return None
        return spec.capability or next((t for t in self.tags if t in CAPABILITIES), "basics")

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        raise NotImplementedError

    def stop(self, model: Predictor, data: Data) -> bool:
        """The early-stopping criterion, evaluated on `data.valid` only."""
        raise NotImplementedError

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        raise NotImplementedError

    def memoryless(self, data: Data) -> Predictor:
        """The best predictor that sees only the current input; gives every check its baseline.
        By default least squares of y_t on x_t (regression); classification tasks override it."""
        return LinearMemoryless(data.train)

    def oracle(self, data: Data) -> Predictor:
        raise NotImplementedError

    def nulls(self, data: Data) -> dict[str, NullControl]:
        raise NotImplementedError

    def baseline(self, check: str, data: Data, tier: str) -> float:
        return self.evaluate(check, self.memoryless(data), data, tier).value


# --- small helpers shared by the tasks -------------------------------------------------------


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def feed_in_chunks(model: Predictor, x: np.ndarray, cuts: Iterable[int]) -> np.ndarray:
    """`x` fed in pieces split at the steps `cuts`, each from the state the one before returned;
    the outputs joined: what a caller streaming a sequence through the model gets."""
    pieces, state = [], None
    for part in np.split(x, list(cuts), axis=1):
        out, state = model.predict(part, state)
        pieces.append(out)
    return np.concatenate(pieces, axis=1)


def nan_max(*values: float) -> float:
    """The largest value, NaN if any is NaN (Python's `max` skips a NaN that does not come first,
    which would let a model that outputs NaN look perfect)."""
    return float(np.max(np.asarray(values, np.float64)))


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(labels)))


class LookupMemoryless:
    """Classification's memoryless baseline: the most frequent training label for each value of
    the current (last) input step, as one-hot probabilities; unseen inputs get the overall mode."""

    def __init__(self, train: Split, n_classes: int) -> None:
        self.n_classes = n_classes
        keys = [tuple(np.round(row, 6)) for row in train.x[:, -1, :]]
        labels = np.asarray(train.y).reshape(len(keys), -1)[:, -1]
        table: dict[tuple[float, ...], list[int]] = {}
        for key, label in zip(keys, labels, strict=True):
            table.setdefault(key, []).append(int(label))
        self.table = {k: int(np.bincount(v).argmax()) for k, v in table.items()}
        self.mode = int(np.bincount(labels.astype(int)).argmax())

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        labels = [self.table.get(tuple(np.round(row, 6)), self.mode) for row in x[:, -1, :]]
        return np.eye(self.n_classes, dtype=np.float32)[labels], None


class LinearMemoryless:
    """Predicts y_t from x_t alone by least squares on the training split (y ~ a + b·x_t).

    For tasks with an output per step it is fitted on every step; for last-step tasks on the last
    input. It ignores and returns no state: the memoryless baseline of every regression check.
    """

    def __init__(self, train: Split) -> None:
        x, y = train.x, train.y
        if y.ndim == 2:
            x = x[:, -1:, :]
            y = y[:, None, :]
        features = x.reshape(-1, x.shape[-1]).astype(np.float64)
        design = np.concatenate([np.ones((len(features), 1)), features], axis=1)
        targets = y.reshape(-1, y.shape[-1]).astype(np.float64)
        self.coef, *_ = np.linalg.lstsq(design, targets, rcond=None)
        self.per_step = train.y.ndim == 3

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        design = np.concatenate([np.ones((*x.shape[:-1], 1)), x], axis=-1)
        y = (design @ self.coef).astype(np.float32)
        return (y if self.per_step else y[:, -1, :]), None


class ConstantMean:
    """Predicts the training mean whatever the input: the constant null control."""

    def __init__(self, train: Split) -> None:
        self.mean = train.y.reshape(-1, train.y.shape[-1]).mean(axis=0).astype(np.float32)
        self.per_step = train.y.ndim == 3

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        shape = (x.shape[0], x.shape[1]) if self.per_step else (x.shape[0],)
        return np.broadcast_to(self.mean, shape + self.mean.shape).copy(), None
