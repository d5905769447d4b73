"""`python -m reports leaderboard RUN.json... -o DIR`: a ranking of adapters and their history.

The ranking is of the latest run (by `run.time`). Adapters are ordered by
1. checks passed (cells whose verdict is passed or XPASS), more is better;
2. then checks failed (failed or error), fewer is better;
3. then total training time (the sum of `train_seconds` over the adapter's (task, seed) models),
   less is better; an adapter without timings comes after those with;
4. then name.
The history has one point per run and adapter (checks passed), drawn over run time. Writes
`leaderboard.md` (with `history.png` beside it) and a self-contained `leaderboard.html`.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports import plots
from reports.cells import BAD, GOOD, cells
from reports.document import Table
from reports.results import ResultsError, load, write_bytes_atomic, write_text_atomic

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


@dataclass(frozen=True)
class Leaderboard:
    ranking: Table
    history: Table
    history_png: bytes | None
    latest: str

    def markdown(self) -> str:
        lines = ["# rnn-behaviour leaderboard", "", self.latest, "", "## Ranking", "", self.ranking.markdown(), ""]
        lines += [self.ranking.note, "", "## History", ""]
        if self.history_png:
            lines += ["![checks passed per adapter over run time](history.png)", ""]
        lines += [self.history.markdown(), "", self.history.note, ""]
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
    history_rows = []
    for when, _name, payload in timed:
        by = {s.adapter: s for s in standings(payload["results"])}
        row = [
            when.strftime("%Y-%m-%d %H:%M"),
            str(payload["run"].get("git_sha") or "")[:8],
            str(payload["run"].get("tier")),
        ]
        for adapter in names:
            s = by.get(adapter)
            row.append("" if s is None else f"{s.passed}/{s.total}")
            if s is not None:
                points[adapter].append((when, float(s.passed)))
        history_rows.append(row)
    history = Table("history", ["run (UTC)", "git", "tier", *names], history_rows, "cells: checks passed / checks run.")
    latest_text = (
        f"Latest run: {latest_time.isoformat(timespec='minutes')} (git {str(latest['run'].get('git_sha') or '?')[:8]}, "
        f"tier {latest['run'].get('tier')}, {latest['run'].get('seeds')} seed(s)); {len(timed)} run(s) in the history."
    )
    return Leaderboard(ranking, history, plots.history(points, "checks passed"), latest_text)


def write(paths: Sequence[str | Path], directory: Path) -> list[Path]:
    """Load the runs and write leaderboard.md, history.png and leaderboard.html into `directory`."""
    board = build([(str(p), load(p)) for p in paths])
    from reports.render import Figure, render_html

    written = []
    if board.history_png:
        write_bytes_atomic(directory / "history.png", board.history_png)
        written.append(directory / "history.png")
    write_text_atomic(directory / "leaderboard.md", board.markdown())
    figures = (
        [Figure("history", "Checks passed per adapter over run time.", board.history_png)] if board.history_png else []
    )
    page = render_html(
        "leaderboard.html.j2", ranking=board.ranking, history=board.history, figures=figures, latest=board.latest
    )
    write_text_atomic(directory / "leaderboard.html", page)
    return [*written, directory / "leaderboard.md", directory / "leaderboard.html"]
