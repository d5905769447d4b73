"""Calibrate the early stop (benchmarks/early_stop.py) from recorded loss histories.

    python scripts/early_stop_calibration.py reports/calibration/smoke-es.json ... \
        [--rows torch-lstm,torch-gru,keras-lstm,keras-gru,flax-lstm,flax-gru] [--write]

Reads results files (`scripts/calibrate.py run` output, or any run's results.json). A *passing run*
is one (row, task, seed) model of a calibrating row (the built-ins that train: LSTM, GRU and the
tanh RNN, whose slower runs set the pace where it passes) whose every gated check passed; its loss
history is the kept run's. For each (tier, task) and milestone f, K is `MARGIN` x the latest epoch
at which a passing run first went below f x the reference level; a milestone some passing run never
went below is left out (the rule never fires on it). Then it
replays `early_stop.fate` on every history in the files and prints:

- passing runs stopped early with the table (0 by construction for the milestones; the diverged
  rule is not fitted, so it is a real count), and the same with each run's K computed without it
  (leave one out: how often a new run of a correct cell would be stopped);
- every other run it stops (expected failures, failed runs): where, and the epochs it saves.

`--write` writes `tasks/early_stop.csv` and the table between the early-stop markers of
`tasks/README.md`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.benchmarks.diagnosis import reference_level  # noqa: E402
from rnn_behaviour.benchmarks.early_stop import FRACTIONS, MARGIN, MIN_RUNS, TABLE, fate, first_below  # noqa: E402
from rnn_behaviour.tasks import PENDING, TASKS  # noqa: E402

KNOWN = {**TASKS, **PENDING}
ROWS = ",".join(f"{f}-{c}" for f in ("torch", "keras", "flax") for c in ("lstm", "gru", "rnn"))
START, END = "<!-- early-stop:start -->", "<!-- early-stop:end -->"


def runs(paths: list[Path]) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """(tier, row, task, seed) -> {history, passed (every gated check), epochs, restarts' other runs}."""
    out: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for path in paths:
        payload = json.loads(path.read_text())
        tier = payload["run"]["tier"]
        for rec in payload["results"]:
            task = KNOWN.get(rec.get("task", ""))
            if task is None or rec.get("loss_history") is None or (rec.get("compute_path") or {}).get("trained_by"):
                continue
            key = (tier, rec["adapter"], rec["task"], int(rec.get("seed") or 0))
            if key not in out:
                restarts = rec.get("restarts") or {"runs": [], "kept": 0}
                others = [r.get("loss_history") for k, r in enumerate(restarts["runs"]) if k != restarts["kept"]]
                out[key] = {"history": rec["loss_history"], "passed": True, "others": [h for h in others if h]}
            if not task.check(rec["check"]).control:
                out[key]["passed"] &= bool(rec.get("passed"))
    return out


@np.errstate(all="ignore")
def level_of(tier: str, task: str, seed: int, cache: dict[Any, Any]) -> Any:
    key = (tier, task, seed)
    if key not in cache:
        t = KNOWN[task]
        cache[key] = reference_level(t, t.generate(np.random.default_rng(seed), tier), t.budget(tier).loss)
    return cache[key]


def history(values: list[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def calibrate(found: dict[Any, dict[str, Any]], rows: set[str], levels: dict[Any, Any], leave: Any = None):
    """{(tier, task): [(fraction, K, passing runs, latest)]}, without the run `leave` when given."""
    crossings: dict[tuple[str, str, float], list[int | None]] = defaultdict(list)
    for (tier, row, task, seed), run in found.items():
        if row not in rows or not run["passed"] or (tier, row, task, seed) == leave:
            continue
        level = level_of(tier, task, seed, levels)
        for f in FRACTIONS:
            crossings[tier, task, f].append(first_below(history(run["history"]), f * level.value) if level else None)
    table: dict[tuple[str, str], list[tuple[float, int, int, int]]] = defaultdict(list)
    for (tier, task, f), epochs in sorted(crossings.items()):
        if len(epochs) >= MIN_RUNS and all(e is not None for e in epochs):
            latest = max(e for e in epochs if e is not None)
            table[tier, task].append((f, MARGIN * latest, len(epochs), latest))
    return table


def replay(tier: str, task: str, losses: list[float], level: Any, marks: Any) -> tuple[int, str] | None:
    """The epoch `fate` stops this history at, and why; None if it runs to its end."""
    max_epochs = KNOWN[task].budget(tier).max_epochs
    for n in range(1, len(losses) + 1):
        why = fate(losses[:n], level, marks, max_epochs)
        if why:
            return n, why
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--rows", default=ROWS, help=f"the calibrating rows (default {ROWS})")
    parser.add_argument("--write", action="store_true", help="write tasks/early_stop.csv and tasks/README.md's table")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    found = runs(args.results)
    levels: dict[Any, Any] = {}
    table = calibrate(found, rows, levels)
    passing = [(k, r) for k, r in found.items() if k[1] in rows and r["passed"]]
    stopped = [k for k, r in passing if replay(k[0], k[2], history(r["history"]), level_of(k[0], k[2], k[3], levels),
                                               table.get((k[0], k[2]), []))]  # fmt: skip
    loo = []
    for (tier, row, task, seed), run in passing:
        marks = calibrate(found, rows, levels, leave=(tier, row, task, seed)).get((tier, task), [])
        if replay(tier, task, history(run["history"]), level_of(tier, task, seed, levels), marks):
            loo.append((tier, row, task, seed))
    print(f"passing runs of {sorted(rows)}: {len(passing)}; stopped early: {len(stopped)} {stopped or ''}")
    print(f"  leave one run out: {len(loo)} of {len(passing)} stopped {loo or ''}")
    saved = 0
    for (tier, row, task, seed), run in sorted(found.items()):
        level = level_of(tier, task, seed, levels)
        for n, losses in enumerate([run["history"], *run["others"]]):
            losses = history(losses)
            hit = replay(tier, task, losses, level, table.get((tier, task), []))
            if hit and not (row in rows and run["passed"] and n == 0):
                saved += len(losses) - hit[0]
                what = "kept run" if n == 0 else f"other run {n}"
                print(f"  stops {tier} {row} {task} seed {seed} ({what}, passed={run['passed']}) at epoch {hit[0]} "
                      f"of {len(losses)}: {hit[1][:90]}")  # fmt: skip
    print(f"epochs saved over these files: {saved}")
    lines = ["tier,task,fraction,epoch,runs,latest"]
    md = ["| tier | task | milestone | stop from epoch | passing runs | latest crossing | epoch cap |"]
    md.append("| --- " * 7 + "|")
    for (tier, task), marks in sorted(table.items()):
        for f, k, n, latest in marks:
            cap = KNOWN[task].budget(tier).max_epochs
            lines.append(f"{tier},{task},{f:g},{k},{n},{latest}")
            inert = " (past the cap)" if k >= cap else ""
            md.append(f"| {tier} | {task} | {f:g} x level | {k}{inert} | {n} | {latest} | {cap} |")
    print("\n".join(md))
    if args.write:
        TABLE.write_text("\n".join(lines) + "\n")
        readme = ROOT / "tasks" / "README.md"
        text = readme.read_text()
        if START not in text or END not in text:
            raise SystemExit(f"{readme}: no {START} ... {END} markers")
        head, rest = text.split(START, 1)
        readme.write_text(head + START + "\n" + "\n".join(md) + "\n" + END + rest.split(END, 1)[1])
        print(f"wrote {TABLE} and {readme}")


if __name__ == "__main__":
    main()
