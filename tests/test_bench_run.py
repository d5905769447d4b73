"""`make bench` / `make smoke` (`python -m benchmarks.run`): the matrix on every core, the speed
items serially after it, one report of both; `-n 0` keeps one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rnn_behaviour.benchmarks import run
from rnn_behaviour.benchmarks.records import new_record
from rnn_behaviour.invoke import suite_args
from rnn_behaviour.reports.results import load

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
    assert [suite_args(c) for c in calls] == [["benchmarks", "-n", "0", "-q"]]


@pytest.mark.parametrize("flag", ["--co", "--collect-only", "--help", "--fixtures"])
def test_a_command_that_runs_nothing_goes_to_one_pytest(flag: str) -> None:
    calls: list[list[str]] = []
    assert run.run([flag], runner=lambda c: calls.append(c) or 0) == 0
    assert [suite_args(c) for c in calls] == [["benchmarks", flag]]


@pytest.mark.parametrize("path", ["benchmarks/test_speed.py", "benchmarks/test_behaviour.py::test_check", "benchmarks"])
def test_a_test_path_is_refused_with_what_to_run_instead(path: str) -> None:
    said: list[str] = []
    assert run.run([path], runner=lambda c: pytest.fail("ran"), log=said.append) == run.USAGE
    assert f"run pytest {path}" in said[0] and "-k" in said[0]


def _payload(report_dir: Path, task: str) -> None:
    """What a pytest run of the plugin leaves: a results file of one record."""
    rec = new_record("mine", task, "fit" if task != "speed" else "forward", 1, "smoke", "m", 1.0, True)
    rec |= {"outcome": "passed", "cell_outcome": "passed", "passed": True}
    run_ = {"time": "2026-11-26T00:00:00+00:00", "git_sha": "abc", "tier": "smoke", "seeds": 1,
            "min_pass_rate": 1.0, "device": "cpu", "python": "3.11", "versions": {}, "machine": {}}  # fmt: skip
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps({"schema_version": 1, "run": run_, "results": [rec]}))


def fake(codes: dict[str, int], writes: set[str], out: Path) -> Callable[[list[str]], int]:
    """A runner: the matrix run ("matrix") and the speed run ("speed") exit with `codes` and write
    their results (to `out`, or the speed run's own --report-dir) when named in `writes`."""

    def runner(command: list[str]) -> int:
        which = "speed" if suite_args(command)[0] == run.SPEED else "matrix"
        if which in writes:
            last = len(command) - 1 - command[::-1].index("--report-dir")  # pytest takes the last one
            target = Path(command[last + 1]) if which == "speed" else out
            _payload(target, "speed" if which == "speed" else "count_steps")
        return codes[which]

    return runner


def test_both_runs_are_merged_and_the_worse_exit_wins(tmp_path: Path) -> None:
    runner = fake({"matrix": 1, "speed": 0}, {"matrix", "speed"}, tmp_path)
    assert run.run(["--report-dir", str(tmp_path)], runner=runner, log=lambda _: None) == 1
    payload = load(tmp_path / "results.json")
    assert {r["task"] for r in payload["results"]} == {"count_steps", "speed"}
    assert [s["file"] for s in payload["run"]["shards"]] == ["matrix", "speed"]
    assert (tmp_path / "report.md").is_file()


def test_a_stale_results_file_is_not_taken_for_this_runs(tmp_path: Path) -> None:
    _payload(tmp_path, "old_task")
    os.utime(tmp_path / "results.json", (1e9, 1e9))  # written in 2001
    said: list[str] = []
    runner = fake({"matrix": 0, "speed": 0}, {"speed"}, tmp_path)
    assert run.run(["--report-dir", str(tmp_path)], runner=runner, log=said.append) == 0
    assert any("wrote no" in line for line in said)
    assert {r["task"] for r in load(tmp_path / "results.json")["results"]} == {"speed"}


def test_a_k_that_selects_only_speed_items_still_times_them(tmp_path: Path) -> None:
    runner = fake({"matrix": run.NO_TESTS, "speed": 0}, {"speed"}, tmp_path)
    assert run.run(["-k", "train_step", "--report-dir", str(tmp_path)], runner=runner, log=lambda _: None) == 0
    assert {r["task"] for r in load(tmp_path / "results.json")["results"]} == {"speed"}


def test_nothing_selected_in_either_run_is_exit_5(tmp_path: Path) -> None:
    runner = fake({"matrix": run.NO_TESTS, "speed": run.NO_TESTS}, set(), tmp_path)
    assert run.run(["-k", "nothing", "--report-dir", str(tmp_path)], runner=runner, log=lambda _: None) == 5


def test_a_speed_run_that_breaks_is_not_hidden_by_a_failed_matrix(tmp_path: Path) -> None:
    runner = fake({"matrix": 1, "speed": 2}, {"matrix"}, tmp_path)
    said: list[str] = []
    assert run.run(["--report-dir", str(tmp_path)], runner=runner, log=said.append) == 2
    assert any("speed run (exit 2) wrote no results" in line for line in said)
    assert {r["task"] for r in load(tmp_path / "results.json")["results"]} == {"count_steps"}


def test_a_broken_matrix_run_ends_it_before_the_speed_items(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    rc = run.run(["--report-dir", str(tmp_path)], runner=lambda c: calls.append(c) or 2, log=lambda _: None)
    assert rc == 2 and len(calls) == 1
    assert suite_args(calls[0])[0:4] == ["benchmarks", "-n", "auto", "--ignore"]


def test_the_callers_n_replaces_auto_for_the_matrix_and_the_speed_items_run_alone(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    run.run(["-n", "2", "--report-dir", str(tmp_path)], runner=lambda c: calls.append(c) or 0, log=lambda _: None)
    matrix, speed = (suite_args(c) for c in calls)
    assert matrix[matrix.index("--ignore") + 1] == run.SPEED and matrix.count("-n") == 2
    assert matrix[len(matrix) - 1 - matrix[::-1].index("-n") + 1] == "2"  # the caller's -n comes last
    assert speed[0] == run.SPEED and speed[speed.index("-n", speed.index("2")) + 1] == "0"


@pytest.mark.parametrize(
    ("codes", "writes", "rc"),
    [
        ({"matrix": 1, "speed": 0}, {"matrix", "speed"}, 1),  # merged: one report of both
        ({"matrix": 0, "speed": 2}, {"matrix"}, 2),  # the speed run wrote nothing: the matrix's report
        ({"matrix": 2, "speed": 0}, {"matrix"}, 2),  # an interrupted matrix run: its report, no speed run
    ],
)
def test_the_report_is_written_once_after_the_matrix_whatever_follows(
    tmp_path: Path, codes: dict[str, int], writes: set[str], rc: int
) -> None:
    """The matrix run writes results.json only (REPORTS_LATER in its environment, not in the speed
    run's); `run` writes report.md and report.html once, of what there is to report."""
    later: dict[str, str | None] = {}
    inner = fake(codes, writes, tmp_path)

    def runner(command: list[str]) -> int:
        which = "speed" if suite_args(command)[0] == run.SPEED else "matrix"
        later[which] = os.environ.get(run.REPORTS_LATER)
        assert not (tmp_path / "report.md").exists()  # nothing written before the end
        return inner(command)

    assert run.run(["--report-dir", str(tmp_path)], runner=runner, log=lambda _: None) == rc
    assert later["matrix"] == "1" and later.get("speed") is None and run.REPORTS_LATER not in os.environ
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()
    tasks = {r["task"] for r in load(tmp_path / "results.json")["results"]}
    assert tasks == ({"count_steps", "speed"} if "speed" in writes else {"count_steps"})
    assert ("speed" in later) == (codes["matrix"] != 2)
    report = (tmp_path / "report.md").read_text()
    assert "count_steps" in report and ("forward" in report) == ("speed" in writes)  # what the results hold


def test_speed_results_that_cannot_join_leave_the_matrix_and_its_report(tmp_path: Path) -> None:
    inner = fake({"matrix": 0, "speed": 0}, {"matrix", "speed"}, tmp_path)

    def runner(command: list[str]) -> int:
        rc = inner(command)
        if suite_args(command)[0] == run.SPEED:  # a speed run of another tier: not the same run
            path = tmp_path / run.SPEED_PART / "results.json"
            payload = json.loads(path.read_text())
            payload["run"]["tier"] = "standard"
            path.write_text(json.dumps(payload))
        return rc

    said: list[str] = []
    assert run.run(["--report-dir", str(tmp_path)], runner=runner, log=said.append) == 3
    assert any("could not join the matrix's" in line and "run.tier" in line for line in said)
    assert {r["task"] for r in load(tmp_path / "results.json")["results"]} == {"count_steps"}
    assert "count_steps" in (tmp_path / "report.md").read_text() and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize("later", [True, False])
def test_the_matrix_run_told_to_leave_the_report_writes_results_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, later: bool
) -> None:
    """Under REPORTS_LATER the matrix run writes results.json, removes an earlier run's report (not to
    be read beside these results) and names no report; without it, it draws and names its own."""
    from tests.test_plugin import run_matrix

    if later:
        monkeypatch.setenv(run.REPORTS_LATER, "1")
    stale = pytester.path / "report"
    stale.mkdir()
    for name in ("report.md", "report.html"):
        (stale / name).write_text("an earlier run's")
    row = ("--adapter", "mine=tests.fakes:CountingOracle", "-k", "mine-count_steps-fit", "--tier", "smoke")
    result, results_file = run_matrix(pytester, *row)
    assert result.ret == 0 and load(results_file)["results"]
    reports = [stale / "report.md", stale / "report.html"]
    if later:
        assert not any(p.exists() for p in reports)
        assert "report:" not in result.stdout.str()
    else:
        assert all(p.read_text() != "an earlier run's" for p in reports)
        assert "report: " in result.stdout.str()


def test_the_report_dir_may_come_from_pytest_addopts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", f"-q --report-dir {tmp_path}")
    assert run.report_dir([]) == tmp_path


def test_bench_runs_both_and_writes_one_report(tmp_path: Path) -> None:
    """End to end, on a fake row: its count_steps cells on the workers, its forward timings
    serially after them, both in one results.json and report."""
    out = tmp_path / "report"
    row = ["--adapter", "mine=tests.fakes:CountingOracle", "-k", "mine-count_steps or mine-forward-H"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnn_behaviour.benchmarks.run",
            "--tier",
            "smoke",
            "-q",
            "-n",
            "2",
            *row,
            "--report-dir",
            str(out),
        ],
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
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "results.json", "speed"]
    assert {r["task"] for r in load(out / "speed" / "results.json")["results"]} == {"speed"}
