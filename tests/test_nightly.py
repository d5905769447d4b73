"""The nightly job's steps (`python -m reports nightly shard/merge/publish`) end to end, as
`make nightly` and .github/workflows/nightly.yml run them, on the fake adapters of tests/fakes.py.

Night 1 has the row `mine` as the counting oracle; night 2, "tomorrow", the same row as
`ForgetfulState` (drops the state it is given): the regression the gate must name.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour.invoke import suite_args
from rnn_behaviour.reports import nightly
from rnn_behaviour.reports.cli import main
from rnn_behaviour.reports.results import ResultsError, load

ROOT = Path(__file__).resolve().parent.parent
ORACLE = ["--adapter", "mine=tests.fakes:CountingOracle", "-k", "mine-count"]
FORGETFUL = ["--adapter", "mine=tests.fakes:ForgetfulState", "-k", "mine-count"]


def reports_cli(*args: str | Path | int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def shard(k: int, out: Path, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    return reports_cli("nightly", "shard", k, 2, "--tier", "smoke", "-o", out, "--", "-q", *pytest_args)


def night(tmp: Path, name: str, *pytest_args: str) -> Path:
    """A night as `make nightly` makes it: two shards, merged; the night's directory."""
    for k in (1, 2):
        done = shard(k, tmp / f"{name}-shard-{k}", *pytest_args)
        assert done.returncode == 0, done.stdout + done.stderr
    shards = [str(tmp / f"{name}-shard-{k}") for k in (1, 2)]
    assert main(["nightly", "merge", *shards, "--expect", "2", "-o", str(tmp / name)]) == 0
    return tmp / name


def tomorrow(night_dir: Path, days: int = 1) -> None:
    """Move a night's run time on by `days`, as if it ran the next night (the history's file
    names and the choice of base go by run time)."""
    payload = json.loads((night_dir / "results.json").read_text())
    when = dt.datetime.fromisoformat(payload["run"]["time"]) + dt.timedelta(days=days)
    payload["run"]["time"] = when.isoformat()
    (night_dir / "results.json").write_text(json.dumps(payload))


def make_nights(tmp: Path) -> dict[str, Path]:
    good, bad = night(tmp, "good", *ORACLE), night(tmp, "bad", *FORGETFUL)
    tomorrow(bad)
    return {"good": good, "bad": bad, "shards": tmp}


@pytest.fixture(scope="session")
def nights(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Path]:
    """The two nights, made once per run: under pytest-xdist the first worker makes them in the
    run's shared temporary directory (a lock file keeps the others waiting), the rest read them."""
    if worker_id == "master":
        return make_nights(tmp_path_factory.mktemp("nights"))
    shared = tmp_path_factory.getbasetemp().parent / "nightly-nights"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            make_nights(shared)
            (shared / "done").touch()
    return {"good": shared / "good", "bad": shared / "bad", "shards": shared}


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """`python -m reports ...` in this process (the steps after the shards import no framework)."""

    def run(*args: str | Path) -> Done:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Done(rc, out, err)

    return run


@pytest.fixture
def publish(cli: Callable[..., Done]) -> Callable[..., Done]:
    def run(night_dir: Path, history: Path, out: Path, *more: str | Path) -> Done:
        return cli("nightly", "publish", night_dir, "--history", history, "-o", out, *more)

    return run


# -- shard --------------------------------------------------------------------------------------


def test_a_shard_with_failed_checks_is_a_night_that_ran(nights: dict[str, Path]) -> None:
    # pytest exits 1 in the shard that holds ForgetfulState's failures; the step does not fail.
    one, two = (load(nights["shards"] / f"bad-shard-{k}" / "results.json") for k in (1, 2))
    failed = [r["check"] for p in (one, two) for r in p["results"] if r["outcome"] == "failed"]
    assert sorted(failed) == ["carry_state", "cold_start"]
    assert len(one["results"]) + len(two["results"]) == 7 and one["results"] and two["results"]


@pytest.mark.parametrize(
    ("args", "rc", "says"),
    [
        (["--adapter", "tests.fakes:NotAnAdapter"], 4, "shard 1/2 is broken: pytest exited 4 (usage error)"),
        (["-k", "no-such-row"], 5, "shard 1/2 is broken: pytest exited 5 (no tests collected)"),
    ],
)
def test_a_broken_shard_fails_with_pytests_code(tmp_path: Path, args: list[str], rc: int, says: str) -> None:
    out = tmp_path / "shard"
    out.mkdir()
    (out / "results.json").write_text("{}")  # a stale file from an earlier run must not count
    done = shard(1, out, *args)
    assert done.returncode == rc, done.stdout + done.stderr
    assert f"python -m reports nightly shard: {says}" in done.stderr
    assert not (out / "results.json").exists()


@pytest.mark.parametrize(
    ("rc", "writes", "expected", "says"),
    [
        (0, True, 0, "pytest exited 0 (every check passed)"),
        (1, True, 0, "pytest exited 1 (some checks failed)"),
        (1, False, 3, "wrote no"),
        (2, True, 2, "pytest exited 2 (interrupted)"),
        (3, False, 3, "pytest exited 3 (internal error)"),
        (-9, False, 3, "pytest exited -9 (crashed)"),
    ],
)
def test_shard_verdict_by_exit_code(tmp_path: Path, rc: int, writes: bool, expected: int, says: str) -> None:
    fixture = ROOT / "tests" / "fixtures" / "results_small.json"

    def runner(command: list[str]) -> int:
        assert suite_args(command)[0] == "benchmarks" and "--splits" in command and "-x" in command
        if writes:
            (tmp_path / "out" / "results.json").write_text(fixture.read_text())
        return rc

    got, line = nightly.run_shard(1, 2, "smoke", tmp_path / "out", ["-x"], runner)
    assert (got, says in line) == (expected, True), line


def test_an_interrupted_shard_is_broken_even_when_pytest_says_1(tmp_path: Path) -> None:
    payload = load(ROOT / "tests" / "fixtures" / "results_small.json")
    payload["run"]["incomplete"] = "interrupted by SIGTERM"
    (tmp_path / "results.json").write_text(json.dumps(payload))
    rc, line = nightly.shard_verdict(2, 4, 1, tmp_path / "results.json")
    assert rc == 3 and line == "shard 2/4 did not finish (interrupted by SIGTERM): a broken shard"
    with pytest.raises(ResultsError, match=r"K must be in 1\.\.N"):
        nightly.run_shard(3, 2, "smoke", tmp_path, [], lambda command: 0)


# -- merge --------------------------------------------------------------------------------------


def test_merge_joins_the_shards_into_the_night_with_its_report(
    nights: dict[str, Path], tmp_path: Path, cli: Callable[..., Done]
) -> None:
    merged = load(nights["good"] / "results.json")
    assert len(merged["results"]) == 7 and len(merged["run"]["shards"]) == 2
    assert {r["adapter"] for r in merged["results"]} == {"mine"}
    assert (nights["good"] / "report.html").is_file() and (nights["good"] / "report.md").is_file()
    missing = cli("nightly", "merge", nights["shards"] / "good-shard-1", "--expect", "2", "-o", tmp_path)
    assert missing.returncode == 2
    assert "expected 2 shard(s), got 1" in missing.stderr


# -- publish: the gate ----------------------------------------------------------------------------


def test_first_night_passes_with_a_note_then_a_planted_regression_fails_naming_it(
    nights: dict[str, Path], tmp_path: Path, publish: Callable[..., Done], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, board = tmp_path / "history", tmp_path / "board"
    first = publish(nights["good"], history, board)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"no previous night in {history}: nothing to compare (a first night passes)" in first.stdout
    assert len(list(history.glob("*.json"))) == 1

    second = publish(nights["bad"], history, board)
    assert second.returncode == 1, second.stdout + second.stderr
    out = second.stdout
    assert "REGRESSION mine count_steps.carry_state: went from passed to failed" in out
    assert "REGRESSION mine count_steps.cold_start: went from passed to failed" in out
    assert re.search(
        r"^error: \d+ regression\(s\) against .*history/\d{8}T\d{6}Z-\w+\.json: mine count_steps", out, re.M
    )
    # Both nights are on the leaderboard, the latest ranked; the compare is beside it.
    md = (board / "leaderboard.md").read_text()
    rows = [line for line in md.split("## Speed")[0].splitlines() if line.startswith("| 20")]
    assert [line.split("|")[4].strip() for line in rows] == ["7/7", "5/7"]
    assert "REGRESSION mine count_steps.carry_state" in (board / "compare.md").read_text()
    assert (board / "latest-report.html").is_file() and (board / "leaderboard.html").is_file()

    # Under GitHub Actions the same outcome is an annotation on the run's page.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    ci = publish(nights["bad"], history, board, "--base", sorted(history.glob("*.json"))[0])
    assert ci.returncode == 1
    assert re.search(r"^::error title=nightly regression::\d+ regression\(s\) against", ci.stdout, re.M)


def test_the_same_night_passes_against_itself_and_is_kept_once(
    nights: dict[str, Path], tmp_path: Path, publish: Callable[..., Done]
) -> None:
    history, board = tmp_path / "history", tmp_path / "board"
    assert publish(nights["good"], history, board).returncode == 0
    again = publish(nights["good"], history, board)  # a re-run of the publish step: no new night
    assert again.returncode == 0 and len(list(history.glob("*.json"))) == 1
    assert f"no previous night in {history}" in again.stdout


def test_a_task_version_change_warns_and_passes(
    nights: dict[str, Path], tmp_path: Path, publish: Callable[..., Done]
) -> None:
    history, board = tmp_path / "history", tmp_path / "board"
    assert publish(nights["good"], history, board).returncode == 0
    # Tomorrow count_steps is at version 2 (and the regression is there too): not comparable.
    bumped = tmp_path / "bumped"
    bumped.mkdir()
    payload: dict[str, Any] = copy.deepcopy(load(nights["bad"] / "results.json"))
    for rec in payload["results"]:
        if rec["task"] == "count_steps":
            rec["task_version"] += 1
    (bumped / "results.json").write_text(json.dumps(payload))
    done = publish(bumped, history, board)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: not compared with" in done.stdout
    assert "refusing to compare different task versions: count_steps v1 in BASE vs v2 in NEW" in done.stdout
    assert "tonight is the new base" in done.stdout and "REGRESSION" not in done.stdout
    md = (board / "leaderboard.md").read_text()
    assert "tasks: count_steps v1 -> v2" in md  # the leaderboard marks that night


def test_history_keeps_the_newest_nights(nights: dict[str, Path], tmp_path: Path, publish: Callable[..., Done]) -> None:
    history, board = tmp_path / "history", tmp_path / "board"
    for days in range(3):
        one = tmp_path / f"night{days}"
        one.mkdir()
        (one / "results.json").write_text((nights["good"] / "results.json").read_text())
        tomorrow(one, days)
        done = publish(one, history, board, "--keep", "2")
        assert done.returncode == 0
    assert "2 night(s) kept (at most 2), 1 dropped" in done.stdout
    kept = load(sorted(history.glob("*.json"))[0])
    assert len(list(history.glob("*.json"))) == 2
    first = dt.datetime.fromisoformat(load(nights["good"] / "results.json")["run"]["time"])
    assert dt.datetime.fromisoformat(kept["run"]["time"]) == first + dt.timedelta(days=1)


def test_a_missing_base_file_is_a_first_night_and_a_bad_one_an_error(
    nights: dict[str, Path], tmp_path: Path, publish: Callable[..., Done]
) -> None:
    done = publish(nights["good"], tmp_path / "h", tmp_path / "b", "--base", tmp_path / "none.json")
    assert done.returncode == 0 and f"no previous night at {tmp_path / 'none.json'}" in done.stdout
    (tmp_path / "bad.json").write_text("{")
    bad = publish(nights["good"], tmp_path / "h", tmp_path / "b", "--base", tmp_path / "bad.json")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


# -- the workflow calls the same commands ----------------------------------------------------------


def test_the_workflow_and_make_nightly_call_the_nightly_commands() -> None:
    workflow = (ROOT / ".github" / "workflows" / "nightly.yml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for step in ("nightly shard", "nightly merge", "nightly publish"):
        assert f"python -m reports {step}" in workflow, step
        assert f"$(PY) -m reports {step}" in makefile, step
    assert "pytest benchmarks" not in workflow  # the shard's pytest line lives in reports/nightly.py
