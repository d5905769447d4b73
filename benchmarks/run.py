"""`python -m benchmarks.run [PYTEST ARGS]`: what `make bench` and `make smoke` run.

The matrix and conformance run on every core (`-n auto`, through the suite's scheduler); then the
speed items run serially, since timing needs a quiet machine (under pytest-xdist they skip). The
two results files are merged into one `results.json` and report in `--report-dir`, as one
`pytest benchmarks` would have written.

With `-n 0`, `-n0`, `--numprocesses 0` or `-p no:xdist` among the arguments, one pytest process runs
everything, the speed items included (for `--pdb`, or to time the matrix serially). A `-n N` of
the caller's own replaces `auto` for the matrix.

The exit code is the matrix run's, else the speed run's; a speed run with no item selected (for
example `-k count_steps`) counts as a pass. An interrupted or broken matrix run ends the command
with its own code, its results in the report directory, and no speed run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from reports import write_reports
from reports.merge import merge_files
from reports.results import ResultsError, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent
SPEED = "benchmarks/test_speed.py"
DEFAULT_REPORT_DIR = "reports/latest"
NO_TESTS = 5

Runner = Callable[[list[str]], int]


def one_process(args: Sequence[str]) -> bool:
    """Whether the arguments ask for a single pytest process."""
    joined = " " + " ".join(args) + " "
    return bool(re.search(r" (-n ?0|--numprocesses[= ]0|-p ?no:xdist) ", joined))


def report_dir(args: Sequence[str]) -> Path:
    """The caller's `--report-dir` (the last one given, as pytest reads it), from the repository root."""
    found = DEFAULT_REPORT_DIR
    for i, arg in enumerate(args):
        if arg == "--report-dir" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--report-dir="):
            found = arg.split("=", 1)[1]
    path = Path(found)
    return path if path.is_absolute() else ROOT / path


def pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def own_environment() -> dict[str, str]:
    """This process's environment without pytest-xdist's worker variables: run from inside a worker
    (a test of this module under `-n`), pytest-benchmark would read PYTEST_XDIST_WORKER and turn
    timing off in the serial speed run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


def run(args: Sequence[str], runner: Runner | None = None, log: Callable[[str], object] = print) -> int:
    call: Runner = runner or (lambda command: subprocess.call(command, cwd=ROOT, env=own_environment()))
    if one_process(args):
        return call(pytest("benchmarks", *args))
    out = report_dir(args)
    (out / "results.json").unlink(missing_ok=True)  # a stale one must not pass for this run's
    rc = call(pytest("benchmarks", "-n", "auto", "--ignore", SPEED, *args))
    if rc not in (0, 1):
        return rc
    log("rnn-behaviour: the matrix is done; now the speed items, serially (timing needs a quiet machine)")
    with tempfile.TemporaryDirectory(prefix="rnn-behaviour-speed-") as parts:
        speed = Path(parts)
        speed_rc = call(pytest(SPEED, *args, "-n", "0", "--report-dir", str(speed)))
        if speed_rc == NO_TESTS:
            return rc
        if not (speed / "results.json").is_file() or not (out / "results.json").is_file():
            return max(rc, speed_rc, 3)
        try:
            merged = merge_files([out / "results.json", speed / "results.json"])
        except ResultsError as exc:
            log(f"rnn-behaviour: the speed results could not join the matrix's ({exc}); {out} has the matrix's")
            return max(rc, speed_rc, 3)
    write_json_atomic(out / "results.json", merged)
    write_reports(merged, out, log=log)
    log(
        f"rnn-behaviour: the matrix and the speed items in one report: {out / 'results.json'} "
        "(and report.md, report.html)"
    )
    return rc or speed_rc


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
