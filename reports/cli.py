"""`python -m reports {report,compare,leaderboard,merge}`: the command line over results files.

Exit codes: 0 fine, 1 regression (compare), 2 bad input (missing or malformed file, task version
mismatch, usage). Bad input is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from reports.results import ResultsError, dir_problem, load, write_json_atomic

PROG = "python -m reports"


def non_negative(unit: str = "", at_most: float = math.inf) -> Callable[[str], float]:
    """An argparse type for a finite number >= 0 (of `unit`) and <= `at_most`, with the error naming
    what came."""
    of, after = (f" of {unit}", f" {unit}") if unit else ("", "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number{of} >= 0, got {text!r}") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0{after}, got {value}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number{of}, got {text!r}")
        if value > at_most:
            raise argparse.ArgumentTypeError(f"must be at most {at_most:g}{after}, got {value:g}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    from reports.compare import DEFAULT_SPEED_TOLERANCE, DEFAULT_TOLERANCE

    p = argparse.ArgumentParser(prog=PROG, description="Reports over rnn-behaviour results files.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("report", help="write report.md and report.html of a results file")
    r.add_argument("results", metavar="RESULTS.json")
    r.add_argument("-o", "--out", metavar="DIR", help="output directory (default: the results file's)")

    c = sub.add_parser("compare", help="what changed from BASE to NEW; exit 1 on a regression")
    c.add_argument("base", metavar="BASE.json")
    c.add_argument("new", metavar="NEW.json")
    c.add_argument(
        "--tolerance",
        type=non_negative(),
        default=DEFAULT_TOLERANCE,
        help="a metric regresses when it moves the wrong way by more than this times the larger of "
        f"|threshold| and |base value| (default {DEFAULT_TOLERANCE})",
    )
    c.add_argument(
        "--speed-tolerance",
        type=non_negative(),
        default=DEFAULT_SPEED_TOLERANCE,
        help=f"a speed record regresses when slower by more than this fraction (default {DEFAULT_SPEED_TOLERANCE})",
    )

    b = sub.add_parser("leaderboard", help="ranking and history of adapters over many runs")
    b.add_argument("runs", nargs="+", metavar="RUN.json")
    b.add_argument("-o", "--out", required=True, metavar="DIR")

    m = sub.add_parser("merge", help="join the results files of shards of one run")
    m.add_argument("shards", nargs="+", metavar="SHARD.json")
    m.add_argument("-o", "--out", required=True, metavar="OUT.json")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except ResultsError as exc:
        _error(args.command, str(exc))
    except OSError as exc:
        _error(args.command, f"{getattr(exc, 'filename', None) or ''}: {exc.strerror or exc}".lstrip(": "))
    except Exception as exc:
        if os.environ.get("RNN_REPORTS_DEBUG"):
            raise
        _error(args.command, f"unexpected {type(exc).__name__}: {exc} (RNN_REPORTS_DEBUG=1 shows the traceback)")
    return 2


def _error(command: str, message: str) -> None:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)


def _out_dir(path: Path) -> Path:
    """An output directory that can be written (made if missing), else a one-line error."""
    problem = dir_problem(path)
    if problem:
        raise ResultsError(f"-o {path}: {problem}")
    return path


def _run(args: argparse.Namespace) -> int:
    if args.command == "report":
        from reports import render

        payload = load(args.results)
        out = _out_dir(Path(args.out) if args.out else Path(args.results).parent)
        for path in render.write(payload, out):
            print(f"wrote {path}")
        return 0
    if args.command == "compare":
        from reports.compare import compare

        base, new = load(args.base), load(args.new)
        result = compare(base, new, args.tolerance, args.speed_tolerance)
        print(result.text())
        return 1 if result.regressed else 0
    if args.command == "leaderboard":
        from reports import leaderboard

        for path in leaderboard.write(args.runs, _out_dir(Path(args.out))):
            print(f"wrote {path}")
        return 0
    if args.command == "merge":
        from reports.merge import merge_files

        merged = merge_files(args.shards)
        write_json_atomic(Path(args.out), merged)
        print(f"wrote {args.out}: {len(merged['results'])} records from {len(args.shards)} shard(s)")
        return 0
    raise AssertionError(args.command)
