"""The training diagnosis and the time projection (benchmarks/diagnosis.py), on synthetic loss
histories, on real tasks' reference levels, and end to end through the plugin with fakes."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnn_behaviour.benchmarks.diagnosis import (
    PROJECT_AFTER,
    Level,
    Projection,
    TooSlow,
    _spreads,
    diagnose,
    did_not_train,
    diverged,
    near_gate,
    reference_level,
    still_improving,
)
from rnn_behaviour.reports.results import load, validate
from rnn_behaviour.tasks import TASKS
from tests.test_plugin import BEHAVIOUR, ROOT, run_matrix

FALLING = [1.0 / (1 + e) for e in range(100)]  # still falling at the end
CONVERGED = [1.0 / (1 + e) for e in range(50)] + [0.02] * 50
MEMORYLESS = Level(1.0, "memoryless")


def rules(findings: list) -> list[str]:
    return [f.rule for f in findings]


def test_diverged_on_a_non_finite_loss_or_a_rise() -> None:
    found = diverged([1.0, 0.5, math.nan, math.nan])
    assert found is not None and "became nan at epoch 3" in found.text
    found = diverged([1.0, 1.2, 1.6])
    assert found is not None and "rose from 1 (epoch 1) to 1.6 (epoch 3)" in found.text
    assert diverged([1.0, 1.4, 1.45]) is None  # a rise under 1.5x is noise, not divergence
    assert diverged(FALLING) is None and diverged([2.0]) is None


def test_did_not_train_against_the_memoryless_level() -> None:
    found = did_not_train([1.2, 1.0, 0.95], MEMORYLESS)
    assert found is not None and "still at the memoryless level 1" in found.text
    assert did_not_train([1.2, 1.0, 0.85], MEMORYLESS) is None  # below 90% of the level: it trained
    assert did_not_train([5.0, 0.1], Level(0.0, "memoryless")) is None  # no level to be at


def test_did_not_train_falls_back_to_the_first_epoch() -> None:
    found = did_not_train([2.0, 1.95, 1.9], None)
    assert found is not None and "first epoch level 2" in found.text
    assert did_not_train([2.0, 1.0], None) is None
    assert did_not_train([2.0], None) is None  # one epoch: nothing to compare


def test_still_improving_only_on_the_epoch_cap() -> None:
    found = still_improving(FALLING, "max_epochs")
    assert found is not None and "last 10 epochs" in found.text and "100-epoch cap" in found.text
    assert still_improving(FALLING, "criterion") is None
    assert still_improving(CONVERGED, "max_epochs") is None
    assert still_improving([1.0, 0.5, 0.25], "max_epochs") is None  # too short for two windows


def test_diagnose_combines_the_rules_in_order() -> None:
    assert rules(diagnose([1.0, 2.0, None], "non_finite_loss", MEMORYLESS)) == ["diverged"]
    flat_but_falling = [3.0 - 0.03 * e for e in range(60)]  # ends at 1.23, above the level
    assert rules(diagnose(flat_but_falling, "max_epochs", MEMORYLESS)) == [
        "did not train",
        "still improving at the epoch cap",
    ]
    assert diagnose(CONVERGED, "max_epochs", MEMORYLESS) == []
    assert diagnose([], "max_epochs", MEMORYLESS) == []


def test_reference_levels_of_real_tasks() -> None:
    """MSE tasks: the memoryless predictor's training MSE; cross-entropy tasks: chance."""
    rng = np.random.default_rng(0)
    task = TASKS["count_steps"]
    data = task.generate(rng, "smoke")
    level = reference_level(task, data, task.budget("smoke").loss)
    assert level is not None and level.source == "memoryless" and level.value > 0
    alphabet = TASKS["alphabet_one_char"]
    level = reference_level(alphabet, alphabet.generate(rng, "smoke"), "crossentropy")
    assert level is not None and level.source == "chance"
    assert 0 < level.value <= math.log(26) + 1e-9


def test_projection_stops_a_slow_training_early() -> None:
    stop = Projection(lambda model: False, max_epochs=100, timeout=5.0, spent=0.0)
    start = time.perf_counter()
    with pytest.raises(TooSlow, match=r"incomplete: projected \d+ s to train 100 epochs .* cell timeout of 5 s"):
        for _ in range(100):
            time.sleep(0.1)
            stop(None)
    assert stop.epochs == PROJECT_AFTER and time.perf_counter() - start < 2.0


def test_projection_is_not_fooled_by_one_slow_epoch() -> None:
    """A second epoch that compiles (JAX's, with a cold compilation cache) is paid once, not
    projected onto every epoch to come: 600 epochs of 2 ms fit in 5 s whatever epoch 2 took."""
    stop = Projection(lambda model: False, max_epochs=600, timeout=30.0, spent=0.0)
    for epoch in range(1, 11):
        time.sleep(1.0 if epoch == 2 else 0.002)
        assert not stop(None)
    assert 0.001 < stop.fastest < 0.04


def test_projection_leaves_the_first_epoch_out_of_the_pace() -> None:
    """The first epoch (compilation, warm-up) is not the pace either way: a quick first epoch
    followed by slow ones is projected at the slow ones' pace."""
    stop = Projection(lambda model: False, max_epochs=100, timeout=5.0, spent=0.0)
    with pytest.raises(TooSlow):
        for epoch in range(1, 101):
            time.sleep(0.0 if epoch == 1 else 0.1)
            stop(None)
    assert stop.epochs == PROJECT_AFTER


def test_projection_lets_a_fast_or_finished_training_be() -> None:
    stop = Projection(lambda model: False, max_epochs=20, timeout=60.0, spent=0.0)
    assert not any(stop(None) for _ in range(20))
    late = Projection(lambda model: False, max_epochs=20, timeout=10.0, spent=10.5)  # earlier seeds took it all
    with pytest.raises(TooSlow, match="after 10 s on the earlier seeds"):
        for _ in range(20):
            late(None)
    done = Projection(lambda model: True, max_epochs=10**9, timeout=1e-9, spent=0.0)
    assert done(None) and done(None)  # the criterion met wins over any projection


def test_failing_cell_says_did_not_train(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", "flat=tests.diagnosis_fakes:FlatLoss",
                                      "-k", "flat-count_steps-fit")  # fmt: skip
    out = result.stdout.str()
    assert "flat failed count_steps.fit" in out
    assert "did not train: the last training loss 100 (epoch 100) is still at the memoryless level" in out
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "failed" and rec["diagnosis"][0].startswith("did not train")


def test_failing_cell_says_diverged(pytester: pytest.Pytester) -> None:
    rising = "rising=tests.diagnosis_fakes:RisingLoss"
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", rising, "-k", "rising-count_steps-fit")
    assert "diverged: stopped early at epoch 4 of 100: the last 3 training losses (2, 4, 8)" in result.stdout.str()
    (rec,) = load(results_file)["results"]
    assert [d.split(":")[0] for d in rec["diagnosis"]] == ["diverged", "what would settle it"]
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--no-early-stop", "--adapter", rising,
                                      "-k", "rising-count_steps-fit")  # fmt: skip
    assert "diverged: the training loss rose from 1 (epoch 1)" in result.stdout.str()


def test_slow_cell_is_incomplete_early(pytester: pytest.Pytester) -> None:
    """0.3 s epochs x 100 epochs cannot finish in 5 s: stopped after 3 epochs (~1 s), not at 5 s."""
    start = time.perf_counter()
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--cell-timeout", "5", "--adapter",
                                      "slow=tests.diagnosis_fakes:SlowEpochs", "-k", "slow-count_steps")  # fmt: skip
    took = time.perf_counter() - start
    payload = load(results_file)
    assert validate(payload) == []
    records = payload["results"]
    assert {r["outcome"] for r in records} == {"incomplete"} and len(records) == 5
    assert "projected" in records[0]["reason"] and "stopped after 3 epochs" in records[0]["reason"]
    assert "incomplete cells (not judged: projected past --cell-timeout" in result.stdout.str()
    assert "each record's reason says which): slow-count_steps" in result.stdout.str()
    assert payload["run"]["incomplete"] is None  # the run itself ran every item
    assert result.ret == 0
    assert took < 5.0 + 15.0  # the subprocess's start-up, plus one ~1 s training, far from 5 s x 5 cells


def test_stopped_run_is_marked_incomplete(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", "flat=tests.diagnosis_fakes:FlatLoss",
                                      "-k", "flat-count_steps", "-x")  # fmt: skip
    payload = load(results_file)
    assert payload["run"]["incomplete"].startswith("stopped early")
    assert "INCOMPLETE run: stopped early" in result.stdout.str()


def test_near_gate_hint_within_the_calibration_spread() -> None:
    spread = _spreads()[("standard", "count_steps", "fit")]
    assert 0 < spread < 1
    gate = TASKS["count_steps"].check("fit").threshold
    hint = near_gate("smoke", "count_steps", "fit", gate + spread / 2, gate)
    assert hint is not None and "try --seeds 5" in hint and "(standard tier)" in hint
    assert near_gate("smoke", "count_steps", "fit", gate + 2 * spread, gate) is None
    assert near_gate("smoke", "count_steps", "fit", None, gate) is None
    assert near_gate("smoke", "no_such_task", "fit", gate, gate) is None


def test_sigterm_writes_results_marked_incomplete(tmp_path: Path) -> None:
    """A run ended by SIGTERM (a session that ends) still writes results.json, marked incomplete."""
    report = tmp_path / "report"
    args = [sys.executable, "-m", "pytest", BEHAVIOUR, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
            "--report-dir", str(report), "-p", "no:cacheprovider", "--tier", "smoke", "--cell-timeout", "0", "-v",
            "--adapter", "flat=tests.diagnosis_fakes:FlatLoss", "--adapter", "slow=tests.diagnosis_fakes:SlowEpochs",
            "-k", "flat-count_last-fit or slow-count_steps-fit"]  # fmt: skip
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # the flat row has failed: the slow one trains for 30 s
            if "flat-count_last-fit" in line and "FAILED" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out = proc.stdout.read()
        proc.wait(timeout=60)
    payload = load(report / "results.json")
    assert payload["run"]["incomplete"] == "interrupted before every item ran"
    assert [r["adapter"] for r in payload["results"]] == ["flat"]
    assert "INCOMPLETE run: interrupted" in out
