"""The adapter contract: one interface in front of every RNN implementation (NumPy at the boundary).

An `Adapter` builds a `Model` from a task's `ModelSpec` and a seed. The model trains with
`fit(train, valid, budget, stop)` (early stop when `stop(model)` says the task's criterion is met,
else at the budget's max epochs) and runs with `predict(x, state=None) -> (y, state)`, so that a
sequence can be continued from the state it hands back. This module imports no framework.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnn_behaviour.tasks.base import Budget, CheckNotApplicable, ModelSpec, Split

StopFn = Callable[["Model"], bool]


class AdapterError(ValueError):
    """An adapter could not be found, loaded or used as asked; the message says why."""


class DeviceUnavailable(AdapterError):
    """The run's `--device` is not there for this adapter's framework (e.g. `--device cuda` with a
    CPU-only jaxlib beside a CUDA torch): its rows are skipped with the reason, not failed."""


#: `--device` choices. The plugin hands the choice to the adapters (and pytest-xdist workers)
#: through the environment variable below; each framework's adapter decides what it means there.
DEVICES = ("cpu", "cuda", "auto")
DEVICE_VARIABLE = "RNN_BEHAVIOUR_DEVICE"


def threads() -> int:
    """Intra-op threads for either framework (`RNN_BEHAVIOUR_THREADS`, default 1): the suite's models
    are small, one thread was fastest here, and workers then do not fight over the cores."""
    value = os.environ.get("RNN_BEHAVIOUR_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise AdapterError(f"RNN_BEHAVIOUR_THREADS={value!r}: must be a whole number >= 1")
    return int(value)


def device_request() -> str:
    """The `--device` of this run (cpu when none was given), checked."""
    request = os.environ.get(DEVICE_VARIABLE, "cpu")
    if request not in DEVICES:
        raise AdapterError(f"{DEVICE_VARIABLE}={request!r}: choose one of {', '.join(DEVICES)}")
    return request


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do; a check that needs a missing one is skipped with the reason."""

    stateful_training: bool = False
    variable_length: bool = False
    weight_io: bool = False
    gpu: bool = False
    #: `native_module(input_size, hidden_size, seed)` hands conformance the module itself, run
    #: with its framework's own tensors (adapters/native.py).
    native_module: bool = False
    #: The model takes an initial state and hands back its final one (`predict(x, state) -> (y,
    #: state)`). Off for a module that declares it has none (`rnn_behaviour_capabilities = {"state":
    #: reason}`): its predict returns a `NoState`, and every check that hands a state back is skipped.
    state: bool = True
    #: The model trains (`fit`) and two trainings can be compared; off for an inference-only row
    #: (an inference runtime running another row's trained model: adapters/engines).
    training: bool = True
    #: The bare layer computes `gradients`; off for an inference engine, which has no backward.
    gradients: bool = True


class NoState:
    """The state `predict` returns for a model that declares it carries none: handing it (or any
    state) back raises `CheckNotApplicable` with the reason, so that a check that continues a
    sequence is skipped with it instead of silently restarting from zero and failing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"NoState({self.reason!r})"


def refuse_state(state: Any, reason: str | None) -> None:
    """For a model that declares no state (`reason`): CheckNotApplicable if a state is handed in."""
    if reason is not None and state is not None:
        raise CheckNotApplicable(f"the module declares no state ({reason}): this check hands a state back")


@dataclass
class FitLog:
    """What happened in `fit`: epochs run, wall seconds, loss per epoch and why it stopped."""

    epochs: int = 0
    seconds: float = 0.0
    loss_history: list[float] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    time_to_criterion_s: float | None = None


@runtime_checkable
class Model(Protocol):
    n_params: int

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog: ...

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]: ...


@runtime_checkable
class Adapter(Protocol):
    name: str
    framework: str
    capabilities: Capabilities

    def build(self, spec: ModelSpec, seed: int) -> Model: ...

    def versions(self) -> dict[str, str]: ...

    def compute_path(self) -> dict[str, str]: ...


def epoch_batches(n: int, batch_size: int, shuffle: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of the full minibatches of one epoch (the remainder is dropped, as
    `drop_remainder=True`), shuffled with `rng` when asked."""
    if batch_size < 1:
        raise AdapterError(f"batch size must be >= 1, got {batch_size}")
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start : start + batch_size]


def stream_chunks(length: int, window: int) -> list[slice]:
    """The consecutive time chunks of one stateful epoch (a trailing partial chunk is dropped)."""
    if window < 1 or window > length:
        raise AdapterError(f"stateful window must be in 1..{length} (the stream length), got {window}")
    return [slice(start, start + window) for start in range(0, length - window + 1, window)]


def check_stateful(spec: ModelSpec, train: Split, budget: Budget) -> int:
    """Validate a stateful training set-up; returns the window."""
    if spec.batch_size is None or len(train) != spec.batch_size:
        raise AdapterError(
            f"stateful training needs {spec.batch_size} streams (the spec's batch size); got {len(train)}"
        )
    if budget.window is None:
        raise AdapterError("stateful training needs the budget's window (steps per chunk)")
    return budget.window


def train_loop(model: Model, train: Split, budget: Budget, stop: StopFn, run_epoch: Callable[[], float]) -> FitLog:
    """The epoch loop every built-in adapter shares: one epoch (`run_epoch` returns its mean
    loss), then the task's stopping criterion; a non-finite loss ends training (the checks then
    fail on the model). A `stop` with an `epoch_done(epoch, loss)` method hears of every epoch."""
    if budget.window is None and len(train) < budget.batch_size:
        raise AdapterError(f"{len(train)} training samples is fewer than one batch of {budget.batch_size}")
    log = FitLog()
    start = time.perf_counter()
    epoch_done = getattr(stop, "epoch_done", None)  # the suite's progress line at -v
    for epoch in range(1, budget.max_epochs + 1):
        loss = run_epoch()
        log.loss_history.append(loss)
        log.epochs = epoch
        if epoch_done is not None:
            epoch_done(epoch, loss)
        if not np.isfinite(loss):
            log.stop_reason = "non_finite_loss"
            break
        if stop(model):
            log.stop_reason = "criterion"
            log.time_to_criterion_s = time.perf_counter() - start
            break
    log.seconds = time.perf_counter() - start
    return log


def check_lengths(lengths: Any, batch: int, time: int) -> np.ndarray:
    """A padded batch's row lengths (conformance's `forward(x, state, lengths=...)`): `batch`
    whole numbers in 1..`time`, else an AdapterError naming what was given."""
    n = np.asarray(lengths)
    if n.shape != (batch,) or not np.issubdtype(n.dtype, np.integer) or n.min() < 1 or n.max() > time:
        raise AdapterError(f"lengths must be {batch} whole numbers in 1..{time}; got {n.tolist()}")
    return n


def check_input(x: np.ndarray, input_size: int) -> np.ndarray:
    """Validate a predict() batch: (batch, time, input_size), finite, at least one step."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise AdapterError(f"input must be (batch, time, features); got shape {x.shape}")
    if x.shape[-1] != input_size:
        raise AdapterError(f"input has {x.shape[-1]} features per step; the model expects {input_size}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise AdapterError(f"input is empty: shape {x.shape}")
    return x.astype(np.float32, copy=False)
