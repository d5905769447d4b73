"""Why a model missed its gate, read from its training loss history (issue 15).

Three rules, each a pure function of the per-epoch training losses, so that a failing cell says
whether the model did not train, diverged or ran out of epochs, not only "stopped on max_epochs":

- `diverged`: a loss went non-finite, or the last epoch's loss is above `DIVERGED_RATIO` times
  the first epoch's (the learning rate is too high for this model).
- `did_not_train`: the last epoch's loss is still at or above `NOT_TRAINED_FRACTION` of the
  *reference level*, the loss of a predictor that does not use the sequence's past (below).
- `still_improving`: training stopped on its epoch cap while the mean loss of the last
  `window` epochs was more than `IMPROVING_FRACTION` below the mean of the `window` epochs before
  (`window` = a tenth of the epochs, at least `MIN_WINDOW`): more epochs would have helped.

The reference level is in the units of the training loss. For an MSE task it is the training MSE
of the task's memoryless predictor (`Task.memoryless`, which gives every check its baseline);
for a cross-entropy task it is the entropy of the training labels (the loss of predicting the
label frequencies whatever the input, "chance"), since the memoryless predictors of those tasks
output one-hot guesses whose cross-entropy is infinite. Without either, the first epoch's loss.

`Projection` is the other side of a stopped cell: a model that is projected, after its first
epochs, not to finish within the cell timeout is stopped early (`TooSlow`), and its cell recorded
as incomplete rather than failed or timed out.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import Data, mse

DIVERGED_RATIO = 1.5
NOT_TRAINED_FRACTION = 0.9
IMPROVING_FRACTION = 0.02
MIN_WINDOW = 3
#: Epochs a model trains before its time is projected: the first (which includes compilation and
#: warm-up) and two more, the fastest of which gives the time per epoch still to come.
PROJECT_AFTER = 3


@dataclass(frozen=True)
class Level:
    """A reference training loss and what it is (for the message)."""

    value: float
    source: str  # "memoryless", "chance" or "first epoch"


@dataclass(frozen=True)
class Finding:
    rule: str  # "diverged", "did not train" or "still improving at the epoch cap"
    text: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"


def reference_level(task: Task, data: Data, loss: str) -> Level | None:
    """The loss-comparable level of a predictor that ignores the past (see the module docstring);
    None when it cannot be computed (the rules then use the first epoch's loss)."""
    try:
        if loss == "crossentropy":
            labels = np.asarray(data.train.y).astype(np.int64).ravel()
            labels = labels[labels >= 0]
            freq = np.bincount(labels) / len(labels)
            freq = freq[freq > 0]
            return Level(float(-(freq * np.log(freq)).sum()), "chance")
        pred, _ = task.memoryless(data).predict(data.train.x)
        value = mse(pred, data.train.y)
    except Exception:  # a task whose memoryless predictor does not fit this shape: no level
        return None
    return Level(value, "memoryless") if math.isfinite(value) else None


def diverged(losses: Sequence[float]) -> Finding | None:
    for epoch, loss in enumerate(losses, 1):
        if not math.isfinite(loss):
            return Finding("diverged", f"the training loss became {loss} at epoch {epoch}")
    if len(losses) >= 2 and losses[0] > 0 and losses[-1] > DIVERGED_RATIO * losses[0]:
        return Finding(
            "diverged",
            f"the training loss rose from {losses[0]:.4g} (epoch 1) to {losses[-1]:.4g} (epoch {len(losses)}), "
            f"more than {DIVERGED_RATIO:g}x; the learning rate may be too high for this model",
        )
    return None


def did_not_train(losses: Sequence[float], level: Level | None) -> Finding | None:
    if not losses or not math.isfinite(losses[-1]):
        return None
    ref = level if level is not None else Level(losses[0], "first epoch")
    if ref.value <= 0 or (ref.source == "first epoch" and len(losses) < 2):
        return None
    if losses[-1] >= NOT_TRAINED_FRACTION * ref.value:
        what = {
            "memoryless": "the loss of the memoryless predictor (no use of the past)",
            "chance": "chance (the entropy of the training labels)",
            "first epoch": "the first epoch's loss",
        }[ref.source]
        return Finding(
            "did not train",
            f"the last training loss {losses[-1]:.4g} (epoch {len(losses)}) is still at the {ref.source} level "
            f"{ref.value:.4g}, {what}",
        )
    return None


def window_means(losses: Sequence[float], window: int) -> tuple[float, float] | None:
    """The mean loss of the `window` epochs before the last `window`, and of the last `window`; None
    with fewer than twice `window` epochs."""
    if len(losses) < 2 * window:
        return None
    return float(np.mean(losses[-2 * window : -window])), float(np.mean(losses[-window:]))


def improved(before: float, last: float) -> bool:
    """`last` is more than `IMPROVING_FRACTION` below `before` (a loss still falling)."""
    return before > 0 and last < (1 - IMPROVING_FRACTION) * before


def still_improving(losses: Sequence[float], stop_reason: str | None) -> Finding | None:
    if stop_reason != "max_epochs":
        return None
    window = max(MIN_WINDOW, len(losses) // 10)
    means = window_means(losses, window)
    if means is None or not all(math.isfinite(v) for v in losses[-2 * window :]):
        return None
    before, last = means
    if improved(before, last):
        return Finding(
            "still improving at the epoch cap",
            f"the mean training loss of the last {window} epochs ({last:.4g}) is {1 - last / before:.0%} below "
            f"that of the {window} before ({before:.4g}); it stopped on its {len(losses)}-epoch cap",
        )
    return None


def diagnose(losses: Sequence[float | None], stop_reason: str | None, level: Level | None) -> list[Finding]:
    """Every rule that applies, in order: diverged, did not train, still improving at the cap.
    A None in the history (a non-finite loss as recorded in the results) counts as NaN."""
    history = [math.nan if v is None else float(v) for v in losses]
    if not history:
        return []
    found = diverged(history)
    if found is not None:
        return [found]  # a diverged loss is neither "at the memoryless level" nor "improving"
    return [f for f in (did_not_train(history, level), still_improving(history, stop_reason)) if f is not None]


class TooSlow(Exception):
    """A model projected not to finish training within the cell timeout; the message says why."""


class Projection:
    """A `stop` callable (called once per epoch) that wraps the task's criterion and, from epoch
    `PROJECT_AFTER` on, projects the time to train `max_epochs`: the time the epochs so far took,
    plus the fastest epoch after the first for each remaining one, plus `spent` seconds the cell's
    earlier seeds took. Past `timeout`, it raises `TooSlow`. The seeds still to train are not
    counted in: most models stop on their criterion well before `max_epochs`, and a worst case
    multiplied by 20 seeds would stop cells that finish (a built-in's 1-second model projects to
    159 s).

    The fastest epoch, not the mean: an epoch that compiles once (JAX with a cold compilation
    cache compiles again in the second epoch, 0.8 s against 5 ms once warm, measured) would
    otherwise be projected onto every epoch to come, and stopped a Flax row's alphabet_varlen (600
    epochs) as incomplete on a first run beside other work. A model whose every epoch is slow is
    projected the same; one that slows down as it goes is left to `--cell-timeout` itself."""

    def __init__(self, stop: Callable[[Any], bool], max_epochs: int, timeout: float, spent: float = 0.0):
        self.stop, self.max_epochs, self.timeout, self.spent = stop, max_epochs, timeout, spent
        self.start = time.perf_counter()
        self.last = self.start
        self.fastest = math.inf  # the fastest epoch after the first
        self.epochs = 0

    def epoch_done(self, epoch: int, loss: float) -> None:  # forwarded to the progress line
        inner = getattr(self.stop, "epoch_done", None)
        if inner is not None:
            inner(epoch, loss)

    def __call__(self, model: Any) -> bool:
        self.epochs += 1
        now = time.perf_counter()
        elapsed = now - self.start
        if self.epochs > 1:  # one epoch's training and the criterion before it
            self.fastest = min(self.fastest, now - self.last)
        self.last = now
        if self.stop(model):
            return True
        if self.epochs >= PROJECT_AFTER and self.epochs < self.max_epochs:
            total = self.spent + elapsed + self.fastest * (self.max_epochs - self.epochs)
            if total > self.timeout:
                seeds = f" after {self.spent:.0f} s on the earlier seeds" if self.spent >= 0.5 else ""
                raise TooSlow(
                    f"incomplete: projected {total:.0f} s to train {self.max_epochs} epochs{seeds} "
                    f"({self.epochs} epochs took {elapsed:.1f} s, the fastest after the first {self.fastest:.2f} s), "
                    f"past the cell timeout of {self.timeout:g} s; stopped after {self.epochs} epochs "
                    "(a larger --cell-timeout or a faster device would let it finish)"
                )
        return False


#: The calibration records (tasks/README.md, "Calibration"): the seed-to-seed spread of the
#: LSTM/GRU built-ins at each gate, for the hint on a single-seed miss of a row not calibrated.
CALIBRATION = Path(__file__).resolve().parent.parent / "tasks" / "calibration.csv"
CALIBRATED = ("keras-lstm", "keras-gru", "torch-lstm", "torch-gru")


@functools.lru_cache(maxsize=1)
def _spreads() -> dict[tuple[str, str, str], float]:
    """{(tier, task, check): the largest max - min over the seeds of one LSTM/GRU cell}."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    with contextlib.suppress(OSError), CALIBRATION.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["adapter"] in CALIBRATED and row["value"] not in ("", "nan", "None"):
                values.setdefault((row["tier"], row["task"], row["check"], row["adapter"]), []).append(
                    float(row["value"])
                )
    out: dict[tuple[str, str, str], float] = {}
    for (tier, task, check, _), vs in values.items():
        finite = [v for v in vs if math.isfinite(v)]
        if len(finite) >= 2:
            out[tier, task, check] = max(out.get((tier, task, check), 0.0), max(finite) - min(finite))
    return out


def near_gate(tier: str, task: str, check: str, value: float | None, threshold: float) -> str | None:
    """A hint when a missed value is within the LSTM/GRU calibration's seed-to-seed spread of the
    gate: one seed of a calibrated row could land there too, so one seed is not a verdict."""
    if (tier, task, check) not in _spreads():
        tier = "standard"  # the calibrated tier; a tier without records of this cell borrows it
    spread = _spreads().get((tier, task, check))
    if value is None or spread is None or not math.isfinite(value) or abs(value - threshold) > spread:
        return None
    return (
        f"near the gate: {value:.4g} is within {spread:.3g} of the gate {threshold:g}, the seed-to-seed spread of "
        f"the LSTM/GRU calibration at this gate ({tier} tier); one seed is not a verdict here: try --seeds 5"
    )
