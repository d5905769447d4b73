"""The rnn-behaviour pytest plugin: parametrisation, result collection, terminal summary (its
options are `options.py`).

`pytest benchmarks` runs one item per (adapter, task, check) with ids such as
`test_check[torch-gru-count_steps-carry_state]`, and one per (adapter, conformance check) such as
`test_conformance[torch-gru-forward_parity]`. Results travel from each item through
`user_properties` to the `ResultCollector` (benchmarks/collector.py), which writes
`<report-dir>/results.json` at the end of the session and shows the pivot.
This module imports no ML framework; adapters import theirs when a cell first needs them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour import HOME, base_dir, environment
from rnn_behaviour.adapters import BUILTINS, AdapterError, entry_points, resolve
from rnn_behaviour.adapters.base import DEVICE_VARIABLE, threads
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
from rnn_behaviour.options import add_options, cell_timeout, lr_multiples
from rnn_behaviour.reports.results import dir_problem
from rnn_behaviour.tasks import PENDING, TASKS

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


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


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
        cell_timeout=cell_timeout(config),
        lr_multiples=lr_multiples(config),
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
            params.append(pytest.param(item, id=item.id, marks=[_xfail(reason)] if reason else []))
        metafunc.parametrize("conformance", params)
    if "speed" in metafunc.fixturenames:
        timed = speed.items(list(metafunc.config.stash[MATRIX].adapters), metafunc.config.getoption("tier"))
        metafunc.parametrize("speed", [pytest.param(item, id=item.id) for item in timed])
    if "cell" not in metafunc.fixturenames:
        return
    params = []
    timeout = cell_timeout(metafunc.config)
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
