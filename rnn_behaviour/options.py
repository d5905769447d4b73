"""The rnn-behaviour pytest options (`pytest --help`, group "rnn-behaviour") and the values the
plugin derives from them: the cell timeout by tier and the --lr-sweep multiples."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from rnn_behaviour import DEFAULT_REPORT_DIR
from rnn_behaviour.adapters.base import DEVICES
from rnn_behaviour.benchmarks.sweep import DEFAULT_MULTIPLES, parse_multiples
from rnn_behaviour.reports.cli import non_negative
from rnn_behaviour.tasks import PENDING, TIERS

#: Seconds one behaviour cell (its training included) may take before it is that cell's error;
#: generous, to catch a hang rather than a slow run. `--cell-timeout` overrides, 0 turns it off.
CELL_TIMEOUT = {"smoke": 600, "standard": 1800, "full": 7200}
#: The most --cell-timeout takes (a week): the timer of pytest-timeout overflows past about 10^9 s.
CELL_TIMEOUT_MAX = 7 * 24 * 3600


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _number_in(low: float, high: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type for a number in [low, high], or (low, high] when `above`, naming the interval."""
    interval = f"{'(' if above else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}") from None
        if not ((low < value if above else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {value}")
        return value

    return parse


_rate = _number_in(0, 1)
_scale = _number_in(0, 100, above=True)


def add_options(parser: pytest.Parser) -> None:
    """The suite's options, in their own group of `pytest --help`."""
    group = parser.getgroup("rnn-behaviour", "rnn-behaviour: behavioural benchmarks for recurrent networks")
    group.addoption(
        "--tier",
        choices=TIERS,
        default="standard",
        help="epoch budgets and the long-range tasks' lengths: smoke (CI's quick pass), standard (default), full",
    )
    group.addoption(
        "--seeds",
        type=_positive_int,
        default=1,
        metavar="N",
        help="evaluate every cell on seeds 0..N-1 (default 1)",
    )
    group.addoption(
        "--min-pass-rate",
        type=_rate,
        default=1.0,
        metavar="R",
        help="fraction of seeds a cell must pass to pass (default 1.0)",
    )
    group.addoption(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where results.json, report.md and report.html are written (default {DEFAULT_REPORT_DIR}; a relative "
        "path is from the repository root in a checkout, else from the working directory)",
    )
    group.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="SPEC",
        help="add an implementation next to the built-ins (repeatable): [name=]torch:pkg.module:factory "
        "(factory(input_size, hidden_size) -> nn.Module), [name=]keras:pkg.module:factory (factory(units, "
        "**layer_kwargs) -> Keras RNN layer), [name=]jax:pkg.module:factory (factory(input_size, hidden_size, *, "
        "rngs) -> flax.nnx.Module) or [name=]pkg.module:AdapterClass",
    )
    group.addoption(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the adapters' models train and predict: cpu (default), cuda, or auto (cuda when one is "
        "visible); on a GPU, TF32 is off",
    )
    group.addoption(
        "--no-early-stop",
        action="store_true",
        help="train every run to its epoch cap, even one whose fate is known (flat at the chance level, or diverged, "
        "past the epoch by which every passing calibration run of the built-ins had left it; tasks/README.md)",
    )
    group.addoption(
        "--epochs-scale",
        type=_scale,
        default=1.0,
        metavar="F",
        help="every task's epoch cap times F (default 1): what settles a run still improving at its cap",
    )
    group.addoption(
        "--pending",
        action="store_true",
        help="also run the tasks that are implemented but not yet calibrated "
        f"({', '.join(PENDING) or 'none at present'}), to calibrate them; their gates are not yet calibrated verdicts",
    )
    group.addoption(
        "--cell-timeout",
        type=non_negative("seconds", at_most=CELL_TIMEOUT_MAX),
        default=None,
        metavar="S",
        help="seconds a behaviour cell (training included) may run before it is that cell's error "
        f"(default by tier: {', '.join(f'{t} {s}' for t, s in CELL_TIMEOUT.items())}; 0 = no limit)",
    )
    group.addoption(
        "--lr-sweep",
        nargs="?",
        const=",".join(f"{m:g}" for m in DEFAULT_MULTIPLES),
        default=None,
        metavar="MULTIPLES",
        help="train each model at several multiples of the task's learning rate and keep the best by the "
        f"task's validation criterion (default multiples {','.join(f'{m:g}' for m in DEFAULT_MULTIPLES)}); "
        "the record's lr_sweep says which won. For architectures the recipes were not tuned for; the "
        "calibrated gates assume the recipe's rate. Each cell's timeout is multiplied by the number of rates",
    )
    group.addoption(
        "--like",
        action="append",
        default=[],
        metavar="NAME=BUILTIN",
        help="give a row of --adapter the expected failures of a built-in (repeatable), e.g. mine=torch-gru; "
        "without it, a row of yours shares only the limits of the tasks themselves, whatever its name",
    )
    group.addoption(
        "--expectations",
        default=None,
        metavar="FILE",
        help="the known limits of your rows, as data (TOML, or JSON unless the name ends in .toml): entries "
        "of adapter, task, check, reason (and optional tiers); those cells are expected failures (xfail) "
        "with your reason",
    )


def cell_timeout(config: pytest.Config) -> float:
    """`--cell-timeout`, or the tier's default times the number of --lr-sweep rates and the
    --epochs-scale; 0 = no limit."""
    timeout = config.getoption("cell_timeout")
    if timeout is None:
        timeout = CELL_TIMEOUT[config.getoption("tier")] * max(1.0, config.getoption("epochs_scale"))
    return timeout * max(1, len(lr_multiples(config)))


def lr_multiples(config: pytest.Config) -> tuple[float, ...]:
    text = config.getoption("lr_sweep")
    if text is None:
        return ()
    try:
        return parse_multiples(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--lr-sweep {text}: {exc}") from None
