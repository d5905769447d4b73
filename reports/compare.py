"""`python -m reports compare BASE.json NEW.json`: what changed between two runs, and whether it regressed.

A regression is any of:
- a check that went from pass (passed/XPASS) to fail (failed/error);
- a new failure: a cell failing in NEW that was not failing in BASE (new cell, skipped or xfail before);
- a metric that moved in its bad direction (`higher_is_better`) by more than `tolerance` times the
  larger of |threshold| and |base value| (medians over seeds; speed records excluded);
- a speed record (task "speed") slower than BASE by more than `speed_tolerance` (relative).
Fixed checks, cells that went away and moves within tolerance are listed but do not regress.
Runs of different task versions (or tiers) measure different things: `VersionMismatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnn_behaviour.reports.cells import BAD, GOOD, CellRecords, cells, num
from rnn_behaviour.reports.results import ResultsError

DEFAULT_TOLERANCE = 0.25
DEFAULT_SPEED_TOLERANCE = 0.20


class VersionMismatch(ResultsError):
    """The two runs hold different versions of a task (or different tiers): not comparable."""


@dataclass
class Comparison:
    regressions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compared: int = 0
    #: The cells with a regression (a cell can have two: its verdict and its value).
    regressed_cells: set[str] = field(default_factory=set)

    def regress(self, cell: str, line: str) -> None:
        self.regressions.append(f"{cell}: {line}")
        self.regressed_cells.add(cell)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def text(self) -> str:
        lines = [f"compared {self.compared} cells: {len(self.regressions)} regression(s)"]
        if self.regressions:
            lines[0] += f" in {len(self.regressed_cells)} cell(s)"
        lines += [f"REGRESSION {line}" for line in self.regressions]
        lines += [f"note {line}" for line in self.notes]
        return "\n".join(lines)


def check_comparable(base: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise `VersionMismatch` naming every task whose version differs, or a tier change."""
    versions: dict[str, dict[str, set[int]]] = {"base": {}, "new": {}}
    for side, payload in (("base", base), ("new", new)):
        for rec in payload["results"]:
            versions[side].setdefault(rec["task"], set()).add(rec["task_version"])
    differ = [
        f"{task} v{'/'.join(map(str, sorted(versions['base'][task])))} in BASE vs "
        f"v{'/'.join(map(str, sorted(versions['new'][task])))} in NEW"
        for task in versions["base"]
        if task in versions["new"] and versions["base"][task] != versions["new"][task]
    ]
    if differ:
        raise VersionMismatch(
            "refusing to compare different task versions: " + "; ".join(differ) + " (re-run BASE at this version)"
        )
    tiers = (base["run"].get("tier"), new["run"].get("tier"))
    if tiers[0] != tiers[1]:
        raise VersionMismatch(f"refusing to compare tier {tiers[0]!r} (BASE) with tier {tiers[1]!r} (NEW)")


def compare(
    base: dict[str, Any],
    new: dict[str, Any],
    tolerance: float = DEFAULT_TOLERANCE,
    speed_tolerance: float = DEFAULT_SPEED_TOLERANCE,
) -> Comparison:
    """What changed from BASE to NEW; raises `VersionMismatch` when they are not comparable."""
    check_comparable(base, new)
    before = {c.key: c for c in cells(base["results"])}
    after = {c.key: c for c in cells(new["results"])}
    out = Comparison(compared=len(after.keys() & before.keys()))
    for key, cell in after.items():
        old = before.get(key)
        _verdicts(out, old, cell)
        if old is not None:
            (_speed if cell.is_speed else _metric)(out, old, cell, speed_tolerance if cell.is_speed else tolerance)
    for key, old in before.items():
        if key not in after:
            out.notes.append(f"{old.name}: in BASE ({old.verdict}), not run in NEW")
    return out


def _verdicts(out: Comparison, old: CellRecords | None, cell: CellRecords) -> None:
    was, now = (old.verdict if old else None), cell.verdict
    reason = f" ({cell.first['reason']})" if cell.first.get("reason") else ""
    if now in BAD and was in GOOD:
        out.regress(cell.name, f"went from {was} to {now}; {_value_text(old, cell)}{reason}")
    elif now in BAD and was not in BAD:
        before = "not in BASE" if old is None else f"was {was}"
        out.regress(cell.name, f"new failure ({now}, {before}); {_value_text(old, cell)}{reason}")
    elif now in BAD:
        out.notes.append(f"{cell.name}: still {now}")
    elif was in BAD:
        out.notes.append(f"{cell.name}: fixed ({was} -> {now})")
    elif old is not None and was != now:
        out.notes.append(f"{cell.name}: {was} -> {now}")


def _value_text(old: CellRecords | None, cell: CellRecords) -> str:
    before = "" if old is None else f"{num(old.value, 4) or 'none'} -> "
    return f"{cell.gate}: {before}{num(cell.value, 4) or 'none'}"


def _metric(out: Comparison, old: CellRecords, cell: CellRecords, tolerance: float) -> None:
    a, b = old.value, cell.value
    if a is None or b is None:
        return
    worse = (a - b) if cell.first["higher_is_better"] else (b - a)
    scale = max(abs(float(cell.first["threshold"])), abs(a))
    if worse > 0 and (scale == 0 or worse > tolerance * scale):
        out.regress(
            cell.name,
            f"{cell.first['metric']} moved the wrong way {num(a, 4)} -> {num(b, 4)} "
            f"(by {num(worse, 3)}, more than {tolerance:g} x {num(scale, 3)}; gate {cell.gate})",
        )


def _speed(out: Comparison, old: CellRecords, cell: CellRecords, tolerance: float) -> None:
    a, b = old.value, cell.value
    if a is None or b is None or a <= 0 or b <= 0:
        return
    slowdown = (a / b if cell.first["higher_is_better"] else b / a) - 1
    line = f"{cell.first['metric']} {num(a, 4)} -> {num(b, 4)} ({slowdown:+.0%})"
    if slowdown > tolerance:
        out.regress(cell.name, f"{line}, slower by more than {tolerance:.0%}")
    elif slowdown < -tolerance:
        out.notes.append(f"{cell.name}: {line}, faster")
