"""The capability profile: per adapter, the share of its gated checks passed, by what each check
measures (the record's `capability`: memory length, state tracking, counting, ...; tasks/base.py
CAPABILITIES), as bsuite summarises an agent by tag in one radar. And the memory curves side by
side: the curves of the memory-length and state-tracking tasks (recall vs delay, accuracy vs length).

A cell counts when it was judged: passed (or better than expected) is a pass; failed, error or an
expected failure is a gated check not passed; skipped and incomplete cells were not judged and do
not count. Control checks have no capability and speed items are timings: neither counts.
"""

from __future__ import annotations

import math
from typing import Any

from rnn_behaviour.reports.cells import BAD, GOOD, CellRecords, adapters, cells
from rnn_behaviour.reports.plots import _color, _png, _pyplot, series

#: The profile's axes in the order the report shows them (tasks/base.py CAPABILITIES, which a
#: test keeps equal); a capability a record names beyond these comes after them.
ORDER = (
    "basics", "memory length", "state tracking", "counting", "length generalisation", "state contract",
    "numerical conformance",
)  # fmt: skip
#: The capabilities whose curves `memory_curves` draws.
MEMORY = ("memory length", "state tracking")
JUDGED_NOT_PASSED = BAD | {"xfailed"}


def _capability(cell: CellRecords) -> str | None:
    value = cell.first.get("capability")
    return value if isinstance(value, str) and value else None


def profile(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[int, int]]]:
    """{adapter: {capability: (passed, judged)}} over the run's cells with a capability."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for cell in cells(records):
        capability = _capability(cell)
        if capability is None or cell.is_speed or cell.verdict not in GOOD | JUDGED_NOT_PASSED:
            continue
        passed, judged = out.setdefault(cell.adapter, {}).get(capability, (0, 0))
        out[cell.adapter][capability] = (passed + (cell.verdict in GOOD), judged + 1)
    return out


def axes(found: dict[str, dict[str, tuple[int, int]]]) -> list[str]:
    named = {c for row in found.values() for c in row}
    return [c for c in ORDER if c in named] + sorted(named - set(ORDER))


def profile_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The profile as a table: one row per capability, one column per adapter, `k/n (pct%)`."""
    found = profile(records)
    if not found:
        return [], []
    names = [a for a in adapters(records) if a in found]
    rows = []
    for capability in axes(found):
        row = [capability]
        for adapter in names:
            passed, judged = found[adapter].get(capability, (0, 0))
            row.append(f"{passed}/{judged} ({100 * passed / judged:.0f}%)" if judged else "-")
        rows.append(row)
    return ["capability", *names], rows


def radar(records: list[dict[str, Any]]) -> bytes | None:
    """One polar figure: per adapter, the share of judged checks passed on each capability axis."""
    found = profile(records)
    labels = axes(found)
    if len(labels) < 3:  # a polygon needs three axes; the table says the rest
        return None
    plt = _pyplot()
    angles = [2 * math.pi * k / len(labels) for k in range(len(labels))]
    fig = plt.figure(figsize=(6.5, 5.2))
    ax = fig.add_subplot(projection="polar")
    for adapter in (a for a in adapters(records) if a in found):
        shares = []
        for capability in labels:
            passed, judged = found[adapter].get(capability, (0, 0))
            shares.append(passed / judged if judged else math.nan)
        ax.plot([*angles, angles[0]], [*shares, shares[0]], lw=1.5, color=_color(records, adapter), label=adapter)
        ax.fill([*angles, angles[0]], [0.0 if math.isnan(s) else s for s in [*shares, shares[0]]],
                color=_color(records, adapter), alpha=0.06)  # fmt: skip
    ax.set_xticks(angles, labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["25%", "50%", "75%", "100%"], fontsize=7)
    ax.legend(fontsize=8, bbox_to_anchor=(1.12, 1.0), loc="upper left")
    return _png(fig)


def _curve_keys(record: dict[str, Any]) -> tuple[str, str] | None:
    curve = record.get("curve")
    if not isinstance(curve, dict) or len(curve) != 2:
        return None
    keys = (str(next(iter(curve))), str(list(curve)[1]))
    return keys if series(record, keys) else None


def memory_curves(records: list[dict[str, Any]]) -> bytes | None:
    """One panel per memory-length or state-tracking task with a two-column curve (e.g. recall vs
    delay, accuracy vs length), one line per adapter (its first seed), side by side."""
    every = cells(records)
    memory_tasks = {cell.task for cell in every if _capability(cell) in MEMORY}
    panels: dict[str, dict[str, tuple[tuple[str, str], dict[str, Any]]]] = {}
    for cell in every:  # any check of such a task (its `longer` may count as length generalisation)
        if cell.task not in memory_tasks or cell.adapter in panels.get(cell.task, {}):
            continue
        for rec in cell.records:
            keys = _curve_keys(rec)
            if keys is not None:
                panels.setdefault(cell.task, {})[cell.adapter] = (keys, rec)
                break
    if not panels:
        return None
    plt = _pyplot()
    fig, grid = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), squeeze=False)
    for ax, (task, lines) in zip(grid[0], panels.items(), strict=True):
        for adapter, (keys, rec) in lines.items():
            x, y = series(rec, keys) or ([], [])
            ax.plot(x, y, lw=1.4, marker=".", color=_color(records, adapter), label=adapter)
        x_key, y_key = next(iter(lines.values()))[0]
        ax.set(title=f"{task}: {y_key} vs {x_key}", xlabel=x_key, ylabel=y_key)
        ax.legend(fontsize=7)
    return _png(fig)
