"""A task's `restarts`: the best of a few training runs, where the anchor reports one.

Training a recurrent cell on a state-tracking task is a lottery: a correct LSTM learns
`cycle_navigation`'s automaton on about three runs in four, and on the fourth fits the training
length and drifts past it (tasks/README.md). The Chomsky-hierarchy suite reports the best of 10
seeds for that reason: the question is whether a cell *can* learn the task, not whether every run
does. A task with `restarts` > 1 gets the same here, on a small scale: each (adapter, task, seed)
model is trained up to `restarts` times, from the seeds `seed`, `seed + RESTART_SEED`, ..., and
the first run the task's `keep` accepts is kept (else the one it scores highest). `keep` reads a
split the checks never score, so the checks stay an unbiased test of the kept run. A broken cell,
or one that cannot represent the task, fails every run. The record's `restarts` says what each
run gave, which was kept and the seconds of all of them (the record's `train_seconds`). This
module imports no framework.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import Data

#: The seed of run k of a model of seed s is s + k * RESTART_SEED (run 0 is the model's own seed,
#: so a task with one run trains exactly as before).
RESTART_SEED = 1000


def restart(task: Task, data: Data, seed: int, train: Callable[[int, float], Any]) -> tuple[Any, dict[str, Any] | None]:
    """Train up to `task.restarts` runs (`train(run_seed, spent)` returns a `Trained`, `spent`
    being the seconds the earlier runs took) and keep the first that `task.keep` accepts, else the
    highest scored. Returns it, its log's `seconds` now those of every run, and the record's
    `restarts` (None for a task with one run)."""
    if task.restarts <= 1:
        return train(seed, 0.0), None
    runs: list[dict[str, Any]] = []
    best: Any = None
    best_score = -math.inf
    kept = 0
    spent = 0.0
    for k in range(task.restarts):
        trained = train(seed + k * RESTART_SEED, spent)
        spent += trained.log.seconds
        accepted, score = task.keep(trained.model, data)
        score = float(score) if math.isfinite(score) else -math.inf
        runs.append(
            {
                "seed": seed + k * RESTART_SEED,
                "accepted": bool(accepted),
                "score": None if math.isinf(score) else score,
                "epochs": trained.log.epochs,
                "seconds": round(trained.log.seconds, 4),
                "stop_reason": trained.log.stop_reason,
                # every run's losses, for the early stop's calibration (benchmarks/early_stop.py)
                "loss_history": [round(v, 6) if math.isfinite(v) else None for v in trained.log.loss_history],
            }
        )
        if best is None or accepted or score > best_score:
            best, best_score, kept = trained, score, k  # one model in memory at a time
        if accepted:
            break
    best.log = dataclasses.replace(best.log, seconds=spent)
    return best, {"allowed": task.restarts, "kept": kept, "runs": runs, "seconds": round(spent, 4)}


def describe(summary: dict[str, Any] | None) -> str:
    """One line for a failure message: how many runs, which kept, what each scored."""
    if not summary:
        return ""
    parts = []
    for k, run in enumerate(summary["runs"]):
        score = "nan" if run["score"] is None else f"{run['score']:.4g}"
        parts.append(f"run {k + 1} (seed {run['seed']}): {score}{', accepted' if run['accepted'] else ''}")
    return (
        f"restarts: kept run {summary['kept'] + 1} of {len(summary['runs'])} (up to {summary['allowed']} allowed); "
        + "; ".join(parts)
    )
