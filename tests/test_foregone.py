"""Foregone models (issue 27): at the smoke tier a built-in's model whose every check is an expected
failure that its calibration passed on no seed is not trained; its cells are xfail "(not trained)"
with the reason. The set is pinned against the calibration evidence (tasks/calibration.csv), a
user's row is always trained (`--like` or not), and `--no-early-stop`, pytest's `--runxfail` or
another tier trains it."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from rnn_behaviour.adapters import BUILTINS, resolve
from rnn_behaviour.benchmarks.expectations import EXPECTATIONS, foregone
from rnn_behaviour.benchmarks.matrix import Cell, Matrix
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks import TASKS, TIERS
from tests.test_early_stop import same_data
from tests.test_plugin import run_matrix

ROOT = Path(__file__).resolve().parent.parent
TANH_NEVER = {"adding", "copy_memory", "selective_copy", "cycle_navigation"}


def _calibrated_passes(tier: str) -> dict[tuple[str, str, str], list[bool]]:
    """(adapter, task, check) -> whether each calibration seed of `tier` passed."""
    out: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    with (ROOT / "tasks" / "calibration.csv").open() as f:
        for row in csv.DictReader(f):
            if row["tier"] == tier:
                out[(row["adapter"], row["task"], row["check"])].append(row["passed"] == "True")
    return out


def test_exactly_the_tanh_rnns_never_learnt_tasks_are_foregone_and_only_at_smoke() -> None:
    found = {(row, task) for row in BUILTINS for task in TASKS if foregone(row, task, "smoke")}
    assert found == {(row, task) for row in ("torch-rnn", "keras-rnn", "flax-rnn") for task in TANH_NEVER}
    others = [tier for tier in TIERS if tier != "smoke"]
    assert not [(r, t, tier) for r in BUILTINS for t in TASKS for tier in others if foregone(r, t, tier)]


def test_every_never_claim_is_the_calibrations_zero_of_n() -> None:
    """`Expectation.never` is data: each row it names failed that check on every calibration seed
    of the smoke tier, where it is foregone: the smoke runs themselves where the task's smoke data
    differ from the standard ones (adding at T = 50, copy_memory at T = 20), else the standard runs
    on the same data with a budget at least smoke's."""
    smoke, standard = _calibrated_passes("smoke"), _calibrated_passes("standard")
    claims = [(row, e.task, e.check) for e in EXPECTATIONS for row in e.never]
    assert claims
    for key in claims:
        task = key[1]
        if same_data(TASKS[task], "smoke", "standard"):
            assert TASKS[task].budget("smoke").max_epochs <= TASKS[task].budget("standard").max_epochs
            evidence = smoke.get(key) or standard[key]
        else:
            evidence = smoke[key]
        assert len(evidence) >= 10 and not any(evidence), (key, evidence)


def test_a_users_row_is_always_trained() -> None:
    mine = resolve("mine=torch:rnn_behaviour.adapters.on_torch.model:rnn")
    for early_stop, row, ref in ((True, "mine", mine), (False, "torch-rnn", BUILTINS["torch-rnn"])):
        matrix = Matrix(tier="smoke", seeds=1, adapters={row: ref}, tasks=TASKS, early_stop=early_stop)
        assert matrix.foregone(Cell(row, "adding", "mse")) is None
    matrix = Matrix(tier="smoke", seeds=1, adapters={"ort-rnn": BUILTINS["ort-rnn"]}, tasks=TASKS)
    assert "torch-rnn's calibration passed adding on no seed" in str(
        matrix.foregone(Cell("ort-rnn", "adding", "mse", "torch-rnn"))
    )


def test_a_foregone_model_is_xfail_not_trained_and_no_early_stop_trains_it(pytester: pytest.Pytester) -> None:
    selection = "torch-rnn-copy_memory or ort-rnn-copy_memory"
    result, results_file = run_matrix(pytester, "--tier", "smoke", "-k", selection)
    records = load(results_file)["results"]
    assert {(r["adapter"], r["check"]) for r in records} == {
        (a, c) for a in ("torch-rnn", "ort-rnn") for c in ("recall", "longest_delay")
    }
    for rec in records:
        assert rec["outcome"] == "xfailed" and rec["stop_reason"] == "foregone"
        assert rec["train_seconds"] is None and rec["value"] is None
        assert rec["reason"].startswith("not trained at the smoke tier, its verdict known: torch-rnn's calibration")
    assert "xfail (not trained)" in result.stdout.str()
    result.assert_outcomes(xfailed=4)

    args = ("--tier", "smoke", "--no-early-stop", "-k", "torch-rnn-copy_memory-recall")
    result, results_file = run_matrix(pytester, *args)
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "xfailed" and rec["stop_reason"] == "max_epochs" and rec["value"] is not None

    # pytest's --runxfail runs expected failures as plain tests: the model is trained and judged
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--runxfail", "-k", "torch-rnn-copy_memory-recall")
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "failed" and rec["stop_reason"] != "foregone" and rec["value"] is not None
