"""The behaviour matrix's records, framework-free: the schema every item's record has, and the
verdict and failure message over a cell's seeds.

Records are plain JSON-able dicts that travel through pytest's `user_properties`, so they survive
pytest-xdist; `reports/` reads them back from the results file.
"""

from __future__ import annotations

import math
from typing import Any

from rnn_behaviour.benchmarks.restarts import describe as describe_restarts
from rnn_behaviour.benchmarks.sweep import describe as describe_sweep

#: The `user_properties` keys that carry a cell and its records to the report hooks.
CELL_PROPERTY, RECORDS_PROPERTY = "rnn_cell", "rnn_records"
#: The `user_properties` key of an incomplete cell's reason (its training was projected too long).
INCOMPLETE_PROPERTY = "rnn_incomplete"


def new_record(
    adapter: str,
    task: str,
    check: str,
    task_version: int,
    tier: str,
    metric: str,
    threshold: float,
    higher_is_better: bool,
    seed: int = 0,
    capability: str | None = None,
) -> dict[str, Any]:
    """A record with every field of the results schema; the rest is filled in as the cell runs.

    Any item (behaviour, conformance, speed) that puts `(CELL_PROPERTY, {"template": record,
    "seeds": n})` and, once scored, `(RECORDS_PROPERTY, [records])` in its `user_properties` is
    collected into the pivot and results file; `outcome` is set from pytest's report.
    """
    return {
        "adapter": adapter,
        "task": task,
        "check": check,
        "task_version": task_version,
        "seed": seed,
        "tier": tier,
        "outcome": None,
        "cell_outcome": None,
        "reason": "",
        "passed": None,
        "metric": metric,
        "value": None,
        "threshold": threshold,
        "higher_is_better": higher_is_better,
        "capability": capability,
        "baseline": None,
        "train_seconds": None,
        "epochs": None,
        "stop_reason": None,
        "time_to_criterion_s": None,
        "params": None,
        "detail": "",
        "extras": {},
        "curve": None,
        "loss_history": None,
        "diagnosis": None,
        "lr_sweep": None,
        "restarts": None,
        "versions": {},
        "compute_path": {},
    }


def finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def verdict(records: list[dict[str, Any]], min_pass_rate: float) -> bool:
    passed = sum(bool(r["passed"]) for r in records)
    return passed >= math.ceil(min_pass_rate * len(records) - 1e-9)


def failure_message(records: list[dict[str, Any]], min_pass_rate: float) -> str:
    """Names adapter, task, check, seed, value, threshold and baseline, with the task's detail."""
    first = records[0]
    op = ">=" if first["higher_is_better"] else "<="
    passed = sum(bool(r["passed"]) for r in records)
    lines = [
        f"{first['adapter']} failed {first['task']}.{first['check']}: passed {passed}/{len(records)} seeds "
        f"(needs {min_pass_rate:.0%}); gate {first['metric']} {op} {first['threshold']:g}"
    ]
    for r in records:
        if r["passed"]:
            continue
        value = "nan" if r["value"] is None else f"{r['value']:.4g}"
        baseline = "n/a" if r["baseline"] is None else f"{r['baseline']:.4g}"
        lines.append(
            f"  seed {r['seed']}: {r['metric']} = {value} (threshold {r['threshold']:g}, memoryless baseline "
            f"{baseline}; {r['epochs']} epochs, stopped on {r['stop_reason']})"
        )
        if r["detail"]:
            lines.append(f"    {r['detail']}")
        for finding in r.get("diagnosis") or ():
            lines.append(f"    {finding}")
        if r.get("restarts"):
            lines.append(f"    {describe_restarts(r['restarts'])}")
        if r.get("lr_sweep"):
            lines.append(f"    {describe_sweep(r['lr_sweep'])}")
    return "\n".join(lines)
