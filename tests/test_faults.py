"""Fault isolation (DESIGN §9): a NaN loss, a forward that raises, a training that hangs and a
framework that will not import each become that cell's failure, error or skip with the reason;
the rest of the matrix runs and the results file is still written."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnn_behaviour.adapters import AdapterRef
from rnn_behaviour.benchmarks.matrix import Cell, CellSkipped, Matrix
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks import TASKS
from tests.test_plugin import run_matrix

ORACLE = ("--adapter", "oracle=tests.fakes:CountingOracle")


def run_smoke(pytester: pytest.Pytester, adapter: str, selection: str, *args: str) -> tuple[pytest.RunResult, Path]:
    """The smoke tier with `adapter` (NAME=module:Class) next to the exact counting oracle."""
    return run_matrix(pytester, "--tier", "smoke", "--adapter", adapter, *ORACLE, "-k", selection, *args)


def test_a_loss_that_goes_nan_fails_its_checks_and_says_so(pytester: pytest.Pytester) -> None:
    result, results_file = run_smoke(pytester, "nan=tests.faulty:NaNLoss", "(nan- and count_) or oracle-count_last")
    result.assert_outcomes(passed=1, failed=5, xfailed=2, xpassed=1)
    out = result.stdout.str()
    assert "nan failed count_steps.fit: passed 0/1 seeds" in out
    assert "seed 0: test_mse_len20 = nan" in out and "3 epochs, stopped on non_finite_loss" in out
    records = load(results_file)["results"]
    assert {r["outcome"] for r in records if r["adapter"] == "nan"} == {"failed", "xfailed"}
    assert all(r["value"] is None and r["loss_history"][-1] is None for r in records if r["adapter"] == "nan")
    assert {r["outcome"] for r in records if r["adapter"] == "oracle"} == {"passed", "xpassed"}


def test_a_forward_that_raises_is_that_cells_error(pytester: pytest.Pytester) -> None:
    result, results_file = run_smoke(
        pytester, "raising=tests.faulty:RaisingForward", "(raising- or oracle-) and count_last"
    )
    # pytest counts an exception in the test body as failed; the results file calls it an error.
    result.assert_outcomes(passed=1, failed=2, xpassed=1)
    records = load(results_file)["results"]
    raising = [r for r in records if r["adapter"] == "raising"]
    assert [r["outcome"] for r in raising] == ["error", "error"]
    assert all("RuntimeError: boom in forward" in r["reason"] for r in raising)


def test_a_training_that_hangs_times_out_once_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    selection = "(hang- or oracle-) and count_last"
    result, results_file = run_smoke(pytester, "hang=tests.faulty:Hanging", selection, "--cell-timeout", "1")
    result.assert_outcomes(passed=1, xpassed=1, errors=2)
    records = load(results_file)["results"]
    hang = [r for r in records if r["adapter"] == "hang"]
    assert [r["outcome"] for r in hang] == ["error", "error"]
    # The second check reports the cached failure instead of training (and hanging) again.
    assert all("hang on count_last (seed 0): Timeout (>1.0s)" in r["reason"] for r in hang)


def test_under_xdist_a_training_that_kills_the_process_is_each_of_its_checks_error(pytester: pytest.Pytester) -> None:
    result, results_file = run_smoke(
        pytester, "abort=tests.faulty:Aborting", "(abort- or oracle-) and count_", "-n", "2"
    )
    # Each of the two models kills one worker, once: the item it was running is reported crashed
    # (pytest counts it failed) and not run again; the model's other checks are errors without
    # training again; the oracle's row runs as usual.
    result.assert_outcomes(passed=5, xpassed=2, failed=2, errors=5)
    assert result.stdout.str().count("replacing crashed worker") == 2
    abort = [r for r in load(results_file)["results"] if r["adapter"] == "abort"]
    assert len(abort) == 7 and {r["outcome"] for r in abort} == {"error"}
    crashed = [r["task"] for r in abort if "crashed while running" in r["reason"]]
    assert sorted(crashed) == ["count_last", "count_steps"]
    others = [r for r in abort if "crashed while running" not in r["reason"]]
    assert all("the process died while training this model" in r["reason"] for r in others)


def test_other_dist_modes_train_a_model_on_two_workers_without_calling_it_a_crash(pytester: pytest.Pytester) -> None:
    # worksteal splits count_steps' five checks over both workers, which train the model at the
    # same time: the crash markers (kept only for the suite's own scheduler) must not see a crash.
    args = ("--tier", "smoke", "--adapter", "slow=tests.fakes:SlowFit", "-k", "slow-count_steps", "-n", "2")
    result, results_file = run_matrix(pytester, *args, "--dist", "worksteal")
    result.assert_outcomes(passed=4, xpassed=1)
    assert not any(r["reason"] and "died" in r["reason"] for r in load(results_file)["results"])


def test_an_adapter_whose_framework_does_not_import_skips_with_the_reason() -> None:
    ghost = AdapterRef("ghost-lstm", "tests.ghost_framework:Adapter")
    matrix = Matrix(tier="smoke", seeds=1, adapters={"ghost-lstm": ghost}, tasks=TASKS)
    with pytest.raises(CellSkipped, match=r"ghost-lstm: its framework is not installed .*No module named"):
        matrix.train(Cell("ghost-lstm", "count_steps", "fit"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cell-timeout", "-1"), "argument --cell-timeout: must be >= 0 seconds, got -1.0"),
        (("--cell-timeout", "soon"), "argument --cell-timeout: must be a number of seconds >= 0, got 'soon'"),
        # pytest-timeout's timer overflows on these: a usage error, not an INTERNALERROR mid-run
        (("--cell-timeout", "inf"), "argument --cell-timeout: must be a finite number of seconds, got 'inf'"),
        (("--cell-timeout", "1e12"), "argument --cell-timeout: must be at most 604800 seconds, got 1e+12"),
    ],
)
def test_bad_timeouts_are_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    result, _ = run_matrix(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_report_dir_under_a_file_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = pytester.runpytest_subprocess(
        str(Path(__file__).resolve().parent.parent / "benchmarks" / "test_behaviour.py"),
        "--report-dir", str(blocker / "report"), *ORACLE, "-k", "oracle-count_last",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--report-dir {blocker / 'report'}: {blocker} is a file, not a directory" in result.stderr.str()


def test_device_cuda_without_a_gpu_is_one_line_before_anything_trains(pytester: pytest.Pytester) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--device", "cuda", "-k", "torch-lstm-count_last")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and not results_file.exists()
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == [
        f"ERROR: rnn-behaviour: --device cuda, but torch {torch.__version__} (a CPU-only build) sees no CUDA device: "
        "run where a GPU is visible with a CUDA build of torch (https://pytorch.org/get-started/locally/), "
        "or use --device cpu"
    ], errors
