"""The adapter x check pivot: one row per task check, one column per adapter (tabulate)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tabulate import tabulate

from rnn_behaviour.reports.cells import FOREGONE, SPEED_TASK, adapters, cells, pass_rate_text, plain

#: How each item outcome reads in a cell; XPASS is an implementation beating an expectation.
LABELS = {
    "passed": "pass",
    "failed": "FAIL",
    "xfailed": "xfail",
    "xpassed": "XPASS",
    "skipped": "skip",
    "error": "ERROR",
    "incomplete": "INCOMPLETE",
}
LEGEND = (
    "cells: outcome value/threshold (median over seeds; k/N seeds passing and its 95% Wilson interval "
    "when N > 1). "
    "xfail = expected failure (benchmarks/expectations.py); xfail (not trained) = at the smoke tier, a built-in's "
    "model whose every check its calibration failed on every seed is not trained; XPASS = better than expected; "
    "INCOMPLETE = "
    "not judged: stopped when its projected training time passed --cell-timeout, or inconclusive (a row of yours "
    "still closing on the gate after its extension). "
    "training time: seconds spent training the row's models (sum over its tasks and seeds)"
)
#: The pivot's last row: per adapter, the sum of `train_seconds` over its (task, seed) models.
TRAINING_ROW = ("training time (s)", "all tasks")


def _num(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3g}"


def cell_text(records: list[dict[str, Any]]) -> str:
    first = records[0]
    outcome = str(first.get("cell_outcome") or first["outcome"])
    label = LABELS.get(outcome, outcome)  # an outcome this module does not know reads as it is
    if all(r.get("stop_reason") == FOREGONE for r in records):
        return f"{label} (not trained)"
    if all(r.get("value") is None for r in records) and outcome not in ("passed", "failed", "xfailed", "xpassed"):
        return label
    values = sorted(r["value"] for r in records if r.get("value") is not None)
    median = values[len(values) // 2] if values else None
    text = f"{label} {_num(median)}/{first['threshold']:g}"
    if len(records) > 1:
        text += " " + pass_rate_text(sum(bool(r["passed"]) for r in records), len(records))
    return text


def pivot(records: Iterable[dict[str, Any]], tablefmt: str = "simple") -> str:
    """The adapter x check table of a run's records (speed records have their own table)."""
    headers, rows = pivot_rows(records)
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def pivot_rows(records: Iterable[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The pivot's headers (task, check, one per adapter) and rows, for any output format;
    speed records are left out (see `speed_table`)."""
    records = [r for r in records if r["task"] != SPEED_TASK]
    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        cells[(rec["task"], rec["check"])][rec["adapter"]].append(rec)
    names = adapters(records)
    rows = []
    for (task, check), by_adapter in cells.items():
        version = next(iter(by_adapter.values()))[0]["task_version"]
        row = [f"{task} v{version}", check]
        row += [cell_text(by_adapter[a]) if a in by_adapter else "" for a in names]
        rows.append(row)
    seconds = training_seconds(records)
    if seconds:
        rows.append([*TRAINING_ROW, *(f"{seconds[a]:.1f}" if a in seconds else "" for a in names)])
    return ["task", "check", *names], rows


def training_seconds(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """{adapter: seconds spent training its models}: `train_seconds` summed over the adapter's
    (task, seed) models, each counted once (a task's checks share one model)."""
    per_model: dict[str, dict[tuple[str, Any], float]] = defaultdict(dict)
    for rec in records:
        value = rec.get("train_seconds")
        if isinstance(value, int | float) and not isinstance(value, bool):
            per_model[rec["adapter"]][(rec["task"], rec.get("seed"))] = float(value)
    return {adapter: sum(models.values()) for adapter, models in per_model.items()}


def general_reason(record: dict[str, Any]) -> str:
    """The record's reason (ANSI codes stripped) with its own task.check said as "this check", so
    a reason that differs only by the check it names (every weight check's "... forward_parity
    needs the weights") is one reason."""
    task, check = record["task"], record["check"]
    reason = plain(str(record.get("reason") or "")).strip().replace(f"{task}.{check}", "this check")
    if "_" in check:  # an identifier (carry_state, forward_parity), never a plain word such as "fit"
        reason = re.sub(rf"(?<![\w.]){re.escape(check)}(?!\w)", "this check", reason)
    return reason


def reason_groups(records: Iterable[dict[str, Any]], outcomes: Iterable[str]) -> list[tuple[str, str]]:
    """Each distinct reason of the cells whose verdict is in `outcomes`, once, with the cells it
    applies to: [(reason, "adapter: task (check, check); task.check; other: ...")]."""
    wanted = set(outcomes)
    groups: dict[str, dict[str, dict[str, list[str]]]] = {}
    for cell in cells(r for r in records if r["task"] != SPEED_TASK):
        reason = general_reason(cell.first) if cell.verdict in wanted else ""
        if reason:
            checks = groups.setdefault(reason, {}).setdefault(cell.adapter, {}).setdefault(cell.task, [])
            checks.append(cell.check)
    out = []
    for reason, by_adapter in groups.items():
        items = "; ".join(
            f"{adapter}: "
            + ", ".join(f"{t} ({', '.join(cs)})" if len(cs) > 1 else f"{t}.{cs[0]}" for t, cs in by_task.items())
            for adapter, by_task in by_adapter.items()
        )
        out.append((reason, items))
    return out


def skip_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per distinct skip reason, with the cells it applies to."""
    return [f"skipped: {reason} [{items}]" for reason, items in reason_groups(records, ["skipped"])]


#: Side-by-side comparisons the seeds teach: (title, [(label, task, check), ...]).
LESSONS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "seed 001: the same letters as timesteps vs as features (vs one letter alone)",
        (
            ("3 timesteps x 1 feature", "alphabet_timesteps", "accuracy"),
            ("1 timestep x 3 features", "alphabet_features", "accuracy"),
            ("1 letter", "alphabet_one_char", "accuracy"),
        ),
    ),
    (
        "seed 000: trained on the last step only vs on every step, tested at length 40",
        (
            ("last step only", "count_last", "lengths"),
            ("every step", "count_steps", "longer"),
        ),
    ),
)


def lessons(records: Iterable[dict[str, Any]], tablefmt: str = "simple") -> list[str]:
    """One small table per lesson whose tasks ran: median value and epochs per adapter."""
    by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    adapters: list[str] = []
    for rec in records:
        by_key[(rec["adapter"], rec["task"], rec["check"])].append(rec)
        if rec["adapter"] not in adapters:
            adapters.append(rec["adapter"])
    out = []
    for title, rows in LESSONS:
        table_rows = []
        for label, task, check in rows:
            cells = []
            for adapter in adapters:
                recs = by_key.get((adapter, task, check), [])
                values = sorted(r["value"] for r in recs if r.get("value") is not None)
                epochs = sorted(r["epochs"] for r in recs if r.get("epochs") is not None)
                cells.append(
                    f"{_num(values[len(values) // 2])} in {epochs[len(epochs) // 2]} ep" if values and epochs else ""
                )
            if any(cells):
                table_rows.append([label, f"{task}.{check}", *cells])
        if len(table_rows) > 1:
            out.append(title + "\n" + tabulate(table_rows, headers=["", "check", *adapters], tablefmt=tablefmt))
    return out


def better_than_expected(records: Iterable[dict[str, Any]]) -> list[str]:
    seen = []
    for rec in records:
        name = f"{rec['adapter']} {rec['task']}.{rec['check']}"
        if rec.get("cell_outcome") == "xpassed" and name not in seen:
            seen.append(name)
    return seen


def speed_table(records: Iterable[dict[str, Any]], tablefmt: str = "simple") -> str:
    """Median time and FLOP rate per speed item: one row per (operation, shape), one column per
    adapter; empty when the run timed nothing."""
    timed = [r for r in records if r["task"] == SPEED_TASK and r.get("value") is not None]
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    for rec in timed:
        rate = (rec.get("extras") or {}).get("flops_per_s")
        text = f"{rec['value'] * 1e3:.3g} ms"
        rows[rec["check"]][rec["adapter"]] = text + (f" {rate / 1e9:.3g} GFLOP/s" if rate else "")
    if not rows:
        return ""
    names = adapters(timed)
    body = [[check, *(cells.get(a, "") for a in names)] for check, cells in rows.items()]
    return tabulate(body, headers=["speed (median)", *names], tablefmt=tablefmt, disable_numparse=True)
