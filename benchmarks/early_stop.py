"""Stop a training run whose fate is known (issue 27): flat at a level it had to leave, or diverged.

A run that has stopped moving far from where every correct LSTM/GRU had gone by then gets the
verdict it would have got at its epoch cap, without the rest of its epochs. Two rules, each a
pure function of the per-epoch training losses (the units of `diagnosis.reference_level`: the
memoryless predictor's loss, or chance for a cross-entropy task):

- *flat at a milestone*: from epoch K(tier, task, f) on, no loss so far has gone below f x the
  reference level and the mean of the last fifth of the losses (at least `WINDOW`) is not
  `diagnosis.IMPROVING_FRACTION` below the mean of as many before (`diagnosis.improved`, as the
  diagnosis's *still improving* judges it) (the run has stopped moving; a
  run still falling is never stopped, however far behind an LSTM's pace it is, nor one that went
  below and spiked back). The window grows with the run: with 3 epochs, minGRU's steady 0.5% an
  epoch on alphabet_stateful looked flat at epoch 58 and was stopped 3 epochs before it met its
  criterion (tests/test_early_stop.py keeps that history).
  f = 0.9 is the diagnosis's "did not train" level; f = 0.5 is half of it, a plateau far from any
  gate. K is calibrated per (tier, task, f) from the
  loss histories of the built-in rows' runs that passed every gate (LSTM, GRU and the tanh RNN,
  the slowest of them): `MARGIN` times the latest epoch at which any of them first went below
  f x the level (`tasks/early_stop.csv`, made by `scripts/early_stop_calibration.py`, from at
  least `MIN_RUNS` passing runs; a tier without a row for the task takes the row of a tier whose
  budget for it is the same (`marks_for`); a (tier, task) without either is never stopped by this
  rule, nor an f that a passing run never went below).
- *diverged*: the last `WINDOW` losses are all above `diagnosis.DIVERGED_RATIO` x the first
  epoch's (a non-finite loss already ends training in every built-in loop).

The suite's `--no-early-stop` turns both off. Under `--lr-sweep` a rate below the recipe's waits
proportionally longer (K x recipe rate / its rate). The stopped run's log says `stop_reason`
"early_stop", and its failing cells' diagnosis starts with why it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.diagnosis import DIVERGED_RATIO, Level, improved, window_means
from rnn_behaviour.tasks import TASKS

#: Consecutive epochs a rule looks at.
WINDOW = 3
#: K = MARGIN x the latest first-crossing epoch of a passing calibration run.
MARGIN = 2
#: The milestones, as fractions of the reference level.
FRACTIONS = (0.9, 0.5)
#: Passing runs a (tier, task) needs before its milestones are used.
MIN_RUNS = 20
TABLE = Path(__file__).resolve().parent.parent / "tasks" / "early_stop.csv"


@functools.lru_cache(maxsize=1)
def milestones() -> dict[tuple[str, str], list[tuple[float, int, int, int]]]:
    """{(tier, task): [(fraction, K, passing runs, latest first crossing)]} from `TABLE`."""
    out: dict[tuple[str, str], list[tuple[float, int, int, int]]] = {}
    with contextlib.suppress(OSError), TABLE.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["epoch"]:
                entry = (float(row["fraction"]), int(row["epoch"]), int(row["runs"]), int(row["latest"]))
                out.setdefault((row["tier"], row["task"]), []).append(entry)
    return out


def marks_for(tier: str, task: str) -> list[tuple[float, int, int, int]]:
    """The milestones of (tier, task). A tier without its own takes those of a tier whose budget for
    the task is the same: its runs are those runs (the data does not depend on the tier, as the
    calibration tables assume: `scripts/calibrate.py`), so the standard tier's cycle_navigation,
    parity, selective_copy and dyck1 are judged by their smoke calibration."""
    table = milestones()
    if (tier, task) in table:
        return table[tier, task]
    known = TASKS.get(task)
    if known is None or tier not in known.budgets:
        return []
    for (other, name), marks in sorted(table.items()):
        if name == task and other in known.budgets and known.budget(other) == known.budget(tier):
            return marks
    return []


def first_below(losses: Sequence[float], bound: float) -> int | None:
    """The first epoch (1-based) whose loss is below `bound`, None if none is."""
    for epoch, loss in enumerate(losses, 1):
        if math.isfinite(loss) and loss < bound:
            return epoch
    return None


def window(epochs: int) -> int:
    """The epochs whose mean is compared with the same number before: a fifth of the run so far, at
    least `WINDOW`, so that a slow steady fall (0.5% an epoch) is moving, not flat."""
    return max(WINDOW, math.ceil(epochs / 5))


def fate(
    losses: Sequence[float], level: Level | None, marks: Sequence[tuple[float, int, int, int]], max_epochs: int
) -> str | None:
    """Why the run should stop now (one line), or None to go on."""
    if len(losses) < WINDOW + 1 or len(losses) >= max_epochs:
        return None
    last = losses[-WINDOW:]
    first = losses[0]
    if math.isfinite(first) and first > 0 and all(v > DIVERGED_RATIO * first for v in last):
        return (
            f"diverged: stopped early at epoch {len(losses)} of {max_epochs}: the last {WINDOW} training losses "
            f"({', '.join(f'{v:.4g}' for v in last)}) are all above {DIVERGED_RATIO:g}x the first epoch's ({first:.4g})"
        )
    w = window(len(losses))
    means = window_means(losses, w)
    if level is None or level.value <= 0 or means is None or improved(*means):  # moving: not flat
        return None
    before, now = means
    for fraction, epoch, runs, latest in sorted(marks, reverse=True):
        bound = fraction * level.value
        if len(losses) >= epoch and np.nanmin(losses) >= bound:
            rule = "did not train" if fraction >= 0.9 else f"plateaued at {now:.4g}"
            return (
                f"{rule}: stopped early at epoch {len(losses)} of {max_epochs}: the training loss never went below "
                f"{fraction:g}x the {level.source} level {level.value:.4g} and has stopped moving (the mean of its "
                f"last {w} epochs {now:.4g}, of the {w} before {before:.4g}), "
                f"where every one of {runs} passing calibration runs of the "
                f"built-ins had gone below it by epoch {latest} (this rule waits until epoch {epoch}; "
                "--no-early-stop trains to the cap)"
            )
    return None


class EarlyStop:
    """A `stop` callable (once per epoch, after `epoch_done`) wrapping the task's criterion: the
    criterion first, then `fate`; `reason` holds why it stopped a run early (None otherwise)."""

    def __init__(
        self, stop: Callable[[Any], bool], level: Level | None, tier: str, task: str, max_epochs: int, pace: float = 1.0
    ):
        self.stop, self.level, self.max_epochs = stop, level, max_epochs
        # A run at 1/pace of the recipe's rate (--lr-sweep's 0.1x, 0.3x) leaves a plateau about pace
        # times later: its milestones wait that much longer (a 2-layer LSTM passed selective_copy at
        # 0.3x only once its run was not stopped at the recipe rate's epoch 10).
        marks = marks_for(tier, task)
        self.marks = [(f, math.ceil(epoch * max(1.0, pace)), runs, latest) for f, epoch, runs, latest in marks]
        self.losses: list[float] = []
        self.reason: str | None = None

    def epoch_done(self, epoch: int, loss: float) -> None:
        self.losses.append(float(loss))
        inner = getattr(self.stop, "epoch_done", None)
        if inner is not None:
            inner(epoch, loss)

    def __call__(self, model: Any) -> bool:
        if self.stop(model):
            return True
        self.reason = fate(self.losses, self.level, self.marks, self.max_epochs)
        return self.reason is not None
