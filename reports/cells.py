"""A run's records grouped into cells (adapter, task, check) over seeds, and what a cell reads as.

Every other report module (markdown, html, compare, leaderboard) works on these cells, so a cell
means the same thing everywhere: its verdict is pytest's (`cell_outcome`, over all seeds), its value
is the median over seeds, and its pass rate comes with a 95% Wilson interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Verdicts that count as a pass, as a failure, and neither (expected failure, skip).
GOOD = frozenset({"passed", "xpassed"})
BAD = frozenset({"failed", "error"})
#: Records of this task are timings (benchmarks/test_speed.py): compared by relative slowdown.
SPEED_TASK = "speed"
#: The `stop_reason` of a model not trained at all, its verdict known (benchmarks/expectations.py
#: `foregone`): its cells are xfail without a value.
FOREGONE = "foregone"


#: ANSI escape sequences (colours and bold that Keras puts in its error text; cursor moves).
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def plain(text: str) -> str:
    """`text` without its ANSI escape codes."""
    return ANSI.sub("", text)


def plain_records(value: Any) -> Any:
    """A copy of records (any JSON nest) with every string `plain`: what a report reads."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, dict):
        return {k: plain_records(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_records(v) for v in value]
    return value


@dataclass(frozen=True)
class CellRecords:
    """The records of one (adapter, task, check) over its seeds."""

    adapter: str
    task: str
    check: str
    records: tuple[dict[str, Any], ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.adapter, self.task, self.check)

    @property
    def name(self) -> str:
        return f"{self.adapter} {self.task}.{self.check}"

    @property
    def first(self) -> dict[str, Any]:
        return self.records[0]

    @property
    def task_version(self) -> int:
        return int(self.first["task_version"])

    @property
    def verdict(self) -> str:
        """pytest's verdict on the cell over all its seeds (the record's own outcome if absent)."""
        return str(self.first.get("cell_outcome") or self.first["outcome"])

    @property
    def is_speed(self) -> bool:
        return self.task == SPEED_TASK

    @property
    def value(self) -> float | None:
        return median(r.get("value") for r in self.records)

    @property
    def passed(self) -> int:
        return sum(bool(r.get("passed")) for r in self.records)

    @property
    def seeds(self) -> int:
        return len(self.records)

    @property
    def message(self) -> str:
        """What went wrong: pytest's failure message as the terminal showed it (the record's
        `message`), else one line per failed seed from the record's fields (an older results
        file), else the skip, error or expected-failure reason."""
        if self.first.get("message"):
            return plain(str(self.first["message"])).strip()
        reason = str(self.first.get("reason") or "")
        if reason and self.verdict in ("error", "skipped"):
            return plain(reason).strip()
        lines = []
        for r in self.records:
            if r.get("passed") is False and (r.get("value") is not None or r.get("detail")):
                value = r.get("value")
                text = f"seed {r.get('seed')}: {r.get('metric')} = {'nan' if value is None else f'{value:.4g}'}"
                text += f" (threshold {r.get('threshold')})"
                if r.get("stop_reason"):
                    text += f"; {r.get('epochs')} epochs, stopped on {r['stop_reason']}"
                lines.append(text + (f"\n  {r['detail']}" if r.get("detail") else ""))
        return plain("\n".join(lines) or reason).strip()

    def field_median(self, name: str) -> float | None:
        return median(r.get(name) for r in self.records)

    @property
    def gate(self) -> str:
        op = ">=" if self.first["higher_is_better"] else "<="
        return f"{self.first['metric']} {op} {self.first['threshold']:g}"


def median(values: Iterable[Any]) -> float | None:
    """The upper median of the finite numbers among `values` (one seed's actual value, as in the
    pivot of table.py); None when there are none."""
    numbers = [
        float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    ]
    return sorted(numbers)[len(numbers) // 2] if numbers else None


def cells(records: Iterable[dict[str, Any]]) -> list[CellRecords]:
    """Records grouped by (adapter, task, check), in first-seen order, seeds sorted."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in records:
        grouped.setdefault((rec["adapter"], rec["task"], rec["check"]), []).append(rec)
    return [CellRecords(a, t, c, tuple(sorted(recs, key=lambda r: r["seed"]))) for (a, t, c), recs in grouped.items()]


def extras(record: dict[str, Any]) -> dict[str, Any]:
    """The record's `extras` mapping (empty when absent or not a mapping)."""
    value = record.get("extras")
    return value if isinstance(value, dict) else {}


def adapters(records: Iterable[dict[str, Any]]) -> list[str]:
    """Adapter names in first-seen order."""
    return list(dict.fromkeys(rec["adapter"] for rec in records))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (95% by default); (0, 1) when n is 0.

    Unlike k/n ± normal error it stays inside [0, 1] and is honest at k = n with few seeds:
    19/20 seeds passing gives (0.76, 0.99), not a certainty."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_rate_text(k: int, n: int) -> str:
    """`k/N`, with the 95% Wilson interval when N > 1: `19/20 [0.76, 0.99]`."""
    if n <= 1:
        return f"{k}/{n}"
    low, high = wilson(k, n)
    return f"{k}/{n} [{low:.2f}, {high:.2f}]"


def num(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; empty for a missing one."""
    return "" if value is None else f"{value:.{digits}g}"
