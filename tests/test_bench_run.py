"""`make bench` / `make smoke` (`python -m benchmarks.run`): the matrix on every core, the speed
items serially after it, one report of both; `-n 0` keeps one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run
from reports.results import load

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("args", "one"),
    [
        (["-n", "0"], True),
        (["-n0"], True),
        (["--numprocesses", "0"], True),
        (["--numprocesses=0"], True),
        (["-p", "no:xdist"], True),
        (["-k", "torch-lstm", "-n", "0", "-q"], True),
        ([], False),
        (["-n", "2"], False),
        (["-n", "10"], False),
        (["-k", "n_back-0"], False),
    ],
)
def test_one_process_is_asked_for_by_n_0(args: list[str], one: bool) -> None:
    assert run.one_process(args) is one


def test_the_report_dir_is_the_last_one_given(tmp_path: Path) -> None:
    assert run.report_dir([]) == ROOT / "reports" / "latest"
    assert run.report_dir(["--report-dir", "a", "--report-dir=b"]) == ROOT / "b"
    assert run.report_dir(["--report-dir", str(tmp_path)]) == tmp_path


def test_n_0_runs_one_pytest_over_everything() -> None:
    calls: list[list[str]] = []
    assert run.run(["-n", "0", "-q"], runner=lambda c: calls.append(c) or 0) == 0
    assert [c[3:] for c in calls] == [["benchmarks", "-n", "0", "-q"]]


def test_a_broken_matrix_run_ends_it_before_the_speed_items(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    rc = run.run(["--report-dir", str(tmp_path)], runner=lambda c: calls.append(c) or 2, log=lambda _: None)
    assert rc == 2 and len(calls) == 1
    assert calls[0][3:7] == ["benchmarks", "-n", "auto", "--ignore"]


def test_the_callers_n_replaces_auto_for_the_matrix_and_the_speed_items_run_alone(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    run.run(["-n", "2", "--report-dir", str(tmp_path)], runner=lambda c: calls.append(c) or 0, log=lambda _: None)
    matrix, speed = calls
    assert matrix[matrix.index("--ignore") + 1] == run.SPEED and matrix.count("-n") == 2
    assert matrix[len(matrix) - 1 - matrix[::-1].index("-n") + 1] == "2"  # the caller's -n comes last
    assert speed[3] == run.SPEED and speed[speed.index("-n", speed.index("2")) + 1] == "0"


def test_bench_runs_both_and_writes_one_report(tmp_path: Path) -> None:
    """End to end, on a fake row: its count_steps cells on the workers, its forward timings
    serially after them, both in one results.json and report."""
    out = tmp_path / "report"
    row = ["--adapter", "mine=tests.fakes:CountingOracle", "-k", "mine-count_steps or mine-forward-H"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tier", "smoke", "-q", *row, "--report-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "now the speed items, serially" in done.stdout
    assert "bringing up nodes" in done.stdout  # the matrix ran under pytest-xdist
    records = load(out / "results.json")["results"]
    tasks = {r["task"] for r in records if r["adapter"] == "mine"}
    assert tasks == {"count_steps", "speed"}
    speed = [r for r in records if r["task"] == "speed"]
    assert speed and all(r["outcome"] == "passed" for r in speed)
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "results.json"]
