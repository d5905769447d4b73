"""`python -m reports leaderboard RUN.json... -o DIR`: a ranking of adapters and their history.

The ranking is of the latest run (by `run.time`). Adapters are ordered by
1. checks passed (cells whose verdict is passed or XPASS), more is better;
2. then checks failed (failed or error), fewer is better;
3. then total training time (the sum of `train_seconds` over the adapter's (task, seed) models),
   less is better; an adapter without timings comes after those with;
4. then name.
The history has one row per run: each adapter's checks passed, and what changed since the run
before it (the lock, i.e. `run.versions`, a task's version, the tier), since such a night measures
something else; the speed table has each adapter's total training time per run. Both are drawn
over run time, the changed runs marked. Writes `leaderboard.md` (with `history.png` and `speed.png`
beside it) and a self-contained `leaderboard.html`.

More sections are one function `(runs) -> Table | None` appended to `SECTIONS`: each is drawn
after the history, in both pages; the first is the latest run's capability profile.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_behaviour.reports import plots
from rnn_behaviour.reports.cells import BAD, GOOD, cells
from rnn_behaviour.reports.document import Table, profile_table
from rnn_behaviour.reports.results import ResultsError, load, write_bytes_atomic, write_text_atomic

TIE_BREAK = (
    "ranked by checks passed (passed or XPASS), then fewer failed/error, then less total training time "
    "(sum of train_seconds over the adapter's models), then name"
)


@dataclass(frozen=True)
class Standing:
    adapter: str
    passed: int
    failed: int
    expected_failures: int
    skipped: int
    total: int
    train_seconds: float | None

    def sort_key(self) -> tuple[int, int, float, str]:
        seconds = math.inf if self.train_seconds is None else self.train_seconds
        return (-self.passed, self.failed, seconds, self.adapter)


def run_time(name: str, payload: dict[str, Any]) -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(str(payload["run"]["time"]))
    except ValueError:
        raise ResultsError(f"{name}: run.time {payload['run']['time']!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=_dt.UTC)


def standings(records: list[dict[str, Any]]) -> list[Standing]:
    """The ranked standings of a run's adapters."""
    by_adapter: dict[str, list[str]] = {}
    for cell in cells(records):
        by_adapter.setdefault(cell.adapter, []).append(cell.verdict)
    seconds: dict[str, dict[tuple[str, int], float]] = {}
    for rec in records:
        if isinstance(rec.get("train_seconds"), int | float):
            seconds.setdefault(rec["adapter"], {})[(rec["task"], rec["seed"])] = float(rec["train_seconds"])
    out = [
        Standing(
            adapter,
            passed=sum(v in GOOD for v in verdicts),
            failed=sum(v in BAD for v in verdicts),
            expected_failures=verdicts.count("xfailed"),
            skipped=verdicts.count("skipped"),
            total=len(verdicts),
            train_seconds=sum(seconds[adapter].values()) if adapter in seconds else None,
        )
        for adapter, verdicts in by_adapter.items()
    ]
    return sorted(out, key=Standing.sort_key)


#: A run of the history: (run time, file name, payload), oldest first.
Run = tuple[_dt.datetime, str, dict[str, Any]]


def task_versions(payload: dict[str, Any]) -> dict[str, str]:
    """Each task of a run with its version(s), e.g. {"count_steps": "v1"}."""
    versions: dict[str, set[int]] = {}
    for rec in payload["results"]:
        versions.setdefault(rec["task"], set()).add(rec["task_version"])
    return {task: "v" + "/".join(map(str, sorted(v))) for task, v in sorted(versions.items())}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed from one run to the next that changes what is measured: the lock
    (`run.versions`), a task's version (or a task added or gone), the tier."""
    out = []
    if before["run"].get("tier") != after["run"].get("tier"):
        out.append(f"tier {before['run'].get('tier')} -> {after['run'].get('tier')}")
    old, new = before["run"].get("versions") or {}, after["run"].get("versions") or {}
    lock = [
        f"{k} {old.get(k, 'none')} -> {new.get(k, 'none')}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
    if lock:
        out.append("lock: " + ", ".join(lock))
    told, tnew = task_versions(before), task_versions(after)
    tasks = [f"{t} {told[t]} -> {tnew[t]}" for t in tnew if t in told and told[t] != tnew[t]]
    tasks += [f"{t} {tnew[t]} new" for t in tnew if t not in told]
    tasks += [f"{t} gone" for t in told if t not in tnew]
    if tasks:
        out.append("tasks: " + ", ".join(tasks))
    return out


#: More sections of the page after the history: each `(runs, oldest first) -> Table | None`
#: (None: nothing to show).
def latest_profile(runs: Sequence[Run]) -> Table | None:
    """The capability profile (reports/profile.py) of the latest run, or None when its records name
    no capability (results written before they did)."""
    table = profile_table(runs[-1][2]["results"]) if runs else None
    if table is None or not table.rows:
        return None
    return Table("capability profile of the latest run", table.headers, table.rows, table.note)


SECTIONS: list[Callable[[Sequence[Run]], Table | None]] = [latest_profile]


@dataclass(frozen=True)
class Leaderboard:
    ranking: Table
    history: Table
    history_png: bytes | None
    latest: str
    speed: Table | None = None
    speed_png: bytes | None = None
    sections: list[Table] = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["# rnn-behaviour leaderboard", "", self.latest, "", "## Ranking", "", self.ranking.markdown(), ""]
        lines += [self.ranking.note, "", "## History", ""]
        if self.history_png:
            lines += ["![checks passed per adapter over run time](history.png)", ""]
        lines += [self.history.markdown(), "", self.history.note, ""]
        if self.speed is not None:
            lines += ["## Speed", ""]
            if self.speed_png:
                lines += ["![total training time per adapter over run time](speed.png)", ""]
            lines += [self.speed.markdown(), "", self.speed.note, ""]
        for table in self.sections:
            lines += [f"## {table.title}", "", table.markdown(), "", table.note, ""]
        return "\n".join(lines)


def build(runs: Sequence[tuple[str, dict[str, Any]]]) -> Leaderboard:
    """The leaderboard of (name, payload) runs, in any order."""
    if not runs:
        raise ResultsError("leaderboard needs at least one results file")
    timed = sorted(((run_time(name, p), name, p) for name, p in runs), key=lambda t: (t[0], t[1]))
    latest_time, latest_name, latest = timed[-1]
    if not latest["results"]:
        raise ResultsError(f"{latest_name}: the latest run holds no results to rank")
    ranking_rows = [
        [
            str(rank),
            s.adapter,
            str(s.passed),
            str(s.failed),
            str(s.expected_failures),
            str(s.skipped),
            str(s.total),
            f"{s.passed / s.total:.0%}" if s.total else "",
            "" if s.train_seconds is None else f"{s.train_seconds:.1f}",
        ]
        for rank, s in enumerate(standings(latest["results"]), start=1)
    ]
    ranking = Table(
        "ranking",
        ["rank", "adapter", "passed", "failed", "xfail", "skipped", "checks", "pass rate", "train s"],
        ranking_rows,
        TIE_BREAK + ".",
    )
    names = list(dict.fromkeys(a for _, _, p in timed for a in (r["adapter"] for r in p["results"])))
    points: dict[str, list[tuple[_dt.datetime, float]]] = {a: [] for a in names}
    seconds: dict[str, list[tuple[_dt.datetime, float]]] = {a: [] for a in names}
    history_rows, speed_rows, marks = [], [], []
    for i, (when, _name, payload) in enumerate(timed):
        by = {s.adapter: s for s in standings(payload["results"])}
        head = [when.strftime("%Y-%m-%d %H:%M"), str(payload["run"].get("git_sha") or "")[:8]]
        row, speed_row = [*head, str(payload["run"].get("tier"))], list(head)
        for adapter in names:
            s = by.get(adapter)
            row.append("" if s is None else f"{s.passed}/{s.total}")
            speed_row.append("" if s is None or s.train_seconds is None else f"{s.train_seconds:.1f}")
            if s is not None:
                points[adapter].append((when, float(s.passed)))
                if s.train_seconds is not None:
                    seconds[adapter].append((when, s.train_seconds))
        changed = changes(timed[i - 1][2], payload) if i else []
        if changed:
            marks.append(when)
        history_rows.append([*row, "; ".join(changed)])
        speed_rows.append(speed_row)
    history = Table(
        "history",
        ["run (UTC)", "git", "tier", *names, "changed since the run before"],
        history_rows,
        "cells: checks passed / checks run. A run whose lock (package versions), task versions or tier "
        "changed measures something else than the run before: its row says what changed, and the "
        "figures mark it with a dashed line.",
    )
    speed = Table(
        "speed",
        ["run (UTC)", "git", *names],
        speed_rows,
        "cells: total training time in seconds (train_seconds summed over the adapter's models; "
        "a run's own load shows in it). The timed speed items skip under -n, as the sharded nights run.",
    )
    latest_text = (
        f"Latest run: {latest_time.isoformat(timespec='minutes')} (git {str(latest['run'].get('git_sha') or '?')[:8]}, "
        f"tier {latest['run'].get('tier')}, {latest['run'].get('seeds')} seed(s)); {len(timed)} run(s) in the history."
    )
    extra = [t for t in (section(timed) for section in SECTIONS) if t is not None]
    return Leaderboard(
        ranking,
        history,
        plots.history(points, "checks passed", marks),
        latest_text,
        speed,
        plots.history(seconds, "total training s", marks, "training time per adapter"),
        extra,
    )


def write(paths: Sequence[str | Path], directory: Path) -> list[Path]:
    """Load the runs and write leaderboard.md, history.png and leaderboard.html into `directory`."""
    board = build([(str(p), load(p)) for p in paths])
    from rnn_behaviour.reports.render import Figure, render_html

    written = []
    for name, png in (("history.png", board.history_png), ("speed.png", board.speed_png)):
        if png:
            write_bytes_atomic(directory / name, png)
            written.append(directory / name)
    write_text_atomic(directory / "leaderboard.md", board.markdown())
    figures = (
        [Figure("history", "Checks passed per adapter over run time.", board.history_png)] if board.history_png else []
    )
    speed_figures = (
        [Figure("speed", "Total training time per adapter over run time.", board.speed_png)] if board.speed_png else []
    )
    page = render_html(
        "leaderboard.html.j2",
        ranking=board.ranking,
        history=board.history,
        figures=figures,
        speed=board.speed,
        speed_figures=speed_figures,
        sections=board.sections,
        latest=board.latest,
    )
    write_text_atomic(directory / "leaderboard.html", page)
    return [*written, directory / "leaderboard.md", directory / "leaderboard.html"]
