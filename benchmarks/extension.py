"""Judge the budget, not the architecture (issue 27): a rescue at other rates, a bounded extension,
and what settles a miss.

The budgets were calibrated on one-layer LSTM/GRU built-ins. A correct module that trains slower
(a deeper stack, CfC, a linear recurrence) can end its budget still improving, having shown
nothing about whether it can learn the task. So a model of a row that is not a built-in which

- ended on its epoch cap still improving (`diagnosis.still_improving`: the mean loss of the last
  tenth of the epochs more than 2% below the tenth before), and
- fails a gated check of its task (control checks aside),

trains once more for as many epochs again (the same `fit` on the same model: a fresh optimizer
from the weights it reached; after the restarts and the --lr-sweep, on the model they kept, at
its rate), and its checks judge the longer run. Once only, so a broken module costs at most about
twice its budget; its record's `extension` says from and to how many epochs, why, and what the
failing checks scored before it. A run that did not train (flat at the chance level, stopped
early or at its cap) or diverged is not extended: measured on ncps's CfC at the smoke tier,
extending those runs doubled its time (410 of 751 s) and settled none of them, where `--lr-sweep`
does. Such a run is *rescued* instead (`rescue`): a row of yours whose model did not train or
diverged at the recipe's rate, and fails a gated check, is trained again at `RESCUE` times that
rate (one slower, one faster: the recipes' rate was tuned on one-layer LSTM/GRU), from the same
seed, and the best of the three is kept by `--lr-sweep`'s rule (its record's `lr_sweep` says why
and what each rate gave). A broken module fails at every rate; the early stop keeps that cheap.

A check still failing after its extension is *inconclusive* (outcome `incomplete`, not judged)
when the extension closed at least `CLOSING` of its distance to the gate: more epochs are moving
it there, so the budget, not the module, is what it measured. Otherwise it fails, and its
diagnosis ends with what would settle it (`settle`): `--lr-sweep` for a run that did not train or
diverged (a wider grid for one already rescued), `--epochs-scale` for one still improving at its cap;
for a check its extension moved less than `CLOSING` of the way, that more epochs are not what it
needs (`not_closing`), with the figures: its loss can still fall while the check stays put.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rnn_behaviour.adapters.base import FitLog
from rnn_behaviour.benchmarks.diagnosis import Finding, Level, diagnose, still_improving
from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import Budget, Check, Data

#: The share of a check's distance to its gate the extension must close for a miss to count as the
#: budget's (inconclusive) rather than the module's (failed).
CLOSING = 0.25

#: The multiples of the recipe's learning rate a row of yours is trained at again when its model did
#: not train or diverged at the recipe's rate (`rescue`): the neighbours of 1 on `--lr-sweep`'s grid.
RESCUE = (0.3, 3.0)


def failing(task: Task, model: Any, data: Data, tier: str) -> dict[str, float]:
    """{check: value} of the task's gated (non-control) checks the model fails now; one it cannot
    run, or that raises, is not counted (its cell says why)."""
    out = {}
    for check in task.checks:
        if check.control:
            continue
        try:
            result = task.evaluate(check.name, model, data, tier)
        except Exception:  # CheckNotApplicable, or a check that raises: its own cell says so
            continue
        if not result.passed:
            out[check.name] = float(result.value)
    return out


def rescue(trained: Any, task: Task, data: Data, tier: str, level: Level | None) -> str | None:
    """Why `trained` (a matrix `Trained` at the recipe's rate) is to be tried at the `RESCUE` rates:
    it was stopped early (flat below a milestone, or diverged) or its loss says it did not train or
    diverged, and it fails a gated check. None otherwise."""
    log = trained.log
    why = trained.early_stop
    if why is None:
        found = [
            f for f in diagnose(log.loss_history, log.stop_reason, level) if f.rule in ("did not train", "diverged")
        ]
        why = str(found[0]) if found else None
    if why is None or not failing(task, trained.model, data, tier):
        return None
    return why


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
        "before": {name: (value if math.isfinite(value) else None) for name, value in missed.items()},
    }


def _progress(check: Check, extension: dict[str, Any] | None, value: float) -> tuple[float, float] | None:
    """(the check's value before the extension, the share of its distance to the gate the extension
    closed), or None when the extension did not start failing this check or the value is not finite."""
    if extension is None or extension.get("before", {}).get(check.name) is None or not math.isfinite(value):
        return None
    before = float(extension["before"][check.name])
    sign = 1.0 if check.higher_is_better else -1.0
    gap_before, gap_after = sign * (check.threshold - before), sign * (check.threshold - value)
    if gap_before <= 0:
        return None
    return before, 1 - gap_after / gap_before


def still_closing(check: Check, extension: dict[str, Any] | None, value: float) -> str | None:
    """Why a check missed after its extension is inconclusive (None when it is a failure): it closed
    at least `CLOSING` of its distance to the gate during the extension."""
    progress = _progress(check, extension, value)
    if progress is None or progress[1] < CLOSING or extension is None:
        return None
    before, share = progress
    return (
        f"{check.metric} went from {before:.4g} to {value:.4g} (gate {check.threshold:g}) over the extension from "
        f"{extension['from_epochs']} to {extension['to_epochs']} epochs ({extension['why']}), "
        f"{share:.0%} of the way: more epochs are moving it to the gate, so this budget cannot "
        "judge it; --epochs-scale 4 (four times every epoch cap) settles it"
    )


def not_closing(check: Check, extension: dict[str, Any] | None, value: float) -> str | None:
    """For a check missed after its extension that moved it less than `CLOSING` of the way (a
    failure): that more epochs are not what it needs, with the figures, in place of settle's advice
    to train longer (its loss may still fall, as a model fitting its training data ever closer does).
    None when the extension did not start failing this check."""
    progress = _progress(check, extension, value)
    if progress is None or progress[1] >= CLOSING or extension is None:
        return None
    before, share = progress
    moved = f"{share:.0%} of the way there" if share > 0 else "no closer to it"
    return (
        f"more epochs are not what it needs, judged by its extension: from {extension['from_epochs']} to "
        f"{extension['to_epochs']} epochs, {check.metric} went from {before:.4g} to {value:.4g} (gate "
        f"{check.threshold:g}), {moved} ({CLOSING:.0%} of the way would have made it inconclusive); --epochs-scale 4 "
        "tries four times every cap if you expect a late turn"
    )


def settle(
    findings: Sequence[Finding], trained: Any, swept: bool, builtin: bool = False, extended: str | None = None
) -> list[str]:
    """What would settle a failed cell's training findings, one line each (none for a run whose
    training went as it should: the check's own message says what is wrong). A built-in (`builtin`)
    is not told it may be slower than itself; a check its extension did not move (`extended`, from
    `not_closing`) is told so rather than to train longer."""
    rules = {f.rule for f in findings} | ({"early"} if trained.early_stop else set())
    was = trained.extension
    already = f" (already extended once, from {was['from_epochs']} to {was['to_epochs']} epochs)" if was else ""
    out = []
    if trained.sweep and trained.sweep.get("why"):  # rescued: the rates were tried
        rates = ", ".join(f"{trial['multiple']:g}x" for trial in trained.sweep["trials"])
        out.append(
            f"what would settle it: a wider grid of learning rates than the {rates} of the task's already tried, "
            f"--lr-sweep 0.03,0.1,0.3,1,3,10{already}"
        )
    elif rules & {"did not train", "diverged", "early"} and not swept:
        out.append(
            "what would settle it: --lr-sweep (trains at 0.1x, 0.3x, 1x and 3x the task's learning rate and keeps the "
            f"best; the recipes were tuned on LSTM/GRU, and another architecture may need another rate){already}"
        )
    if rules & {"did not train", "early"} and not rules & {"diverged"} and not builtin:
        out.append(
            "or, for a module slower than the built-ins to leave the chance level (a deeper stack on a memory task): "
            "--epochs-scale 3 --no-early-stop"
        )
    if "still improving at the epoch cap" in rules:
        out.append(extended or f"what would settle it: more epochs, --epochs-scale 2 (twice every epoch cap){already}")
    return out
