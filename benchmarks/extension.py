"""Judge the budget, not the architecture (issue 27): a bounded extension, and what settles a miss.

The budgets were calibrated on one-layer LSTM/GRU built-ins. A correct module that trains slower
(a deeper stack, CfC, a linear recurrence) can end its budget still improving, having shown
nothing about whether it can learn the task. So a run of a row that is not a built-in which

- stopped on its epoch cap,
- was still improving there (`diagnosis.still_improving`: the mean loss of the last tenth of the
  epochs more than 2% below the tenth before), and
- fails a gated check of its task (control checks aside),

trains once more for as many epochs again (the same `fit` on the same model: a fresh optimizer
from the weights it reached), and its checks judge the longer run. Once only, so a broken module
costs at most twice its budget; its record's `extension` says from and to how many epochs, and
why. A failed cell's diagnosis ends with what would settle it (`settle`): `--lr-sweep` for a run
that did not train or diverged, `--epochs-scale` for one still improving at its cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rnn_behaviour.adapters.base import FitLog
from rnn_behaviour.benchmarks.diagnosis import Finding, still_improving
from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import Budget, CheckNotApplicable, Data


def failing(task: Task, model: Any, data: Data, tier: str) -> list[str]:
    """The task's gated (non-control) checks the model fails now; one it cannot run is not counted."""
    out = []
    for check in task.checks:
        if check.control:
            continue
        try:
            if not task.evaluate(check.name, model, data, tier).passed:
                out.append(check.name)
        except CheckNotApplicable:
            continue
    return out


def joined(first: FitLog, then: FitLog) -> FitLog:
    """One log of a run trained on: epochs, seconds and losses of both; the second's stop."""
    to_criterion = None if then.time_to_criterion_s is None else first.seconds + then.time_to_criterion_s
    return FitLog(
        epochs=first.epochs + then.epochs,
        seconds=first.seconds + then.seconds,
        loss_history=[*first.loss_history, *then.loss_history],
        stop_reason=then.stop_reason,
        time_to_criterion_s=to_criterion,
    )


def extend(
    trained: Any, task: Task, data: Data, tier: str, budget: Budget, stop: Callable[[Budget], Callable[[Any], bool]]
) -> None:
    """Train `trained` (a matrix `Trained`) on for `budget.max_epochs` more epochs when the rules
    above say so; `stop(budget)` gives the criterion for the extra epochs."""
    log = trained.log
    if still_improving(log.loss_history, log.stop_reason) is None:
        return
    missed = failing(task, trained.model, data, tier)
    if not missed:
        return
    more = trained.model.fit(data.train, data.valid, budget, stop(budget))
    trained.log = joined(log, more)
    trained.extension = {
        "from_epochs": log.epochs,
        "to_epochs": trained.log.epochs,
        "seconds": round(more.seconds, 4),
        "why": f"still improving at its {log.epochs}-epoch cap while failing {', '.join(missed)}",
    }


def settle(findings: Sequence[Finding], trained: Any, swept: bool) -> list[str]:
    """What would settle a failed cell's training findings, one line each (none for a run whose
    training went as it should: the check's own message says what is wrong)."""
    rules = {f.rule for f in findings} | ({"early"} if trained.early_stop else set())
    out = []
    if rules & {"did not train", "diverged", "early"} and not swept:
        out.append(
            "what would settle it: --lr-sweep (trains at 0.1x, 0.3x, 1x and 3x the task's learning rate and keeps the "
            "best; the recipes were tuned on LSTM/GRU, and another architecture may need another rate)"
        )
    if "still improving at the epoch cap" in rules:
        was = trained.extension
        already = f" (already extended once, from {was['from_epochs']} to {was['to_epochs']} epochs)" if was else ""
        out.append(f"what would settle it: more epochs, --epochs-scale 2 (twice every epoch cap){already}")
    return out
