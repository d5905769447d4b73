"""The pytest command that runs the suite's benchmarks from any directory.

From a checkout, `pytest benchmarks` finds the plugin through the root conftest.py. Installed, the
benchmarks are files inside the package, so every command that starts pytest on them (the console
command, `rnn-behaviour bench`, the nightly shards) names them by absolute path, loads the plugin
with `-p`, and reads the suite's own ini (`suite.ini`) with the rootdir at the package's top: item ids
are `benchmarks/test_behaviour.py::test_check[...]` either way, and the caller's own ini and conftest
files (a project with its own `tasks/` and `conftest.py`) are not read. pytest's cache stays off, so
nothing is written inside the installed package. The command runs in the caller's directory, which
`python -m` puts on the path: `--adapter torch:mypkg.rnn:my_lstm` imports their `mypkg`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rnn_behaviour import HOME

INI = Path(__file__).resolve().with_name("suite.ini")
PLUGIN = "rnn_behaviour.plugin"


#: Options whose value is never a path (`-k benchmarks` selects by name).
NOT_PATHS = ("-k", "-m", "-p", "-n", "-o", "-W", "--tier", "--seeds", "--device", "--adapter", "--like", "--lr-sweep")


def suite_path(arg: str, after: str = "") -> str:
    """A path argument of the suite's own (`benchmarks`, `benchmarks/test_conformance.py::...`, the
    value of `--ignore`) made absolute; anything else as given."""
    if after not in NOT_PATHS and (arg == "benchmarks" or arg.startswith("benchmarks/")):
        return str(HOME / arg)
    return arg


def pytest_command(args: Sequence[str]) -> list[str]:
    """`python -m pytest` over the suite's benchmarks with `args`: the benchmarks directory unless
    `args` names paths of the suite (`benchmarks/test_speed.py`)."""
    mapped = [suite_path(arg, after) for after, arg in zip(["", *args], args, strict=False)]
    named = any(arg != original for arg, original in zip(mapped, args, strict=True))
    prefix = ["-p", PLUGIN, "-c", str(INI), "--rootdir", str(HOME), "-p", "no:cacheprovider"]
    return [sys.executable, "-m", "pytest", *prefix, *([] if named else [str(HOME / "benchmarks")]), *mapped]


def suite_args(command: Sequence[str]) -> list[str]:
    """The arguments of a `pytest_command` as they read from a checkout's root (`benchmarks`,
    `benchmarks/test_speed.py`): what the command runs, without where the suite is installed."""
    rest = list(command[command.index("no:cacheprovider") + 1 :])
    home = str(HOME)
    return [arg.replace(home + "/", "", 1) if arg.startswith(home + "/") else arg for arg in rest]
