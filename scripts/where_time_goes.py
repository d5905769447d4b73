"""Where a tier's training time goes, from a run's results.json: by row, by task, and the models
that end in an expected failure apart (the time issue 27 wants back).

    python scripts/where_time_goes.py reports/latest/results.json [--rows torch-lstm,torch-gru,...]

One model is one (row, task, seed); its training time is on each of its records (`train_seconds`,
restarts and --lr-sweep included). Inference-engine rows (`compute_path.trained_by`) train
nothing: their models are their source row's, counted there. The last lines give the ratio the
issue asks for: the sum of training over the longest single model, which bounds how the matrix
scales with cores (a run cannot end before its longest model does).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def models(records: list[dict[str, Any]], rows: set[str] | None) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(row, task, seed) -> {seconds, expected (every cell of it an expected failure: its verdict was
    known before it trained), epochs, stopped (its runs stopped early), extended}."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for rec in records:
        if rec.get("task") in ("conformance", "speed") or rec.get("train_seconds") is None:
            continue
        if (rec.get("compute_path") or {}).get("trained_by") or (rows and rec["adapter"] not in rows):
            continue
        key = (rec["adapter"], rec["task"], int(rec.get("seed") or 0))
        runs = (rec.get("restarts") or {}).get("runs") or [rec]
        model = out.setdefault(key, {"seconds": float(rec["train_seconds"]), "expected": True,
                                     "epochs": rec.get("epochs"), "extended": bool(rec.get("extension")),
                                     "stopped": sum(r.get("stop_reason") == "early_stop" for r in runs)})  # fmt: skip
        model["expected"] &= rec.get("outcome") in ("xfailed", "xpassed")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--rows", default="", help="comma-separated rows to count (default: every training row)")
    args = parser.parse_args()
    records = json.loads(args.results.read_text())["results"]
    found = models(records, set(filter(None, args.rows.split(","))) or None)
    if not found:
        raise SystemExit(f"{args.results}: no trained models among its records")
    by_row: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    by_task: dict[str, float] = defaultdict(float)
    for (row, task, _), model in found.items():
        by_row[row].append((task, model))
        by_task[task] += model["seconds"]
    total = sum(m["seconds"] for m in found.values())
    print(f"{len(found)} models, {total:.0f} s of training in all")
    print(f"{'row':<14} {'training s':>10} {'expected-failure s':>19} {'longest model':>28}")
    for row, items in sorted(by_row.items(), key=lambda kv: -sum(m["seconds"] for _, m in kv[1])):
        seconds = sum(m["seconds"] for _, m in items)
        expected = sum(m["seconds"] for _, m in items if m["expected"])
        task, longest = max(items, key=lambda item: item[1]["seconds"])
        where = f"{task} {longest['seconds']:.1f} s"
        print(f"{row:<14} {seconds:>10.1f} {expected:>19.1f} {where:>28}")
    print(f"\n{'task':<22} {'training s':>10} {'share':>7}")
    for task, seconds in sorted(by_task.items(), key=lambda kv: -kv[1]):
        print(f"{task:<22} {seconds:>10.1f} {seconds / total:>7.1%}")
    (row, task, seed), longest = max(found.items(), key=lambda kv: kv[1]["seconds"])
    expected = sum(m["seconds"] for m in found.values() if m["expected"])
    print(f"\nexpected failures: {expected:.0f} s of {total:.0f} s ({expected / total:.0%})")
    print(f"longest model: {row} on {task} (seed {seed}), {longest['seconds']:.1f} s; "
          f"sum of training / longest model = {total / longest['seconds']:.1f}")  # fmt: skip
    stopped = [k for k, m in found.items() if m["stopped"]]
    runs = sum(found[k]["stopped"] for k in stopped)
    extended = [k for k, m in found.items() if m["extended"]]
    print(
        f"stopped early (benchmarks/early_stop.py): {runs} runs of {len(stopped)} models"
        + (f" ({', '.join(sorted(f'{r}/{t}' for r, t, _ in stopped))})" if stopped else "")
    )
    print(
        f"extended (benchmarks/extension.py): {len(extended)} models"
        + (f" ({', '.join(sorted(f'{r}/{t}' for r, t, _ in extended))})" if extended else "")
    )


if __name__ == "__main__":
    main()
