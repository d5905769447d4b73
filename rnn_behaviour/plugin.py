"""The rnn-behaviour pytest plugin: options, parametrisation, result collection, terminal summary.

`pytest benchmarks` runs one item per (adapter, task, check) with ids such as
`test_check[torch-gru-count_steps-carry_state]`, and one per (adapter, conformance check) such as
`test_conformance[torch-gru-forward_parity]`. Results travel from each item through
`user_properties` to the `ResultCollector` (benchmarks/collector.py), which writes
`<report-dir>/results.json` at the end of the session and shows the pivot.
This module imports no ML framework; adapters import theirs when a cell first needs them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour import DEFAULT_REPORT_DIR, HOME, base_dir, environment
from rnn_behaviour.adapters import BUILTINS, AdapterError, entry_points, resolve
from rnn_behaviour.adapters.base import DEVICE_VARIABLE, DEVICES, threads
from rnn_behaviour.benchmarks import expectations, speed
from rnn_behaviour.benchmarks.collector import MATRIX, ResultCollector, terminate_as_interrupt
from rnn_behaviour.benchmarks.conformance import CHECKS, TASK, Conformance
from rnn_behaviour.benchmarks.expectations import Expectation, ExpectationsError, expected_failure
from rnn_behaviour.benchmarks.matrix import (
    Cell,
    CellIncomplete,
    CellSkipped,
    Matrix,
    Trained,
)
from rnn_behaviour.benchmarks.records import CELL_PROPERTY, INCOMPLETE_PROPERTY
from rnn_behaviour.benchmarks.sweep import DEFAULT_MULTIPLES, parse_multiples
from rnn_behaviour.reports.cli import non_negative
from rnn_behaviour.reports.results import dir_problem
from rnn_behaviour.tasks import PENDING, TASKS, TIERS

#: The pytest modules of the suite, and the item durations its scheduler and pytest-split use.
BENCHMARKS = HOME / "benchmarks"
DURATIONS = BENCHMARKS / ".test_durations"
#: What the suite's own ini sets, for a run from another project's pytest (`--pyargs`).
FILTERWARNINGS = ("ignore::DeprecationWarning:tensorflow.*", "ignore::DeprecationWarning:keras.*")

#: ({user row: the built-in it is like (--like)}, the expectations of --expectations FILE).
EXPECTED = pytest.StashKey[tuple[dict[str, str], tuple[Expectation, ...]]]()
#: pytest-xdist's workerinput key of the run's crash directory (`Matrix.crash_dir`).
CRASH_DIR = "rnn_behaviour_crash_dir"
CRASH_DIR_KEY = pytest.StashKey[str]()
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


def pytest_addoption(parser: pytest.Parser) -> None:
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


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before any plugin configures: pytest-split's --durations-path, unless given, is the suite's
    own file (its default, .test_durations in the working directory, is nowhere when installed)."""
    given = getattr(config.option, "durations_path", None)
    if given is not None and given == os.path.join(os.getcwd(), ".test_durations") and not os.path.isfile(given):
        config.option.durations_path = str(DURATIONS)


def pytest_configure(config: pytest.Config) -> None:
    for line in FILTERWARNINGS:
        config.addinivalue_line("filterwarnings", line)
    missing = environment.problem(config.getoption("device"), config.getoption("adapter"))
    if missing:
        raise pytest.UsageError(missing)
    _check_report_dir(config)
    # The adapters read it at import, in this process and in every pytest-xdist worker.
    os.environ[DEVICE_VARIABLE] = config.getoption("device")
    adapters = dict(BUILTINS)
    try:
        threads()  # a bad RNN_BEHAVIOUR_THREADS: one usage error now, not every cell's error later
        installed = entry_points()
    except AdapterError as exc:
        raise pytest.UsageError(str(exc)) from None
    given = [(f"--adapter {spec}", spec) for spec in config.getoption("adapter")]
    for origin, spec in [*((f"entry point {ref.name} ({ref.spec})", ref) for ref in installed.values()), *given]:
        try:
            ref = resolve(spec) if isinstance(spec, str) else spec
            if ref.name in adapters and adapters[ref.name] is not ref:
                raise AdapterError(f"adapter name {ref.name!r} is given twice; name one of them with name=")
            loaded = ref.load()
        except (AdapterError, ImportError) as exc:
            raise pytest.UsageError(f"{origin}: {exc}") from None
        if getattr(loaded, "trained_by", ""):  # a user's engine row: its cells join its source's groups
            ref = dataclasses.replace(ref, source=str(loaded.trained_by))
        adapters[ref.name] = ref
    tasks = {**TASKS, **PENDING} if config.getoption("pending") else TASKS
    config.stash[EXPECTED] = _expected(config, adapters)
    config.stash[MATRIX] = Matrix(
        tier=config.getoption("tier"),
        seeds=config.getoption("seeds"),
        adapters=adapters,
        tasks=tasks,
        cell_timeout=_cell_timeout(config),
        lr_multiples=_lr_multiples(config),
        early_stop=not config.getoption("no_early_stop"),
        epochs_scale=config.getoption("epochs_scale"),
    )
    _isolate_crashes(config)
    terminate_as_interrupt(config)
    config.pluginmanager.register(ResultCollector(config), "rnn-behaviour-results")
    if config.option.verbose >= 1 and not hasattr(config, "workerinput"):
        config.stash[MATRIX].progress = _live_line(config)


def _expected(config: pytest.Config, adapters: dict[str, Any]) -> tuple[dict[str, str], tuple[Expectation, ...]]:
    """--like and --expectations, checked: a bad one is one usage error line before anything runs."""
    likes: dict[str, str] = {}
    for text in config.getoption("like"):
        name, sep, builtin = (part.strip() for part in text.partition("="))
        if not sep or not name or not builtin:
            raise pytest.UsageError(f"--like {text}: expected NAME=BUILTIN, e.g. mine=torch-gru")
        if name not in adapters or name in BUILTINS:
            raise pytest.UsageError(f"--like {text}: {name!r} is no row of yours (given with --adapter or installed)")
        if builtin not in BUILTINS:
            raise pytest.UsageError(f"--like {text}: {builtin!r} is no built-in; choose from {', '.join(BUILTINS)}")
        likes[name] = builtin
    path = config.getoption("expectations")
    if not path:
        return likes, ()
    try:
        return likes, expectations.load(path, adapters)
    except ExpectationsError as exc:
        raise pytest.UsageError(f"--expectations {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if Path(metafunc.module.__file__ or "").resolve().parent != BENCHMARKS:
        return
    if "conformance" in metafunc.fixturenames:
        items = [
            Conformance(adapter, check.name) for adapter in metafunc.config.stash[MATRIX].adapters for check in CHECKS
        ]
        likes, declared = metafunc.config.stash[EXPECTED]
        tier = metafunc.config.getoption("tier")
        params = []
        for item in items:  # an upstream bug a row is known to have: xfail with its cause (expectations.py)
            reason = expected_failure(item.adapter, TASK, item.check, tier, likes.get(item.adapter), declared)
            marks = [_xfail(reason)] if reason else []
            params.append(pytest.param(item, id=item.id, marks=marks))
        metafunc.parametrize("conformance", params)
    if "speed" in metafunc.fixturenames:
        timed = speed.items(list(metafunc.config.stash[MATRIX].adapters), metafunc.config.getoption("tier"))
        metafunc.parametrize("speed", [pytest.param(item, id=item.id) for item in timed])
    if "cell" not in metafunc.fixturenames:
        return
    params = []
    timeout = _cell_timeout(metafunc.config)
    likes, declared = metafunc.config.stash[EXPECTED]
    for cell in metafunc.config.stash[MATRIX].cells():
        marks: list[pytest.MarkDecorator] = []
        if timeout:
            marks.append(pytest.mark.timeout(timeout, method="signal"))
        tier = metafunc.config.getoption("tier")
        reason = expected_failure(
            cell.adapter, cell.task, cell.check, tier, likes.get(cell.adapter), declared, cell.trained_by
        )
        if reason:
            marks.append(_xfail(reason))
        params.append(pytest.param(cell, id=cell.id, marks=marks))
    metafunc.parametrize("cell", params)


def _xfail(reason: str) -> pytest.MarkDecorator:
    """xfail with the reason; raises=: only a failed check is the expected failure, a crash stays an error."""
    return pytest.mark.xfail(reason=reason, strict=False, raises=pytest.fail.Exception)


def _cell_timeout(config: pytest.Config) -> float:
    """`--cell-timeout`, or the tier's default times the number of --lr-sweep rates and the
    --epochs-scale; 0 = no limit."""
    timeout = config.getoption("cell_timeout")
    if timeout is None:
        timeout = CELL_TIMEOUT[config.getoption("tier")] * max(1.0, config.getoption("epochs_scale"))
    return timeout * max(1, len(_lr_multiples(config)))


def _lr_multiples(config: pytest.Config) -> tuple[float, ...]:
    text = config.getoption("lr_sweep")
    if text is None:
        return ()
    try:
        return parse_multiples(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--lr-sweep {text}: {exc}") from None


def pytest_collection_finish(session: pytest.Session) -> None:
    cells = [cell for cell in map(_cell_of, session.items) if cell is not None]
    session.config.stash[MATRIX].expect(cells)


def _suite_schedules(config: pytest.Config) -> bool:
    """Whether `-n` work goes through the suite's scheduler (xdist's `--dist load` or `loadgroup`)."""
    return config.getvalue("dist") in ("load", "loadgroup")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n N` (and `--dist load` or `loadgroup`), one work unit per (adapter, task), so a
    task's checks share one trained model, handed out longest first (benchmarks/scheduling.py)."""
    if not _suite_schedules(config):
        return None  # worksteal, loadscope, ...: xdist's own, which split or serialise the tasks
    from rnn_behaviour.benchmarks.scheduling import CellScheduling, read_durations

    # pytest-split's --durations-path (ours unless given: pytest_configure)
    durations = Path(getattr(config.option, "durations_path", None) or DURATIONS)
    if not durations.is_file():
        durations = DURATIONS
    cells = {cell.id: cell for cell in config.stash[MATRIX].cells()}
    return CellScheduling(config, log, cells, read_durations(durations))


def _live_line(config: pytest.Config) -> Callable[[str], None]:
    """A writer of terminal lines that shows while a test runs (past pytest's output capture)."""

    def write(line: str) -> None:
        # Looked up here: the terminal reporter registers itself after this plugin's configure.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capture is None:
            reporter.write_line(f"  {line}")
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"  {line}")

    return write


def _isolate_crashes(config: pytest.Config) -> None:
    """Under pytest-xdist, a worker that dies (a segfault or abort in an adapter's native code) is
    replaced and its item reported as crashed; the suite makes that the cell's error: a crash
    directory shared with the workers, so no model that crashed is trained again
    (`Matrix.crash_dir`), and enough restarts for every item to crash once (xdist's default, 4 per
    worker, would end the run after a few crashes). Serially, a process
    that dies ends the run: `-n` is the way to run an adapter that may crash."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        crash_dir = workerinput.get(CRASH_DIR)
        config.stash[MATRIX].crash_dir = Path(crash_dir) if crash_dir else None
        return
    if not getattr(config.option, "numprocesses", None) or not _suite_schedules(config):
        return  # other --dist modes may train one model on two workers at once, and re-run crashes
    crash_dir = tempfile.mkdtemp(prefix="rnn-behaviour-crashes-")
    config.stash[CRASH_DIR_KEY] = crash_dir
    config.add_cleanup(lambda: shutil.rmtree(crash_dir, ignore_errors=True))
    if getattr(config.option, "maxworkerrestart", "") is None:
        matrix = config.stash[MATRIX]  # an item crashes at most once: it is not run again
        items = len(matrix.cells()) + len(matrix.adapters) * len(CHECKS)
        config.option.maxworkerrestart = str(4 * int(config.option.numprocesses) + items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: hand each worker the run's crash directory."""
    crash_dir = node.config.stash.get(CRASH_DIR_KEY, None)
    if crash_dir:
        node.workerinput[CRASH_DIR] = crash_dir


def _check_report_dir(config: pytest.Config) -> None:
    """A report dir that cannot be written is a usage error now, not a traceback after the run."""
    path = Path(config.getoption("report_dir"))
    path = path if path.is_absolute() else base_dir() / path
    problem = dir_problem(path)
    if problem:
        raise pytest.UsageError(f"--report-dir {path}: {problem}")


def _cell_of(item: pytest.Item) -> Cell | None:
    callspec = getattr(item, "callspec", None)
    cell = callspec.params.get("cell") if callspec is not None else None
    return cell if isinstance(cell, Cell) else None


@pytest.fixture
def matrix(request: pytest.FixtureRequest) -> Matrix:
    return request.config.stash[MATRIX]


@pytest.fixture
def trained(cell: Cell, matrix: Matrix, request: pytest.FixtureRequest) -> Iterator[list[Trained]]:
    """The cell's models, one per seed: trained once per (adapter, task, seed) and shared."""
    request.node.user_properties.append((CELL_PROPERTY, {"template": matrix.template(cell), "seeds": matrix.seeds}))
    __tracebackhide__ = True
    why = None if request.config.getoption("runxfail") else matrix.foregone(cell)
    if why:  # its verdict is known (and the cell marked xfail): nothing is trained
        matrix.done(cell)
        pytest.xfail(why)
    try:
        models = matrix.train(cell)
    except CellSkipped as exc:
        matrix.done(cell)
        pytest.skip(str(exc))
    except CellIncomplete as exc:  # projected past the cell timeout: neither a pass nor a failure
        matrix.done(cell)
        request.node.user_properties.append((INCOMPLETE_PROPERTY, str(exc)))
        pytest.skip(str(exc))
    except BaseException:
        matrix.done(cell)
        raise
    yield models
    matrix.done(cell)
