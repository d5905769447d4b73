"""`Task.restarts` (benchmarks/restarts.py): the best of a few training runs, for cycle_navigation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.adapters.base import FitLog
from rnn_behaviour.benchmarks.restarts import RESTART_SEED, describe, restart
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.tracking import TRAIN_LENGTH, Automaton, CycleNavigation, Parity, RunningStateTask
from tests.test_plugin import run_matrix

CYCLE = CycleNavigation()


class _Trained:
    def __init__(self, model: Any, seconds: float) -> None:
        self.model, self.log = model, FitLog(epochs=3, seconds=seconds, loss_history=[1.0, 0.5, 0.2])


class _Scored:
    """A 'model' that carries the score its task's keep gives it."""

    def __init__(self, score: float) -> None:
        self.score = score


@dataclasses.dataclass(frozen=True)
class _KeepAbove(Parity):
    id: str = "keep_above"
    restarts: int = 3

    def keep(self, model: Any, data: Any) -> tuple[bool, float]:
        return model.score >= 0.99, model.score


def _runs(scores: list[float]) -> tuple[Any, dict[str, Any] | None, list[tuple[int, float]]]:
    seen: list[tuple[int, float]] = []

    def train(run_seed: int, spent: float) -> _Trained:
        seen.append((run_seed, spent))
        return _Trained(_Scored(scores[len(seen) - 1]), 2.0)

    best, summary = restart(_KeepAbove(), None, 7, train)  # type: ignore[arg-type]
    return best, summary, seen


def test_one_run_is_the_model_of_its_own_seed_and_no_record() -> None:
    seen: list[int] = []
    trained, summary = restart(TASKS["parity"], None, 7, lambda s, spent: seen.append(s) or _Trained(None, 1.0))  # type: ignore[arg-type, func-returns-value]
    assert seen == [7] and summary is None and trained.log.seconds == 1.0


def test_the_first_accepted_run_is_kept_and_every_runs_time_counts() -> None:
    best, summary, seen = _runs([0.97, 0.995, 1.0])
    assert seen == [(7, 0.0), (7 + RESTART_SEED, 2.0)]  # stops at the first accepted; the timeout sees run 1
    assert best.model.score == 0.995 and best.log.seconds == 4.0
    assert summary is not None and summary["kept"] == 1 and summary["seconds"] == 4.0
    assert [r["accepted"] for r in summary["runs"]] == [False, True]
    assert describe(summary).startswith("restarts: kept run 2 of 2 (up to 3 allowed); run 1 (seed 7): 0.97;")


def test_when_no_run_is_accepted_the_best_scored_is_kept_and_nan_never_wins() -> None:
    best, summary, seen = _runs([0.5, math.nan, 0.9])
    assert len(seen) == 3 and best.model.score == 0.9 and best.log.seconds == 6.0
    assert summary is not None and summary["kept"] == 2 and summary["runs"][1]["score"] is None
    best, summary, _ = _runs([math.nan, math.nan, math.nan])
    assert summary is not None and summary["kept"] == 0  # the checks then fail on a NaN model


def test_a_task_with_restarts_must_say_which_run_to_keep() -> None:
    task = dataclasses.replace(TASKS["parity"], restarts=2)
    with pytest.raises(NotImplementedError, match="'parity' allows 2 runs but does not say which to keep"):
        task.keep(None, None)  # type: ignore[arg-type]


def test_cycle_navigation_keeps_the_automaton_and_not_its_nulls_on_a_split_no_check_scores() -> None:
    data = CYCLE.generate(np.random.default_rng(0), "standard")
    plain = RunningStateTask.generate(CYCLE, np.random.default_rng(0), "standard")
    for name in ("train", "valid", "test"):  # the scored splits are those a single run would get
        assert np.array_equal(getattr(data, name).x, getattr(plain, name).x)
    assert np.array_equal(data.probes["long"].x, plain.probes["long"].x)
    select = data.probes["select"]
    assert select.x.shape == (500, 100, 3) and not np.array_equal(select.x, data.probes["long"].x[:, :100])
    assert CYCLE.restarts == 3
    assert CYCLE.keep(CYCLE.oracle(data), data) == (True, 1.0)
    for name, null in CYCLE.nulls(data).items():
        kept, score = CYCLE.keep(null.predictor, data)
        assert not kept and score < 0.9, name
    drifts = Automaton(np.asarray(CYCLE.moves), CYCLE.n_states, horizon=TRAIN_LENGTH)
    assert not CYCLE.keep(drifts, data)[0]


def test_a_restart_rescues_a_drifting_run_and_cannot_hide_a_cell_that_always_drifts(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(
        pytester, "--tier", "smoke", "-k", "cycle_navigation and (drifty or broken)",
        "--adapter", "drifty=tests.restart_fakes:DriftsOnFirstRun",
        "--adapter", "broken=tests.restart_fakes:AlwaysDrifts",
    )  # fmt: skip
    records = {(r["adapter"], r["check"]): r for r in load(results_file)["results"]}
    for check in ("fit", "longer"):
        rec = records[("drifty", check)]
        assert rec["outcome"] == "passed", result.stdout.str()
        assert rec["restarts"]["kept"] == 1 and [r["seed"] for r in rec["restarts"]["runs"]] == [0, RESTART_SEED]
    assert records[("broken", "fit")]["outcome"] == "passed"
    broken = records[("broken", "longer")]
    assert broken["outcome"] == "failed" and len(broken["restarts"]["runs"]) == 3
    assert "restarts: kept run 1 of 3 (up to 3 allowed)" in result.stdout.str()
