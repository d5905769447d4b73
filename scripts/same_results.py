"""Do two runs agree? Compares the records of two results files cell by cell (adapter, task,
check, seed): outcome and value, ignoring timings (and speed items, which are timings).

    python scripts/same_results.py serial/results.json parallel/results.json

Used to show that `pytest benchmarks -n 2` gives what a serial run gives (issue 7). Exit 0 when
every shared cell has the same outcome and value, 1 otherwise (each difference printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.reports.cells import SPEED_TASK  # noqa: E402
from rnn_behaviour.reports.results import ResultsError, load  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    try:
        runs = [load(args.a), load(args.b)]
    except ResultsError as exc:
        print(f"same_results: {exc}", file=sys.stderr)
        return 2
    a, b = (
        {(r["adapter"], r["task"], r["check"], r["seed"]): r for r in run["results"] if r["task"] != SPEED_TASK}
        for run in runs
    )
    shared = sorted(set(a) & set(b))
    differ = [k for k in shared if (a[k]["outcome"], a[k]["value"]) != (b[k]["outcome"], b[k]["value"])]
    for key in differ:
        (x, y), name = (a[key], b[key]), "-".join(map(str, key))
        print(f"{name}: {x['outcome']} {x['value']!r} vs {y['outcome']} {y['value']!r}")
    only = len(set(a) ^ set(b))
    same = len(shared) - len(differ)
    print(f"{same}/{len(shared)} shared records identical (outcome and value); {only} in one run only")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
