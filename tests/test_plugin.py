"""The plugin end to end: pytest runs the real matrix in a subprocess, with fake adapters.

The fakes (tests/fakes.py) solve the counting tasks without a framework, so each run takes a
few seconds; `-k` keeps the built-ins out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnn_behaviour.reports.results import load, validate

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR = str(ROOT / "benchmarks" / "test_behaviour.py")


def run_matrix(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    report_dir = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        BEHAVIOUR, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "--report-dir", str(report_dir),
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip
    return result, report_dir / "results.json"


def test_options_are_one_group_with_help(pytester: pytest.Pytester) -> None:
    result, _ = run_matrix(pytester, "--help")
    out = result.stdout.str()
    assert "rnn-behaviour: behavioural benchmarks for recurrent networks" in out
    for option in (
        "--tier={smoke,standard,full}",
        "--seeds=N",
        "--min-pass-rate=R",
        "--report-dir=DIR",
        "--adapter=SPEC",
    ):
        assert option in out


def test_ids_read_naturally(pytester: pytest.Pytester) -> None:
    result, _ = run_matrix(pytester, "--collect-only", "-q")
    out = result.stdout.str()
    assert "test_behaviour.py::test_check[torch-gru-count_steps-carry_state]" in out
    assert "test_check[keras-lstm-count_last-lengths]" in out
    assert result.ret == 0


def test_oracle_row_passes_and_beats_expectations(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", "oracle=tests.fakes:CountingOracle",
                                      "-k", "oracle-count", "-v")  # fmt: skip
    result.assert_outcomes(passed=5, xpassed=2)
    out = result.stdout.str()
    assert "test_check[oracle-count_steps-carry_state] PASSED" in out
    assert "rnn-behaviour: tier smoke, 1 seed(s)" in out
    assert f"report: {results_file.parent / 'report.html'} (and report.md)" in out
    assert "better than expected (XPASS): oracle count_steps.longer" in out
    assert "pass 0/0.0001" in out and "XPASS 0/0.05" in out
    payload = load(results_file)
    assert validate(payload) == []
    assert len(payload["results"]) == 7
    outcomes = {(r["task"], r["check"]): r["outcome"] for r in payload["results"]}
    assert outcomes[("count_steps", "longer")] == "xpassed" and outcomes[("count_steps", "fit")] == "passed"
    assert payload["run"]["tier"] == "smoke" and payload["run"]["seeds"] == 1


def test_broken_state_fails_with_a_message_that_names_everything(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", "forgetful=tests.fakes:ForgetfulState",
                                      "-k", "forgetful-count_steps")  # fmt: skip
    result.assert_outcomes(passed=2, failed=2, xpassed=1)
    out = result.stdout.str()
    assert "forgetful failed count_steps.carry_state: passed 0/1 seeds" in out
    assert "seed 0: max_abs_diff_chunked_vs_whole = " in out and "threshold 0.0001, memoryless baseline" in out
    assert "feeding [1, 1, 1] then [1, 0, 1] with the returned state gave [1.00, 1.00, 2.00]; expected [4, 4, 5]" in out
    assert "the state handed back in is ignored" in out
    assert "forgetful failed count_steps.cold_start" in out
    assert result.ret == 1
    failed = {r["check"] for r in load(results_file)["results"] if r["outcome"] == "failed"}
    assert failed == {"carry_state", "cold_start"}


def test_crash_in_fit_is_that_cells_error_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    adapters = ["--adapter", "crash=tests.fakes:CrashingFit", "--adapter", "oracle=tests.fakes:CountingOracle"]
    result, results_file = run_matrix(pytester, "--tier", "smoke", *adapters, "-k", "(crash- or oracle-) and count_")
    result.assert_outcomes(passed=5, xpassed=2, errors=7)
    assert "crash on count_last (seed 0): RuntimeError: boom in fit" in result.stdout.str()
    records = load(results_file)["results"]
    assert {r["outcome"] for r in records if r["adapter"] == "crash"} == {"error"}
    assert all("boom in fit" in r["reason"] for r in records if r["adapter"] == "crash")


def test_seeds_give_one_record_per_seed_and_k_of_n(pytester: pytest.Pytester) -> None:
    oracle = ["--adapter", "oracle=tests.fakes:CountingOracle"]
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--seeds", "3", *oracle, "-k", "oracle-count_last")
    result.assert_outcomes(passed=1, xpassed=1)
    records = json.loads(results_file.read_text())["results"]
    assert sorted(r["seed"] for r in records if r["check"] == "fit") == [0, 1, 2]
    assert "pass 0/0.05 3/3 [0.44, 1.00]" in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tier", "huge"), "argument --tier: invalid choice: 'huge' (choose from 'smoke', 'standard', 'full')"),
        (("--seeds", "0"), "argument --seeds: must be >= 1, got 0"),
        (("--min-pass-rate", "2"), "argument --min-pass-rate: must be in [0, 1], got 2.0"),
        (("--adapter", "torch-lsmt"), "unknown adapter 'torch-lsmt': did you mean torch-lstm"),
        (("--adapter", "tests.fakes:NotAnAdapter"), "lacks name, build, versions, compute_path, capabilities"),
        (("--adapter", "nowhere_pkg.mod:Thing"), "module 'nowhere_pkg' not found"),
    ],
)
def test_bad_options_are_usage_errors_that_say_why(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    result, results_file = run_matrix(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert not results_file.exists()


def test_a_bad_thread_count_is_a_usage_error_with_the_built_ins_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNN_BEHAVIOUR_THREADS", "0")
    result, results_file = run_matrix(pytester, "-k", "torch-lstm-count_steps-fit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "RNN_BEHAVIOUR_THREADS='0': must be a whole number >= 1" in result.stderr.str()
    assert not results_file.exists()


def test_progress_lines_show_at_verbose_only(pytester: pytest.Pytester) -> None:
    learner = ["--tier", "smoke", "--adapter", "learner=tests.fakes:Learner", "-k", "learner-count_last-fit"]
    quiet, _ = run_matrix(pytester, *learner)
    loud, _ = run_matrix(pytester, *learner, "-v")
    line = "learner on count_last (seed 0): epoch 1, loss 0.5, "
    assert line not in quiet.stdout.str()
    assert line in loud.stdout.str() and "s, criterion met" in loud.stdout.str()


def test_under_xdist_each_tasks_checks_share_one_training(pytester: pytest.Pytester, monkeypatch) -> None:
    """count_steps has 5 checks, count_last 2: with -n 2 each task's model is built once, on one
    worker (xdist's own loadgroup split them under pytest 9.2, so both workers trained it)."""
    log = pytester.path / "builds.log"
    monkeypatch.setenv("RNN_BEHAVIOUR_BUILD_LOG", str(log))
    oracle = ["--adapter", "oracle=tests.fakes:CountingBuilds", "-k", "oracle-count"]
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--seeds", "2", "-n", "2", *oracle)
    result.assert_outcomes(passed=5, xpassed=2)
    builds = sorted(line.rsplit(" pid ", 1)[0] for line in log.read_text().splitlines())
    assert builds == ["count_last seed 0", "count_last seed 1", "count_steps seed 0", "count_steps seed 1"]
    assert len({r["task"] for r in load(results_file)["results"]}) == 2


def test_scheduler_reads_the_cell_from_the_node_id() -> None:
    from rnn_behaviour.benchmarks.scheduling import bare, param_id

    node = "benchmarks/test_behaviour.py::test_check[torch-lstm-adding-mse]"
    assert param_id(node) == "torch-lstm-adding-mse"
    assert param_id(node + "@torch-lstm-adding") == "torch-lstm-adding-mse"  # xdist's suffix, before pytest 9.2
    assert bare(node + "@torch-lstm-adding") == node and bare(node) == node
    assert param_id("benchmarks/test_speed.py::test_nothing") == ""


def test_pending_tasks_run_only_when_asked(pytester: pytest.Pytester) -> None:
    # No task is pending today: a plugin makes one (a renamed `adding`) before the matrix is built.
    pytester.makepyfile(
        pending_task="import dataclasses\nfrom rnn_behaviour import tasks\n"
        "tasks.PENDING['adding_later'] = dataclasses.replace(tasks.TASKS['adding'], id='adding_later')\n"
    )
    default, _ = run_matrix(pytester, "--collect-only", "-q", "-k", "torch-lstm", "-p", "pending_task")
    pending, _ = run_matrix(pytester, "--collect-only", "-q", "-k", "torch-lstm", "-p", "pending_task", "--pending")
    assert "adding_later" not in default.stdout.str()
    assert "test_check[torch-lstm-copy_memory-recall]" in default.stdout.str()
    assert "test_check[torch-lstm-adding_later-mse]" in pending.stdout.str()
    assert "test_check[torch-lstm-count_steps-fit]" in pending.stdout.str()


class _Config:
    """What xdist's LoadScopeScheduling reads of a config: two workers, its default reorder."""

    option = type("Option", (), {"loadscopereorder": True})()

    def getvalue(self, name: str) -> list[str]:
        assert name == "tx"
        return ["popen", "popen"]


class _Node:
    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_scheduler_sends_each_task_whole_and_the_longest_first() -> None:
    from rnn_behaviour.benchmarks.matrix import Cell
    from rnn_behaviour.benchmarks.scheduling import CellScheduling

    cells = [Cell(a, t, c) for a in ("x", "new") for t, checks in (("fast", "ab"), ("slow", "a")) for c in checks]
    ids = [f"benchmarks/test_behaviour.py::test_check[{cell.id}]" for cell in cells]
    stored = {ids[0]: 1.0, ids[1]: 0.5, ids[2]: 30.0}  # x-fast-a/b, x-slow-a; adapter "new" never timed
    scheduler = CellScheduling(_Config(), None, {cell.id: cell for cell in cells}, stored)
    first, second = _Node("gw0"), _Node("gw1")
    for node in (first, second):
        scheduler.add_node(node)  # type: ignore[arg-type]
        scheduler.add_node_collection(node, ids)  # type: ignore[arg-type]
    scheduler.schedule()
    # Units by cost: x-slow 30, new-slow 30 (x-slow's time), new-fast 1.5 (x-fast's), x-fast 1.5.
    sent = [[ids[i].split("[")[1][:-1] for i in node.sent] for node in (first, second)]
    assert sent[0][0].endswith("-slow-a") and sent[1][0].endswith("-slow-a")
    assert sorted(sent[0] + sent[1]) == sorted(cell.id for cell in cells)
    for node in sent:  # a task's checks never split between the workers
        assert all(sum(cid.startswith(group) for cid in node) in (0, 2) for group in ("x-fast", "new-fast"))


def test_scheduler_after_a_crash_drops_the_crashed_item_and_waits_for_the_replacements_collection() -> None:
    from rnn_behaviour.benchmarks.matrix import Cell
    from rnn_behaviour.benchmarks.scheduling import CellScheduling

    cells = [Cell(a, "t", c) for a in ("x", "y") for c in ("a", "b", "c")]
    ids = [f"benchmarks/test_behaviour.py::test_check[{cell.id}]" for cell in cells]
    scheduler = CellScheduling(_Config(), None, {cell.id: cell for cell in cells})
    first, second = _Node("gw0"), _Node("gw1")
    for node in (first, second):
        scheduler.add_node(node)  # type: ignore[arg-type]
        scheduler.add_node_collection(node, ids)  # type: ignore[arg-type]
    scheduler.schedule()
    crashed_unit = [ids[i] for i in first.sent]
    scheduler.mark_test_complete(first, first.sent[0])  # type: ignore[arg-type]
    # gw0 dies on its unit's second item; its replacement is added but has not collected yet.
    replacement = _Node("gw2")
    scheduler.add_node(replacement)  # type: ignore[arg-type]
    assert scheduler.remove_node(first) == crashed_unit[1]  # type: ignore[arg-type]
    assert replacement.sent == []  # no KeyError (pytest-xdist#1189): it waits for its collection
    scheduler.add_node_collection(replacement, ids)  # type: ignore[arg-type]
    scheduler.schedule()
    # The rest of the unit runs again, the crashed item does not (xdist reported it as crashed).
    rerun = [ids[i] for i in replacement.sent] + [ids[i] for i in second.sent[3:]]
    assert rerun == crashed_unit[2:]
