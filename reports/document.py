"""What report.md and report.html say, as plain tables: the pivot, then one table per task.

Both formats are rendered from the same `Table`s, so the Markdown and the HTML never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from rnn_behaviour.reports import profile, table
from rnn_behaviour.reports.cells import (
    SPEED_TASK,
    CellRecords,
    cells,
    extras,
    median,
    num,
    pass_rate_text,
    plain_records,
)

TASK_HEADERS = [
    "check",
    "adapter",
    "outcome",
    "metric",
    "value",
    "threshold",
    "baseline",
    "k/N seeds [95% CI]",
    "time to criterion (s)",
    "epochs",
    "params",
    "extras",
]


@dataclass(frozen=True)
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        return tabulate(self.rows, headers=self.headers, tablefmt="github", disable_numparse=True)


def pivot_table(records: list[dict[str, Any]]) -> Table:
    headers, rows = table.pivot_rows(records)
    return Table("adapter x check", headers, rows, table.LEGEND)


PROFILE_NOTE = (
    "judged checks passed per capability (what each check measures; control checks and timings not counted): "
    "a pass or XPASS counts as passed; a failure, error or expected failure as judged but not passed; "
    "skipped and incomplete cells are not judged"
)


def profile_table(records: list[dict[str, Any]]) -> Table:
    """The capability profile (reports/profile.py): a row per capability, a column per adapter."""
    headers, rows = profile.profile_rows(records)
    return Table("capability profile", headers, rows, PROFILE_NOTE)


def _extras(cell: CellRecords) -> str:
    keys = dict.fromkeys(k for r in cell.records for k in extras(r))
    parts = []
    for key in keys:
        value = cell_median_extra(cell, key)
        if value is not None:
            parts.append(f"{key}={num(value)}")
    return ", ".join(parts)


def cell_median_extra(cell: CellRecords, key: str) -> float | None:
    return median(extras(r).get(key) for r in cell.records)


def task_tables(records: Iterable[dict[str, Any]]) -> list[Table]:
    """One table per task (with its version): a row per (check, adapter)."""
    by_task: dict[tuple[str, int], list[CellRecords]] = {}
    for cell in cells(records):
        by_task.setdefault((cell.task, cell.task_version), []).append(cell)
    out = []
    for (task, version), task_cells in by_task.items():
        order = list(dict.fromkeys(c.check for c in task_cells))
        rows = []
        for cell in sorted(task_cells, key=lambda c: order.index(c.check)):
            first = cell.first
            rows.append(
                [
                    cell.check,
                    cell.adapter,
                    table.LABELS.get(cell.verdict, cell.verdict),
                    f"{first['metric']} {'>=' if first['higher_is_better'] else '<='}",
                    num(cell.value, 4),
                    f"{first['threshold']:g}",
                    num(cell.field_median("baseline"), 4),
                    pass_rate_text(cell.passed, cell.seeds),
                    num(cell.field_median("time_to_criterion_s")),
                    num(cell.field_median("epochs")),
                    num(cell.field_median("params"), 9),
                    _extras(cell),
                ]
            )
        # Expected failures' reasons, each once; skips and failures have their own sections.
        reasons = table.reason_groups([r for c in task_cells for r in c.records], ["xfailed", "xpassed"])
        note = "; ".join(f"{reason} [{items}]" for reason, items in reasons)
        out.append(Table(f"{task} v{version}", TASK_HEADERS, rows, note))
    return out


#: Verdicts that need no explanation of what went wrong; any other (failed, error, or one this
#: module does not know, such as a newer suite's) gets its message in the reports.
EXPLAINED = frozenset({"passed", "xpassed", "xfailed", "skipped"})


@dataclass(frozen=True)
class Failure:
    """What went wrong in a cell (or in several cells with the same message, such as every check
    of a model whose training raised): the verdict label, the cells, pytest's message."""

    label: str
    items: str
    message: str


def failures(records: Iterable[dict[str, Any]]) -> list[Failure]:
    """One `Failure` per distinct (verdict, message) among the failed, errored and otherwise
    unexplained cells, in record order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells(r for r in records if r["task"] != SPEED_TASK):
        if cell.verdict in EXPLAINED:
            continue
        # The message names its own cell; a message shared by several cells is said once.
        rec = {**cell.first, "reason": cell.message, "cell_outcome": cell.verdict}
        groups.setdefault((cell.verdict, table.general_reason(rec)), []).append(rec)
    out = []
    for (verdict, general), recs in groups.items():
        items = "; ".join(i for _, i in table.reason_groups(recs, [verdict]))
        message = recs[0]["reason"] if len(recs) == 1 else general
        out.append(Failure(table.LABELS.get(verdict, verdict), items, message))
    return out


def run_summary(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's metadata as (label, text) pairs."""
    versions = run.get("versions") or {}
    machine = run.get("machine") or {}
    incomplete = [("INCOMPLETE run", str(run["incomplete"]))] if run.get("incomplete") else []
    return [
        *incomplete,
        ("time", str(run.get("time"))),
        ("git", str(run.get("git_sha") or "unknown")[:12]),
        ("tier", str(run.get("tier"))),
        ("seeds", f"{run.get('seeds')} (min pass rate {run.get('min_pass_rate')})"),
        ("device", str(run.get("device"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else ""),
        ("machine", ", ".join(f"{k} {v}" for k, v in machine.items()) if isinstance(machine, dict) else ""),
    ]


def markdown(payload: dict[str, Any]) -> str:
    """report.md: run metadata, the pivot, what went wrong, the skips, the seeds' lessons, then one
    table per task. ANSI escape codes (Keras error text has them) are left out."""
    payload = plain_records(payload)
    records = payload["results"]
    lines = ["# rnn-behaviour report", ""]
    lines += [f"- **{label}**: {text}" for label, text in run_summary(payload["run"])]
    pivot = pivot_table(records)
    if pivot.rows:
        lines += ["", "## Adapter x check", "", pivot.markdown(), "", pivot.note, ""]
    capabilities = profile_table(records)
    if capabilities.rows:
        lines += ["## Capability profile", "", capabilities.markdown(), "", capabilities.note, ""]
    wrong = failures(records)
    if wrong:
        lines += ["## What went wrong", ""]
        for f in wrong:
            lines += [f"**{f.label}** {f.items}", "", "~~~~text", f.message, "~~~~", ""]
    skipped = table.reason_groups(records, ["skipped"])
    if skipped:
        lines += ["## Skipped", ""]
        lines += [f"- {reason} [{items}]" for reason, items in skipped]
        lines += [""]
    speed = table.speed_table(records, tablefmt="github")
    if speed:
        lines += ["", "## Speed", "", speed, ""]
    for lesson in table.lessons(records):
        title, _, body = lesson.partition("\n")
        lines += [f"**{title}**", "", "```", body, "```", ""]
    better = table.better_than_expected(records)
    if better:
        lines += ["Better than expected (XPASS): " + ", ".join(better), ""]
    lines += ["## Checks per task", ""]
    for t in task_tables(records):
        lines += [f"### {t.title}", "", t.markdown(), ""]
        if t.note:
            lines += [f"Notes: {t.note}", ""]
    return "\n".join(lines)
