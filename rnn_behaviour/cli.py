"""`rnn-behaviour`: the suite from any directory, once installed (`pip install rnn-behaviour`).

    rnn-behaviour run [PYTEST ARGS]    pytest over the suite's benchmarks: the same items, records and
                                       exit codes as `pytest benchmarks` in a checkout, every option
                                       (--adapter, --tier, --seeds, -k, -n, --device, --report-dir, ...)
    rnn-behaviour bench [PYTEST ARGS]  the matrix on every core, then the speed items (make bench)
    rnn-behaviour smoke [PYTEST ARGS]  the same on the smoke tier (make smoke)
    rnn-behaviour gpu [PYTEST ARGS]    every GPU check, in an environment with a CUDA torch
    rnn-behaviour report|compare|leaderboard|merge|nightly ...   the report tools (python -m reports)

A run is pytest itself (`run` replaces this process with it), in the working directory, so that
`--adapter torch:mypkg.rnn:my_lstm` imports the caller's `mypkg`. What the environment lacks
(pytest older than 9, no framework, no GPU for `--device cuda`) is one line and exit 4.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rnn_behaviour import __version__, environment

REPORT_COMMANDS = ("report", "compare", "leaderboard", "merge", "nightly")
RUN_COMMANDS = ("run", "bench", "smoke", "gpu")
USAGE = 4


def usage() -> str:
    return (__doc__ or "").split("\n\n")[1]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(f"usage: rnn-behaviour COMMAND [ARGS]\n\n{usage()}")
        return 0 if args else 2
    if args[0] == "--version":
        print(f"rnn-behaviour {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command in REPORT_COMMANDS:
        from rnn_behaviour.reports import cli

        return cli.main(args, prog="rnn-behaviour")
    if command not in RUN_COMMANDS:
        choices = ", ".join((*RUN_COMMANDS, *REPORT_COMMANDS))
        print(f"rnn-behaviour: unknown command {command!r}; choose one of {choices}", file=sys.stderr)
        return 2
    missing = environment.pytest_problem() or environment.shadow_problem(Path.cwd(), Path(__file__).parent)
    if missing:
        print(missing, file=sys.stderr)
        return USAGE
    if command == "gpu":
        from rnn_behaviour import gpu

        return gpu.main(rest)
    if command in ("bench", "smoke"):
        from rnn_behaviour.benchmarks import run

        return run.run(["--tier", "smoke", *rest] if command == "smoke" else rest)
    from rnn_behaviour.invoke import pytest_command

    line = pytest_command(rest)
    sys.stdout.flush()
    os.execv(line[0], line)  # pytest's own exit code, signals and output: `pytest benchmarks` exactly


if __name__ == "__main__":
    sys.exit(main())
