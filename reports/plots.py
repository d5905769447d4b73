"""The report's figures as PNG bytes (matplotlib, Agg backend, imported only when a plot is drawn).

Each function takes records and returns `None` when the run has nothing to draw (no curves, no
speed records), so a report degrades to fewer figures, never to an error. Curves are read
defensively: a record whose curve lacks the keys or has mismatched lengths is left out.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rnn_behaviour.reports.cells import SPEED_TASK, CellRecords, adapters, cells, extras, median

#: The length the counting tasks train on (tasks/counting.py TRAIN_LENGTH; a test keeps them equal).
TRAIN_LENGTH = 20
#: (x key, y key) of the curves drawn as error vs sequence length, and of the sine rollout.
LENGTH_CURVE = ("length", "mse")
ROLLOUT_CURVE = ("step", "forecast", "truth")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list):
        return None
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            return None
    return out


def series(record: dict[str, Any], keys: Sequence[str]) -> list[list[float]] | None:
    """The record's curve columns `keys` as float lists of one length; None if absent or malformed."""
    curve = record.get("curve")
    if not isinstance(curve, dict):
        return None
    columns = [_numbers(curve.get(k)) for k in keys]
    if any(c is None or not c for c in columns):
        return None
    clean = [c for c in columns if c is not None]
    return clean if len({len(c) for c in clean}) == 1 else None


def _first_with(cell_list: Iterable[CellRecords], keys: Sequence[str]) -> dict[tuple[str, str], CellRecords]:
    """Per (task, adapter), the first check whose records carry the curve `keys` (a task's checks
    often share one curve, e.g. count_steps shorter/longer)."""
    out: dict[tuple[str, str], CellRecords] = {}
    for cell in cell_list:
        if (cell.task, cell.adapter) not in out and any(series(r, keys) for r in cell.records):
            out[(cell.task, cell.adapter)] = cell
    return out


def length_curves(records: list[dict[str, Any]]) -> bytes | None:
    """MSE vs sequence length per adapter, one panel per task, train length marked (seed 000)."""
    found = _first_with(cells(records), LENGTH_CURVE)
    if not found:
        return None
    tasks = list(dict.fromkeys(task for task, _ in found))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        positive = False
        for (t, adapter), cell in found.items():
            if t != task:
                continue
            for i, rec in enumerate(r for r in cell.records if series(r, LENGTH_CURVE)):
                x, y = series(rec, LENGTH_CURVE) or ([], [])
                positive = positive or any(v > 0 for v in y)
                ax.plot(x, y, lw=1.5 if i == 0 else 0.6, alpha=1 if i == 0 else 0.4, color=_color(records, adapter),
                        label=adapter if i == 0 else None)  # fmt: skip
        ax.axvline(TRAIN_LENGTH, color="grey", ls="--", lw=1, label=f"train length {TRAIN_LENGTH}")
        ax.set(title=f"{task}: MSE vs sequence length", xlabel="sequence length", ylabel="MSE")
        if positive:  # a log axis needs a positive value (a model that is exact everywhere has none)
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    return _png(fig)


def sine_rollout(records: list[dict[str, Any]]) -> bytes | None:
    """The autoregressive rollout of each adapter against the true sine (seed 003), first seed."""
    found = _first_with(cells(records), ROLLOUT_CURVE)
    if not found:
        return None
    plt = _pyplot()
    tasks = list(dict.fromkeys(task for task, _ in found))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3.2 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        truth_drawn = False
        for (t, adapter), cell in found.items():
            if t != task:
                continue
            rec = next(r for r in cell.records if series(r, ROLLOUT_CURVE))
            step, forecast, truth = series(rec, ROLLOUT_CURVE) or ([], [], [])
            if not truth_drawn:
                ax.plot(step, truth, color="black", lw=2, label="truth")
                truth_drawn = True
            ax.plot(step, forecast, lw=1.2, color=_color(records, adapter), label=f"{adapter} (seed {rec['seed']})")
        ax.set(title=f"{task}: rollout vs truth", xlabel="rollout step", ylabel="value")
        ax.legend(fontsize=8, loc="lower left")
    return _png(fig)


def loss_curves(records: list[dict[str, Any]]) -> bytes | None:
    """Training loss per epoch, one panel per task, a line per adapter (first seed bold)."""
    histories: dict[str, dict[str, list[tuple[int, list[float]]]]] = {}
    seen = set()
    for rec in records:
        loss = _numbers(rec.get("loss_history"))
        key = (rec["adapter"], rec["task"], rec["seed"])
        if not loss or key in seen:
            continue
        seen.add(key)
        histories.setdefault(rec["task"], {}).setdefault(rec["adapter"], []).append((rec["seed"], loss))
    if not histories:
        return None
    plt = _pyplot()
    cols = min(3, len(histories))
    rows = math.ceil(len(histories) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.2 * rows), squeeze=False)
    for ax, (task, by_adapter) in zip(axes.flat, histories.items(), strict=False):
        for adapter, runs in by_adapter.items():
            for i, (_, loss) in enumerate(sorted(runs)):
                ax.plot(range(1, len(loss) + 1), loss, color=_color(records, adapter), lw=1.4 if i == 0 else 0.6,
                        alpha=1 if i == 0 else 0.4, label=adapter if i == 0 else None)  # fmt: skip
        positive = all(v > 0 for runs in by_adapter.values() for _, loss in runs for v in loss if not math.isnan(v))
        ax.set(title=task, xlabel="epoch", ylabel="training loss", yscale="log" if positive else "linear")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(histories) :]:
        ax.set_visible(False)
    return _png(fig)


OUTCOME_CODES = {"passed": 0, "xpassed": 1, "xfailed": 2, "skipped": 3, "failed": 4, "error": 5}
OUTCOME_COLORS = ["#2e9d4a", "#8fd19e", "#f2c94c", "#c8c8c8", "#d64541", "#7b1fa2"]


def heatmap(records: list[dict[str, Any]]) -> bytes | None:
    """Pass/fail of every cell: checks down, adapters across, colour by pytest's verdict (speed
    records are timings, not gates: left out)."""
    cell_list = [c for c in cells(records) if not c.is_speed]
    if not cell_list:
        return None
    names = adapters(records)
    checks = list(dict.fromkeys(f"{c.task}.{c.check}" for c in cell_list))
    grid = [[math.nan] * len(names) for _ in checks]
    labels = [[""] * len(names) for _ in checks]
    for c in cell_list:
        i, j = checks.index(f"{c.task}.{c.check}"), names.index(c.adapter)
        grid[i][j] = OUTCOME_CODES.get(c.verdict, 3)
        labels[i][j] = f"{c.passed}/{c.seeds}" if c.seeds > 1 else ""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(names), 1.0 + 0.32 * len(checks)))
    ax.imshow(grid, cmap=ListedColormap(OUTCOME_COLORS), vmin=-0.5, vmax=len(OUTCOME_COLORS) - 0.5, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(checks)), checks, fontsize=8)
    for i, row in enumerate(labels):
        for j, text in enumerate(row):
            if text:
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
    handles = [Patch(color=OUTCOME_COLORS[code], label=name) for name, code in OUTCOME_CODES.items()]
    ax.legend(handles=handles, bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=7)
    ax.set_title("verdict per cell")
    return _png(fig)


def speed_bars(records: list[dict[str, Any]], task: str = SPEED_TASK) -> bytes | None:
    """Median time per speed check and adapter (lower is better), with the FLOP rate when given."""
    speed = [c for c in cells(records) if c.task == task and c.value is not None]
    if not speed:
        return None
    checks = list(dict.fromkeys(c.check for c in speed))
    names = list(dict.fromkeys(c.adapter for c in speed))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(checks) * max(1, len(names)) * 0.5 + 2), 3.8))
    width = 0.8 / len(names)
    for j, adapter in enumerate(names):
        for i, check in enumerate(checks):
            cell = next((c for c in speed if c.adapter == adapter and c.check == check), None)
            if cell is None or cell.value is None:
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, cell.value, width, color=_color(records, adapter), label=adapter if i == 0 else None)
            flops = median(extras(r).get("flops_per_s") for r in cell.records)
            if flops:
                ax.text(x, cell.value, f"{flops / 1e9:.2g}G", ha="center", va="bottom", fontsize=6, rotation=90)
    metric = speed[0].first["metric"]
    ax.set_xticks(range(len(checks)), checks, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel=f"{metric} (lower is better)", yscale="log", title="speed (labels: FLOP/s)")
    ax.legend(fontsize=8)
    return _png(fig)


def history(
    points: dict[str, list[tuple[_dt.datetime, float]]],
    ylabel: str,
    marks: Sequence[_dt.datetime] = (),
    title: str = "history per adapter",
) -> bytes | None:
    """A trend line per adapter over run time (the leaderboard's history); a dashed line at each of
    `marks` (the runs whose lock or task versions changed)."""
    if not any(points.values()):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, (adapter, pts) in enumerate(points.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, label=adapter, color=f"C{i % 10}")
    for j, when in enumerate(marks):
        ax.axvline(when, color="grey", ls="--", lw=1, label="lock/tasks changed" if j == 0 else None)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="run time (UTC)", ylabel=ylabel, title=title)
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def _color(records: list[dict[str, Any]], adapter: str) -> str:
    names = adapters(records)
    return f"C{names.index(adapter) % 10}" if adapter in names else "grey"
