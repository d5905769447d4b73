"""The speed items: ids, FLOP counts, records and the speed table, with a fake adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour.benchmarks.speed import SpeedItem, flops, items
from rnn_behaviour.reports.results import load
from rnn_behaviour.reports.table import pivot, speed_table

ROOT = Path(__file__).resolve().parent.parent


def test_items_cover_every_op_and_tier_shape() -> None:
    smoke = items(["torch-lstm"], "smoke")
    assert [i.id for i in smoke] == [
        "torch-lstm-forward-H32",
        "torch-lstm-train_step-H32",
        "torch-lstm-stream_step-H32",
    ]
    assert {i.hidden for i in items(["torch-lstm"], "standard")} == {32, 256}
    assert SpeedItem("keras-gru", "forward", 256).check == "forward-B32-T100-H256"


def test_flops_follow_the_brief() -> None:
    assert flops("lstm", "forward", 32) == 8 * 32**2 * 32 * 100
    assert flops("gru", "train_step", 32) == 3 * 6 * 32**2 * 32 * 100
    assert flops("rnn", "stream_step", 256) == 2 * 256**2 * 32
    assert flops(None, "forward", 32) is None


def _speed_run(pytester: pytest.Pytester, adapter: str, select: str, report_dir: Path | None = None) -> Any:
    """benchmarks/test_speed.py at the smoke tier in a subprocess, on the row `adapter` adds."""
    return pytester.runpytest_subprocess(
        str(ROOT / "benchmarks" / "test_speed.py"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
        "--tier", "smoke", "--report-dir", str(report_dir or pytester.path / "report"), "--adapter", adapter,
        "-k", select, "-p", "no:cacheprovider",
    )  # fmt: skip


def test_speed_items_time_a_fake_adapter_and_report_the_median(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest-benchmark turns timing off in any process that looks like an xdist worker.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    report_dir = pytester.path / "report"
    result = _speed_run(pytester, "oracle=tests.fakes:CountingOracle", "oracle-", report_dir)
    result.assert_outcomes(passed=2, skipped=1)
    out = result.stdout.str()
    assert "speed (median)" in out and "forward-B32-T100-H32" in out
    records = {r["check"]: r for r in load(report_dir / "results.json")["results"]}
    assert records["forward-B32-T100-H32"]["value"] > 0
    assert records["forward-B32-T100-H32"]["outcome"] == "passed"
    assert records["train_step-B32-T100-H32"]["outcome"] == "skipped"
    assert "has no make_train_step" in records["train_step-B32-T100-H32"]["reason"]


def test_forward_and_stream_step_time_one_model_and_a_train_step_builds_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine row's model is an export and a conversion: the forward and stream-step items of a
    row reuse one; the train step, which changes its weights, has its own."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    builds = pytester.path / "builds.txt"
    monkeypatch.setenv("RNN_BEHAVIOUR_TEST_BUILDS", str(builds))
    result = _speed_run(pytester, "logged=tests.fakes:BuildLogging", "logged-")
    result.assert_outcomes(passed=2, skipped=1)
    assert builds.read_text().split() == ["H32", "H32"]  # forward + stream_step, then train_step


def test_a_model_that_predicts_padded_in_the_checks_is_timed_at_the_shape_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Flax built-ins predict at the next power of two in the checks (on_jax/model.py): the speed
    items time them unpadded, at T = 100 (padded, the forward would time 128 steps)."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    log = pytester.path / "predicts.txt"
    monkeypatch.setenv("RNN_BEHAVIOUR_TEST_BUILDS", str(log))
    result = _speed_run(pytester, "padlog=tests.fakes:PaddedLogging", "padlog-forward or padlog-stream")
    result.assert_outcomes(passed=2)
    assert set(log.read_text().split()) == {"padded=False"}


def test_speed_records_stay_out_of_the_pivot() -> None:
    from tests.test_results import _record

    timing = _record(task="speed", check="forward-B32-T100-H32", metric="median_s", value=0.002, threshold=0.0)
    timing["extras"] = {"flops_per_s": 4e9}
    assert "forward-B32" not in pivot([_record(), timing])
    assert "2 ms 4 GFLOP/s" in speed_table([_record(), timing])
    assert speed_table([_record()]) == ""
