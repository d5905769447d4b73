"""`python -m reports {report,compare,leaderboard,merge,nightly}`: the command line over results files.

Exit codes: 0 fine, 1 regression (compare, nightly publish), 2 bad input (missing or malformed
file, task version mismatch, usage). Bad input is one line on stderr, never a traceback.
`nightly shard` exits with pytest's code when the shard is broken (2 and up).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rnn_behaviour.reports.results import ResultsError, dir_problem, load, write_json_atomic

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


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    from rnn_behaviour.reports.compare import DEFAULT_SPEED_TOLERANCE, DEFAULT_TOLERANCE

    p = argparse.ArgumentParser(prog=prog, description="Reports over rnn-behaviour results files.")
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
    _nightly_parser(sub.add_parser("nightly", help="the nightly job's steps: shard, merge, publish"), prog)
    return p


def _nightly_parser(n: argparse.ArgumentParser, prog: str) -> None:
    from rnn_behaviour.reports.compare import DEFAULT_SPEED_TOLERANCE, DEFAULT_TOLERANCE

    steps = n.add_subparsers(dest="step", required=True, metavar="STEP")
    s = steps.add_parser("shard", help="run shard K of N of the matrix; fails only on a broken run")
    s.add_argument("group", type=int, metavar="K")
    s.add_argument("splits", type=int, metavar="N")
    s.add_argument("--tier", default="full", choices=("smoke", "standard", "full"))
    s.add_argument("-o", "--out", required=True, metavar="DIR", help="the shard's report directory")
    s.usage = f"{prog} nightly shard [-h] [--tier TIER] -o DIR K N [-- PYTEST_ARG ...]"
    s.epilog = "Arguments after -- go to pytest as they are, e.g. -- -n auto --adapter mine=torch:pkg.rnn:mine"

    m = steps.add_parser("merge", help="the night's results.json and report from its shards")
    m.add_argument("shards", nargs="+", metavar="SHARD", help="a shard's report directory or results file")
    m.add_argument("-o", "--out", required=True, metavar="NIGHT_DIR")
    m.add_argument("--expect", type=int, metavar="N", help="refuse unless exactly N shards are given")

    p = steps.add_parser(
        "publish", help="history, leaderboard, compare with the previous night; exit 1 on a regression"
    )
    p.add_argument("night", metavar="NIGHT_DIR", help="the merged night (results.json and report.html)")
    p.add_argument("--history", required=True, metavar="DIR", help="one results file per night, kept here")
    p.add_argument("--keep", type=int, default=60, metavar="N", help="nights kept in the history (default 60)")
    p.add_argument("--base", metavar="BASE.json", help="compare with this instead of the newest earlier night")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="the leaderboard pages")
    p.add_argument("--tolerance", type=non_negative(), default=DEFAULT_TOLERANCE, help="as for compare")
    p.add_argument("--speed-tolerance", type=non_negative(), default=DEFAULT_SPEED_TOLERANCE, help="as for compare")


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The command line; `prog` is how it is called (`rnn-behaviour` when installed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # What follows `--` is pytest's (nightly shard), kept away from argparse.
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = parser(prog)
    args = p.parse_args(argv[: len(argv) - len(rest) - 1] if "--" in argv else argv)
    if rest and getattr(args, "step", None) != "shard":
        p.error(f"arguments after -- are only for nightly shard: {' '.join(rest)}")
    args.pytest_args, args.prog = rest, prog
    try:
        return _run(args)
    except ResultsError as exc:
        _error(prog, args.command, str(exc))
    except OSError as exc:
        _error(prog, args.command, f"{getattr(exc, 'filename', None) or ''}: {exc.strerror or exc}".lstrip(": "))
    except Exception as exc:
        if os.environ.get("RNN_REPORTS_DEBUG"):
            raise
        _error(prog, args.command, f"unexpected {type(exc).__name__}: {exc} (RNN_REPORTS_DEBUG=1 shows the traceback)")
    return 2


def _error(prog: str, command: str, message: str) -> None:
    print(f"{prog} {command}: error: {message}", file=sys.stderr)


def _out_dir(path: Path) -> Path:
    """An output directory that can be written (made if missing), else a one-line error."""
    problem = dir_problem(path)
    if problem:
        raise ResultsError(f"-o {path}: {problem}")
    return path


def _run(args: argparse.Namespace) -> int:
    if args.command == "report":
        from rnn_behaviour.reports import render

        payload = load(args.results)
        out = _out_dir(Path(args.out) if args.out else Path(args.results).parent)
        for path in render.write(payload, out):
            print(f"wrote {path}")
        return 0
    if args.command == "compare":
        from rnn_behaviour.reports.compare import compare

        base, new = load(args.base), load(args.new)
        result = compare(base, new, args.tolerance, args.speed_tolerance)
        print(result.text())
        return 1 if result.regressed else 0
    if args.command == "leaderboard":
        from rnn_behaviour.reports import leaderboard

        for path in leaderboard.write(args.runs, _out_dir(Path(args.out))):
            print(f"wrote {path}")
        return 0
    if args.command == "merge":
        from rnn_behaviour.reports.merge import merge_files

        merged = merge_files(args.shards)
        write_json_atomic(Path(args.out), merged)
        print(f"wrote {args.out}: {len(merged['results'])} records from {len(args.shards)} shard(s)")
        return 0
    if args.command == "nightly":
        return _nightly(args)
    raise AssertionError(args.command)


def _nightly(args: argparse.Namespace) -> int:
    from rnn_behaviour.reports import nightly

    if args.step == "shard":
        rc, line = nightly.run_shard(args.group, args.splits, args.tier, Path(args.out), args.pytest_args)
        print(f"{args.prog} nightly shard: {line}", file=sys.stderr if rc else sys.stdout)
        return rc
    if args.step == "merge":
        merged, target = nightly.merge_night(args.shards, _out_dir(Path(args.out)), args.expect)
        print(f"wrote {target} (and its report): {len(merged['results'])} records from {len(args.shards)} shard(s)")
        return 0
    if args.step == "publish":
        pub = nightly.publish(
            Path(args.night),
            _out_dir(Path(args.history)),
            _out_dir(Path(args.out)),
            args.keep,
            Path(args.base) if args.base else None,
            args.tolerance,
            args.speed_tolerance,
        )
        nightly.annotate(pub)
        return pub.rc
    raise AssertionError(args.step)
