"""The plugin's result collection (the `ResultCollector` conftest.py registers): records travel
from each item through `user_properties` to `pytest_runtest_logreport` (so they survive
pytest-xdist), are written to `<report-dir>/results.json` (and report.md, report.html, unless
`benchmarks/run.py` draws them later: `REPORTS_LATER`) at the end of the session, and the terminal
shows the pivot, what was skipped and what is incomplete; plus how an interrupted run is marked.
This module imports no ML framework.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour import HOME, base_dir, environment
from rnn_behaviour.benchmarks.conformance import CHECKS, Conformance
from rnn_behaviour.benchmarks.matrix import Matrix
from rnn_behaviour.benchmarks.records import CELL_PROPERTY, INCOMPLETE_PROPERTY, RECORDS_PROPERTY
from rnn_behaviour.reports import REPORTS_LATER, table, write_reports
from rnn_behaviour.reports.cells import FOREGONE, SPEED_TASK, plain
from rnn_behaviour.reports.results import SCHEMA_VERSION, run_metadata, write_json_atomic

#: The session's Matrix, in the config's stash (set by conftest.py's pytest_configure).
MATRIX = pytest.StashKey[Matrix]()


class ResultCollector:
    """Gathers the records of every item (on the xdist controller too), writes results.json and
    prints the pivot."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.matrix = config.stash[MATRIX]
        self.records: list[dict[str, Any]] = []
        self.write_error = ""
        self.incomplete = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if CELL_PROPERTY in props:
            self.records.extend(self._records_of(report, props))
        elif report.when == "???":  # pytest-xdist: the worker died running this item
            from rnn_behaviour.benchmarks.scheduling import param_id  # imports xdist, which is there if this runs

            cell = self._templates().get(param_id(report.nodeid))
            if cell is not None:
                reason = f"{report.longrepr}: the process died (a hard crash, such as a segfault or an abort)"
                self.records.extend(self._bare_records(cell, "error", reason))

    def _templates(self) -> dict[str, dict[str, Any]]:
        """{item parameter id: what `_bare_records` takes} for the behaviour and conformance items."""
        tier, seeds = self.matrix.tier, self.matrix.seeds
        out = {cell.id: {"template": self.matrix.template(cell), "seeds": seeds} for cell in self.matrix.cells()}
        for adapter in self.matrix.adapters:
            for check in CHECKS:
                item = Conformance(adapter, check.name)
                out[item.id] = {"template": item.template(tier), "seeds": 1}
        return out

    def _records_of(self, report: pytest.TestReport, props: dict[str, Any]) -> list[dict[str, Any]]:
        """Final records of an item, from its setup (skip or error) or call report."""
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            records = props.get(RECORDS_PROPERTY)
            if not records:  # a check that found it cannot run skips in its call (Outcome.skipped)
                outcome = "skipped" if report.skipped and not xfail else "error"
                return self._bare_records(props[CELL_PROPERTY], outcome, _reason(report))
            if report.skipped and INCOMPLETE_PROPERTY in props:  # inconclusive (benchmarks/extension.py)
                for rec in records:
                    rec.update(outcome="passed" if rec["passed"] else "incomplete", cell_outcome="incomplete")
                    rec.update(reason=props[INCOMPLETE_PROPERTY], message="")
                return records
            cell_outcome = {
                ("passed", False): "passed",
                ("passed", True): "xpassed",
                ("failed", False): "failed",
                ("skipped", True): "xfailed",
            }.get((report.outcome, xfail), report.outcome)
            # What went wrong, as the terminal shows it, for report.md and report.html.
            message = shareable(report.longreprtext) if report.failed or xfail else ""
            for rec in records:
                if rec["passed"]:
                    rec["outcome"] = "xpassed" if xfail else "passed"
                else:
                    rec["outcome"] = "xfailed" if xfail else "failed"
                rec["cell_outcome"] = cell_outcome
                rec["reason"] = report.wasxfail if xfail else ""
                rec["message"] = message
            return records
        if report.when == "setup" and INCOMPLETE_PROPERTY in props:
            return self._bare_records(props[CELL_PROPERTY], "incomplete", props[INCOMPLETE_PROPERTY])
        if report.when == "setup" and report.outcome in ("skipped", "failed"):
            if xfail:  # a foregone model, not trained (Matrix.foregone)
                records = self._bare_records(props[CELL_PROPERTY], "xfailed", report.wasxfail)
                return [{**rec, "stop_reason": FOREGONE} for rec in records]
            outcome = "skipped" if report.outcome == "skipped" else "error"
            return self._bare_records(props[CELL_PROPERTY], outcome, _reason(report))
        return []

    @staticmethod
    def _bare_records(cell: dict[str, Any], outcome: str, reason: str) -> list[dict[str, Any]]:
        return [
            {**cell["template"], "seed": seed, "outcome": outcome, "cell_outcome": outcome, "reason": reason}
            for seed in range(cell["seeds"])
        ]

    def _active(self) -> bool:
        return bool(self.records) and not hasattr(self.config, "workerinput")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self._active():
            return
        self.incomplete = run_incomplete(session)
        run = run_metadata(
            self.matrix.tier,
            self.matrix.seeds,
            self.config.getoption("min_pass_rate"),
            HOME,
            device=self.config.getoption("device"),
        )
        run["incomplete"] = self.incomplete or None
        gpu = environment.accelerator(self.config.getoption("device"))
        if gpu:
            run["accelerator"] = gpu  # the device name, CUDA, cuDNN and the torch build
        payload = {
            "schema_version": SCHEMA_VERSION,
            "run": run,
            "results": sorted(self.records, key=lambda r: (r["adapter"], r["task"], r["check"], r["seed"])),
        }
        try:
            write_json_atomic(self.results_path, payload)
        except OSError as exc:
            self.write_error = f"could not write {self.results_path}: {exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        if not self.reports_later:
            write_reports(payload, self.results_path.parent, log=self.config.get_terminal_writer().line)
            return
        for name in ("report.md", "report.html"):  # an earlier run's: not to be read with these results
            (self.results_path.parent / name).unlink(missing_ok=True)

    @property
    def reports_later(self) -> bool:
        """Whether `benchmarks/run.py` draws the report after this run (`REPORTS_LATER`)."""
        return os.environ.get(REPORTS_LATER) == "1"

    @property
    def results_path(self) -> Path:
        path = Path(self.config.getoption("report_dir"))
        return (path if path.is_absolute() else base_dir() / path) / "results.json"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self._active():
            return
        tr = terminalreporter
        tr.write_sep("=", f"rnn-behaviour: tier {self.matrix.tier}, {self.matrix.seeds} seed(s)")
        if any(r["task"] != SPEED_TASK for r in self.records):
            tr.write_line(table.pivot(self.records))
            tr.write_line(table.LEGEND)
            for line in table.skip_lines(self.records):
                tr.write_line(line)
        for lesson in table.lessons(self.records):
            tr.write_line("")
            tr.write_line(lesson)
        timings = table.speed_table(self.records)
        if timings:
            tr.write_line("")
            tr.write_line(timings)
        for name in table.better_than_expected(self.records):
            tr.write_line(f"better than expected (XPASS): {name}")
        if self.incomplete:
            tr.write_line(f"INCOMPLETE run: {self.incomplete}; its results and reports cover only what ran", red=True)
        incomplete = sorted({f"{r['adapter']}-{r['task']}" for r in self.records if r["outcome"] == "incomplete"})
        if incomplete:
            tr.write_line(
                f"incomplete cells (not judged: projected past --cell-timeout, or inconclusive after an extension; "
                f"each record's reason says which): {', '.join(incomplete)}",
                yellow=True,
            )
        if self.write_error:
            tr.write_line(f"rnn-behaviour: {self.write_error}", red=True)
        else:
            tr.write_line(f"results: {self.results_path}")
            html = self.results_path.parent / "report.html"
            if not self.reports_later and html.exists():
                tr.write_line(f"report: {html} (and report.md)")


def run_incomplete(session: pytest.Session) -> str:
    """Why the session did not run every selected item ("" when it did): an interrupt (Ctrl-C, or a
    SIGTERM, which the suite turns into one), or a stop such as --maxfail / -x."""
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted before every item ran"
    stopped = session.shouldstop or session.shouldfail
    return f"stopped early ({stopped})" if stopped else ""


def terminate_as_interrupt(config: pytest.Config) -> None:
    """A SIGTERM (a session or job that ends) ends the run as Ctrl-C does, so the results and
    reports are still written, marked incomplete. Only in the main process, only over the default."""
    if hasattr(config, "workerinput") or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return
    config.add_cleanup(default_sigterm)


def default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = report.longreprtext.strip().splitlines()
    return lines[0] if lines else ""


#: The line pytest-xdist puts before a worker's failure: `[gw1] linux -- Python 3.11.7 /path/python`.
XDIST_WORKER_LINE = re.compile(r"^\[gw\d+\] \S+ -- Python \S+ .*$\n?", re.M)


def shareable(longrepr: str) -> str:
    """A failure's text as a record keeps it: the verdict, without ANSI codes or xdist's worker line
    (which names this machine's interpreter path); the same under -n as in one process."""
    return XDIST_WORKER_LINE.sub("", plain(longrepr)).strip()
