"""Check an example's smoke row against what examples/README.md says about it (`make examples`).

    python -m examples.verify reports/examples/mingru/results.json --fails adding.mse
    python -m examples.verify RESULTS --fails count_steps.carry_state --reason "count_steps.carry_state=is ignored"

Exactly the named `task.check` items must have failed (or errored), exactly the `--inconclusive`
ones must be inconclusive (outcome `incomplete`, benchmarks/extension.py), and every other item
passed, xfailed, xpassed or skipped; each `--reason ITEM=TEXT` must appear in that item's message. Exits 1
with one line per surprise. Framework-free: it reads the results file only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnn_behaviour.reports.results import ResultsError, load

BAD = ("failed", "error")


def surprises(
    results: list[dict], fails: set[str], reasons: dict[str, str], inconclusive: frozenset[str] = frozenset()
) -> list[str]:
    """What differs from the expectation, one line each (empty when the row is as documented)."""
    outcome: dict[str, str] = {}
    text: dict[str, str] = {}
    for r in results:
        item = f"{r['task']}.{r['check']}"
        outcome[item] = r["outcome"] if item not in outcome or r["outcome"] in BAD else outcome[item]
        text[item] = text.get(item, "") + " " + str(r.get("detail") or "") + " " + str(r.get("reason") or "")
    if not outcome:
        return ["the results file holds no records"]
    out = [
        f"{item} {outcome[item]}, expected to pass"
        for item in sorted(outcome)
        if outcome[item] in BAD and item not in fails
    ]
    out += [
        f"{item} {outcome.get(item, 'did not run')}, expected to fail"
        for item in sorted(fails)
        if outcome.get(item) not in BAD
    ]
    out += [
        f"{item} {outcome.get(item, 'did not run')}, expected to be inconclusive"
        for item in sorted(inconclusive)
        if outcome.get(item) != "incomplete"
    ]
    out += [
        f"{item} inconclusive, expected to {'fail' if item in fails else 'pass'}"
        for item in sorted(outcome)
        if outcome[item] == "incomplete" and item not in inconclusive
    ]
    out += [
        f"{item} failed, but not because {reason!r}"
        for item, reason in reasons.items()
        if outcome.get(item) in BAD and reason not in text.get(item, "")
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.verify", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--fails", nargs="*", default=[], metavar="TASK.CHECK", help="the items expected to fail")
    parser.add_argument("--reason", action="append", default=[], metavar="TASK.CHECK=TEXT")
    parser.add_argument(
        "--inconclusive", nargs="*", default=[], metavar="TASK.CHECK", help="the items expected to be inconclusive"
    )
    args = parser.parse_args(argv)
    if not args.results.is_file():
        print(f"{args.results}: no results file (did the run stop with a usage error?)", file=sys.stderr)
        return 1
    reasons = dict(r.split("=", 1) for r in args.reason)
    fails = set(args.fails) | set(reasons)
    try:
        records = load(args.results)["results"]
    except ResultsError as exc:
        print(exc, file=sys.stderr)
        return 1
    problems = surprises(records, fails, reasons, frozenset(args.inconclusive))
    name = args.results.parent.name
    for line in problems:
        print(f"{name}: {line}", file=sys.stderr)
    if not problems:
        more = f"; {', '.join(sorted(args.inconclusive))} inconclusive" if args.inconclusive else ""
        print(f"{name}: as documented ({', '.join(sorted(fails)) or 'nothing'} failing{more})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
