"""The adapter x check pivot: one row per task check, one column per adapter (tabulate)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tabulate import tabulate

#: How each item outcome reads in a cell; XPASS is an implementation beating an expectation.
LABELS = {
    "passed": "pass",
    "failed": "FAIL",
    "xfailed": "xfail",
    "xpassed": "XPASS",
    "skipped": "skip",
    "error": "ERROR",
}
LEGEND = (
    "cells: outcome value/threshold (median over seeds; k/N seeds passing when N > 1). "
    "xfail = expected failure (benchmarks/expectations.py); XPASS = better than expected"
)


def _num(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3g}"


def cell_text(records: list[dict[str, Any]]) -> str:
    first = records[0]
    label = LABELS.get(first.get("cell_outcome") or first["outcome"], first["outcome"])
    if first["outcome"] in ("skipped", "error") and first.get("value") is None:
        return label
    values = sorted(r["value"] for r in records if r.get("value") is not None)
    median = values[len(values) // 2] if values else None
    text = f"{label} {_num(median)}/{first['threshold']:g}"
    if len(records) > 1:
        text += f" {sum(bool(r['passed']) for r in records)}/{len(records)}"
    return text


def pivot(records: Iterable[dict[str, Any]], tablefmt: str = "simple") -> str:
    """The adapter x check table of a run's records."""
    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    adapters: list[str] = []
    gates: dict[tuple[str, str], str] = {}
    for rec in records:
        key = (rec["task"], rec["check"])
        cells[key][rec["adapter"]].append(rec)
        if rec["adapter"] not in adapters:
            adapters.append(rec["adapter"])
        op = ">=" if rec["higher_is_better"] else "<="
        gates[key] = f"{rec['metric']} {op} {rec['threshold']:g}"
    rows = []
    for (task, check), by_adapter in cells.items():
        version = next(iter(by_adapter.values()))[0]["task_version"]
        row = [f"{task} v{version}", check]
        row += [cell_text(by_adapter[a]) if a in by_adapter else "" for a in adapters]
        rows.append(row)
    return tabulate(rows, headers=["task", "check", *adapters], tablefmt=tablefmt, disable_numparse=True)


def better_than_expected(records: Iterable[dict[str, Any]]) -> list[str]:
    seen = []
    for rec in records:
        name = f"{rec['adapter']} {rec['task']}.{rec['check']}"
        if rec.get("cell_outcome") == "xpassed" and name not in seen:
            seen.append(name)
    return seen
