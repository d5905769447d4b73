"""`python -m benchmarks.run [PYTEST ARGS]`: what `make bench` and `make smoke` run.

The matrix and conformance run on every core (`-n auto`, through the suite's scheduler); then the
speed items run serially, since timing needs a quiet machine (under pytest-xdist they skip). The
two results files are merged into one `results.json` and report in `--report-dir`, as one
`pytest benchmarks` would have written (the speed run's own stay in `<report-dir>/speed`). The
matrix run writes its results but not its report (`REPORTS_LATER`): the report is drawn once, at
the end, of what there is (the matrix alone when the speed run wrote nothing or it was cut short).

One pytest process runs everything, the speed items included, as `pytest benchmarks` does, when
the arguments ask for it (`-n 0`, `-n0`, `--numprocesses 0`, `-p no:xdist`, for `--pdb` or to time
the matrix serially) or ask pytest for something other than a run (`--collect-only`, `--help`,
...). A `-n N` of the caller's own replaces `auto` for the matrix. Select with `-k` and `-m`; a test
path is refused (run `pytest PATH` for that), since both runs would collect it.

pytest's own output files (`--junitxml`, `--benchmark-json`) are written by each run, the speed
run's last: run pytest itself where the matrix's are wanted.

The exit code is the worse of the two runs' (pytest's codes; 5, nothing selected, only when
neither run selected anything). An interrupted or broken matrix run ends the command with its own
code and no speed run; the matrix's results are in the report directory as pytest wrote them.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from rnn_behaviour import DEFAULT_REPORT_DIR, base_dir
from rnn_behaviour.invoke import pytest_command
from rnn_behaviour.reports import REPORTS_LATER, write_reports
from rnn_behaviour.reports.merge import merge
from rnn_behaviour.reports.results import ResultsError, load, write_json_atomic

SPEED = "benchmarks/test_speed.py"
#: Where in the report directory the speed run writes its own results and report (kept: its
#: pivot names them), before they join the matrix's one level up.
SPEED_PART = "speed"
NO_TESTS, USAGE = 5, 4
#: Arguments after which pytest runs nothing: they go to one plain pytest.
NOT_A_RUN = ("--collect-only", "--co", "--help", "-h", "--version", "-V", "--fixtures", "--markers", "--setup-plan")

Runner = Callable[[list[str]], int]


def say(line: str) -> None:
    print(line, flush=True)


def one_process(args: Sequence[str]) -> bool:
    """Whether the arguments ask for a single pytest process (or for no run at all)."""
    joined = " " + " ".join(args) + " "
    return bool(re.search(r" (-n ?0|--numprocesses[= ]0|-p ?no:xdist) ", joined)) or any(a in NOT_A_RUN for a in args)


def test_paths(args: Sequence[str]) -> list[str]:
    """The arguments that name test files or items (`benchmarks/test_speed.py`, `...::test_check`)."""
    return [a for a in args if not a.startswith("-") and (a.endswith(".py") or "::" in a or a.startswith("benchmarks"))]


def report_dir(args: Sequence[str]) -> Path:
    """The `--report-dir` pytest will use (the last one given, PYTEST_ADDOPTS first), from the
    repository root."""
    found = DEFAULT_REPORT_DIR
    every = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *args]
    for i, arg in enumerate(every):
        if arg == "--report-dir" and i + 1 < len(every):
            found = every[i + 1]
        elif arg.startswith("--report-dir="):
            found = arg.split("=", 1)[1]
    path = Path(found)
    return path if path.is_absolute() else base_dir() / path


def pytest(*args: str) -> list[str]:
    return pytest_command(args)


def own_environment() -> dict[str, str]:
    """This process's environment without pytest-xdist's worker variables: run from inside a worker
    (a test of this module under `-n`), pytest-benchmark would read PYTEST_XDIST_WORKER and turn
    timing off in the serial speed run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


def call(command: list[str]) -> int:
    """Run pytest and wait for it, through Ctrl-C and SIGTERM: pytest gets the same Ctrl-C (one
    process group) and a SIGTERM passed on, and needs the time to write its results."""
    child = subprocess.Popen(command, env=own_environment())
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def fresh(results: Path, since: float) -> dict[str, Any] | None:
    """The results file if this run wrote it (a stale one from an earlier run does not count)."""
    try:
        if results.stat().st_mtime < since:
            return None
        return load(results)
    except (OSError, ResultsError):
        return None


def run(args: Sequence[str], runner: Runner = call, log: Callable[[str], None] = say) -> int:
    if paths := test_paths(args):
        log(
            f"rnn-behaviour: make bench/smoke run the benchmarks directory; select with -k or -m, "
            f"or run pytest {' '.join(paths)} for those paths (got {', '.join(paths)})"
        )
        return USAGE
    if one_process(args):
        return runner(pytest("benchmarks", *args))
    out = report_dir(args)
    started = time.time() - 2  # a file system's clock may round modification times down
    rc = matrix_run(args, runner)
    matrix = fresh(out / "results.json", started) if rc != NO_TESTS else None
    if rc not in (0, 1, NO_TESTS):
        matrix_report(matrix, out, log)
        return rc
    log("rnn-behaviour: the matrix is done; now the speed items, serially (timing needs a quiet machine)")
    if rc != NO_TESTS and matrix is None:
        log(f"rnn-behaviour: the matrix run (exit {rc}) wrote no {out / 'results.json'}; the speed items still run")
    speed_dir = out / SPEED_PART
    speed_rc = runner(pytest(SPEED, *args, "-n", "0", "--report-dir", str(speed_dir)))
    speed = fresh(speed_dir / "results.json", started) if speed_rc != NO_TESTS else None
    if rc == NO_TESTS and speed_rc == NO_TESTS:
        return NO_TESTS
    worst = max(code for code in (rc, speed_rc) if code != NO_TESTS)
    if speed is None:
        matrix_report(matrix, out, log)
        if speed_rc != NO_TESTS:
            log(f"rnn-behaviour: the speed run (exit {speed_rc}) wrote no results; {out} has the matrix's alone")
        return worst
    if matrix is None:
        merged = speed
    else:
        try:
            merged = merge([("matrix", matrix), ("speed", speed)])
        except ResultsError as exc:
            matrix_report(matrix, out, log)
            log(f"rnn-behaviour: the speed results could not join the matrix's ({exc}); {out} has the matrix's")
            return max(worst, 3)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", merged)
    write_reports(merged, out, log=log)
    log(f"rnn-behaviour: the matrix and the speed items in one report: {out / 'results.json'} (report.md, report.html)")
    return worst


def matrix_report(matrix: dict[str, Any] | None, out: Path, log: Callable[[str], None]) -> None:
    """The report of the matrix's results alone, where the speed items' cannot join them."""
    if matrix is not None and write_reports(matrix, out, log=log):
        log(f"rnn-behaviour: the matrix's report (no speed items): {out / 'report.html'} (and report.md)")


def matrix_run(args: Sequence[str], runner: Runner) -> int:
    """The matrix on every core, writing its results.json but not its report: `run` writes the
    report once, of the matrix and speed items together (or of the matrix alone when they cannot
    join it)."""
    with mock.patch.dict(os.environ, {REPORTS_LATER: "1"}):  # what the runner's child inherits
        return runner(pytest("benchmarks", "-n", "auto", "--ignore", SPEED, *args))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
