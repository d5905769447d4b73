"""`--lr-sweep`: a fair learning rate for an architecture the task's recipe was not tuned for.

Each task's budget was calibrated on the built-in LSTM/GRU/RNN at one learning rate. Another
architecture may need another one (Keras CfC's loss rises at the alphabet tasks' 1e-2; torch CfC
stays at chance), so a verdict at that one rate alone can say more about the recipe than about
the model. The research suites tune it per architecture: the Chomsky-hierarchy suite and MAD-Lab
train every model at a few learning rates and keep the best. `--lr-sweep` does the same, opt-in:
each (adapter, task, seed) model is trained, from the same seed, at every multiple of the recipe's
rate, and the one kept is the best by the task's own validation criterion: first those that met
the task's stopping criterion (on the validation split), then the lowest validation loss (the
budget's loss on the validation split). The record's `lr_sweep` says what each rate gave and which
won. This module imports no framework.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import UNSCORED, Budget, Data, mse

#: The multiples of the recipe's learning rate that `--lr-sweep` with no value tries.
DEFAULT_MULTIPLES = (0.1, 0.3, 1.0, 3.0)


def parse_multiples(text: str) -> tuple[float, ...]:
    """`0.1,0.3,1,3` -> (0.1, 0.3, 1.0, 3.0); a ValueError naming what is wrong otherwise."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{part!r} is not a number (expected multiples of the task's rate, e.g. 0.1,0.3,1,3)"
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{part!r} is not a positive multiple of the task's learning rate")
        values.append(value)
    if len(values) < 2:
        raise ValueError("a sweep needs at least two multiples, e.g. 0.1,1")
    if len(set(values)) != len(values):
        raise ValueError(f"{text!r} names a multiple twice")
    return tuple(values)


def validation_loss(model: Any, data: Data, loss: str) -> float:
    """The budget's loss (MSE, or cross-entropy of the predicted probabilities) on the validation
    split, from `predict`; as in training, UNSCORED targets (copy_memory's non-recall steps) are
    left out. NaN when the model's output is not finite."""
    predicted = np.asarray(model.predict(data.valid.x)[0], np.float64)
    if loss == "crossentropy":
        labels = np.asarray(data.valid.y).astype(int)
        scored = labels != UNSCORED
        picked = np.take_along_axis(predicted, np.where(scored, labels, 0)[..., None], axis=-1)[..., 0]
        value = float(-np.mean(np.log(np.clip(picked[scored], 1e-12, 1.0))))
    else:
        value = mse(predicted, data.valid.y)
    return value if math.isfinite(value) else math.nan


def rank(trial: dict[str, Any]) -> tuple[bool, float]:
    """The sort key of a trial: criterion met first, then the lowest validation loss (NaN last)."""
    loss = trial["valid_loss"]
    return (not trial["criterion_met"], math.inf if loss is None or math.isnan(loss) else loss)


def sweep(
    task: Task, data: Data, budget: Budget, multiples: Sequence[float], train: Callable[[Budget, float], Any]
) -> tuple[Any, dict[str, Any]]:
    """Train at each multiple of `budget.learning_rate` (`train(budget, spent)` returns a `Trained`,
    `spent` being the seconds the earlier rates took) and keep the best by `rank`. Returns it and
    the record's `lr_sweep`: the recipe's rate, each trial's rate, criterion, validation loss,
    epochs, seconds and stop reason, and the rate that won."""
    trials: list[dict[str, Any]] = []
    best: Any = None
    won: dict[str, Any] = {}
    spent = 0.0
    for multiple in multiples:
        rate = budget.learning_rate * multiple
        trained = train(dataclasses.replace(budget, learning_rate=rate), spent)
        spent += trained.log.seconds
        loss = validation_loss(trained.model, data, budget.loss)
        trial = {
            "multiple": multiple,
            "learning_rate": rate,
            "criterion_met": bool(task.stop(trained.model, data)),
            "valid_loss": None if math.isnan(loss) else loss,
            "epochs": trained.log.epochs,
            "seconds": round(trained.log.seconds, 4),
            "stop_reason": trained.log.stop_reason,
        }
        trials.append(trial)
        if not won or rank(trial) < rank(won):
            best, won = trained, trial  # the others are dropped here: one model in memory at a time
    return best, {
        "recipe_learning_rate": budget.learning_rate,
        "learning_rate": won["learning_rate"],
        "multiple": won["multiple"],
        "trials": trials,
        "seconds": round(spent, 4),
    }


def describe(summary: dict[str, Any] | None) -> str:
    """One line for a failure message: which rate won, and what the others gave."""
    if not summary:
        return ""
    parts = []
    for t in summary["trials"]:
        loss = "nan" if t["valid_loss"] is None else f"{t['valid_loss']:.3g}"
        met = ", criterion met" if t["criterion_met"] else ""
        parts.append(f"x{t['multiple']:g} ({t['learning_rate']:.3g}): valid loss {loss}{met}")
    return (
        f"lr sweep: kept x{summary['multiple']:g} = {summary['learning_rate']:.3g} of the recipe's "
        f"{summary['recipe_learning_rate']:.3g}; " + "; ".join(parts)
    )
