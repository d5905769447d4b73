"""The early stop and the bounded extension (issue 27): `benchmarks/early_stop.py` on synthetic loss
histories and end to end with fakes; `benchmarks/extension.py` with a slow learner and one that
never learns; the calibration table is the one the repository ships."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnn_behaviour.benchmarks.diagnosis import Level
from rnn_behaviour.benchmarks.early_stop import TABLE, WINDOW, EarlyStop, fate, first_below, milestones
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks import Task
from tests.test_plugin import run_matrix

CHANCE = Level(2.0, "chance")
#: (fraction, stop from epoch, passing runs, latest crossing)
MARKS = [(0.9, 6, 40, 3), (0.5, 10, 40, 5)]
CHANCE_ROW = "chance=tests.diagnosis_fakes:AtChance"


def test_a_run_flat_at_chance_stops_at_its_milestone() -> None:
    flat = [2.1] * 30
    assert fate(flat[:5], CHANCE, MARKS, 30) is None  # before epoch 6: it may still leave
    why = fate(flat[:6], CHANCE, MARKS, 30)
    assert why is not None and why.startswith("did not train: stopped early at epoch 6 of 30")
    assert "never went below 0.9x the chance level 2" in why and "by epoch 3" in why and "--no-early-stop" in why


def test_a_plateau_far_from_the_gate_stops_at_the_later_milestone() -> None:
    plateau = [2.1, 1.7, 1.5, 1.45] + [1.4] * 26  # left 0.9x chance (1.8), stuck above 0.5x (1.0)
    assert fate(plateau[:9], CHANCE, MARKS, 30) is None
    why = fate(plateau[:10], CHANCE, MARKS, 30)
    assert why is not None and why.startswith("plateaued at 1.4: stopped early at epoch 10")


def test_a_run_still_falling_is_never_stopped() -> None:
    slow = [3.5 * 0.97**e for e in range(30)]  # above 0.9x chance until epoch 23, but moving
    assert all(fate(slow[:n], CHANCE, MARKS, 30) is None for n in range(1, 30))


def test_a_run_that_went_below_and_spiked_back_is_not_stopped() -> None:
    spike = [2.1, 0.8, 0.3, 0.1] + [1.9] * 20  # a correct GRU's spike (cycle_navigation, torch-gru)
    assert all(fate(spike[:n], CHANCE, MARKS, 30) is None for n in range(1, len(spike) + 1))


def test_a_diverged_run_stops_without_a_milestone() -> None:
    rising = [1.0, 1.2, 1.6, 2.0, 3.0]
    assert fate(rising[:WINDOW], CHANCE, [], 30) is None
    why = fate(rising, CHANCE, [], 30)
    assert why is not None and why.startswith("diverged: stopped early at epoch 5 of 30")
    assert fate([1.0, 1.6, 0.5, 1.7, 1.8], CHANCE, [], 30) is None  # one epoch under: not the last three


def test_no_milestone_no_level_or_the_cap_never_stop_a_flat_run() -> None:
    flat = [2.1] * 30
    assert fate(flat, CHANCE, [], 31) is None
    assert fate(flat[:10], None, MARKS, 30) is None
    assert fate(flat, CHANCE, MARKS, 30) is None  # the last epoch: the cap stops it anyway


def test_a_slower_rate_of_the_sweep_waits_longer() -> None:
    """--lr-sweep's 0.3x trains a plateau about 3x longer: its milestones wait that much."""
    flat = [2.1] * 30
    slow = EarlyStop(lambda model: False, CHANCE, "smoke", "copy_memory", 30, pace=1 / 0.3)
    recipe = EarlyStop(lambda model: False, CHANCE, "smoke", "copy_memory", 30)
    assert [m[1] for m in slow.marks] == [math.ceil(m[1] / 0.3) for m in recipe.marks] and recipe.marks
    first = min(m[1] for m in recipe.marks)
    assert fate(flat[:first], CHANCE, recipe.marks, 30) is not None
    assert fate(flat[:first], CHANCE, slow.marks, 30) is None
    faster = EarlyStop(lambda model: False, CHANCE, "smoke", "copy_memory", 30, pace=1 / 3)
    assert faster.marks == recipe.marks  # a faster rate is not stopped sooner than the recipe's


def test_first_below() -> None:
    assert first_below([3.0, math.nan, 1.0], 2.0) == 3 and first_below([3.0], 2.0) is None


def test_early_stop_wraps_the_criterion() -> None:
    met = EarlyStop(lambda model: True, CHANCE, "smoke", "no-such-task", 30)
    met.epoch_done(1, 2.1)
    assert met(None) and met.reason is None  # the criterion first
    stop = EarlyStop(lambda model: False, CHANCE, "smoke", "no-such-task", 30)
    stop.marks = MARKS
    for epoch in range(1, 7):
        stop.epoch_done(epoch, 2.1)
        if stop(None):
            break
    assert epoch == 6 and stop.reason is not None


def test_the_shipped_table_is_calibrated() -> None:
    """Every row of tasks/early_stop.csv: K is MARGIN x its latest crossing, below the cap it saves
    epochs from, from at least MIN_RUNS passing runs (scripts/early_stop_calibration.py)."""
    from rnn_behaviour.benchmarks.early_stop import MARGIN, MIN_RUNS
    from rnn_behaviour.tasks import TASKS

    table = milestones()
    assert TABLE.exists() and table
    for (tier, task), marks in table.items():
        assert task in TASKS and tier in TASKS[task].budgets
        for fraction, epoch, runs, latest in marks:
            assert epoch == MARGIN * latest and runs >= MIN_RUNS and 0 < fraction < 1


def _copy_memory_milestone() -> int:
    marks = milestones().get(("smoke", "copy_memory"))
    if not marks:
        pytest.fail("tasks/early_stop.csv has no smoke copy_memory row")
    return max(epoch for fraction, epoch, _, _ in marks if fraction == 0.9)


def test_a_builtin_at_chance_is_stopped_early_and_never_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-ins' budgets are their calibration: stopped at the milestone, judged there."""
    from rnn_behaviour.adapters import resolve
    from rnn_behaviour.benchmarks import matrix as matrix_module
    from rnn_behaviour.benchmarks.matrix import Cell, Matrix
    from rnn_behaviour.tasks import TASKS

    ref = resolve(CHANCE_ROW)
    monkeypatch.setitem(matrix_module.BUILTINS, "chance", ref)  # as if it were one of them
    matrix = Matrix(tier="smoke", seeds=1, adapters={"chance": ref}, tasks=TASKS)
    cell = Cell("chance", "copy_memory", "recall")
    (trained,) = matrix.train(cell)
    assert trained.log.stop_reason == "early_stop" and trained.log.epochs == _copy_memory_milestone() < 30
    assert trained.extension is None and trained.sweep is None  # nor rescued at other rates
    (rec,) = matrix.evaluate(cell, [trained])
    assert rec["diagnosis"][0].startswith(f"did not train: stopped early at epoch {trained.log.epochs} of 30")
    assert rec["diagnosis"][-1].startswith("what would settle it: --lr-sweep")


def test_a_row_of_yours_at_chance_is_stopped_and_told_what_settles_it(pytester: pytest.Pytester) -> None:
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", CHANCE_ROW,
                                      "-k", "chance-copy_memory-recall")  # fmt: skip
    (rec,) = load(results_file)["results"]
    stopped = _copy_memory_milestone()
    assert rec["outcome"] == "failed" and rec["stop_reason"] == "early_stop" and rec["epochs"] == stopped < 30
    assert rec.get("extension") is None  # a run that did not train is not extended: the rate is the suspect
    rescue = rec["lr_sweep"]  # so it is tried at 0.3x and 3x the recipe's rate too, and fails at each
    assert [t["multiple"] for t in rescue["trials"]] == [1.0, 0.3, 3.0] and rescue["multiple"] == 1.0
    assert rescue["why"].startswith(f"at the recipe's rate: did not train: stopped early at epoch {stopped} of 30")
    assert rec["diagnosis"][0].startswith(f"did not train: stopped early at epoch {stopped} of 30")
    assert rec["diagnosis"][1] == (
        "what would settle it: a wider grid of learning rates than the 1x, 0.3x, 3x of the task's already tried, "
        "--lr-sweep 0.03,0.1,0.3,1,3,10"
    )
    assert rec["diagnosis"][2].endswith("--epochs-scale 3 --no-early-stop")
    assert "did not train: stopped early" in result.stdout.str()


def test_no_early_stop_trains_to_the_cap(pytester: pytest.Pytester) -> None:
    _, results_file = run_matrix(pytester, "--tier", "smoke", "--no-early-stop", "--adapter", CHANCE_ROW,
                                 "-k", "chance-copy_memory-recall")  # fmt: skip
    (rec,) = load(results_file)["results"]
    assert rec["stop_reason"] == "max_epochs" and rec["epochs"] == 30
    assert rec["diagnosis"][0].startswith("did not train: the last training loss 100 (epoch 30)")


def test_a_slow_correct_module_gets_its_extension_and_passes(pytester: pytest.Pytester) -> None:
    slow = "slow=tests.diagnosis_fakes:SlowLearner"
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", slow, "-k", "slow-count_steps-fit")
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "passed", result.stdout.str()
    assert rec["extension"]["from_epochs"] == 100 and rec["extension"]["to_epochs"] == rec["epochs"] == 101
    assert rec["stop_reason"] == "criterion" and "while failing fit" in rec["extension"]["why"]


def test_extended_once_then_failed_with_what_settles_it(pytester: pytest.Pytester) -> None:
    _, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", "never=tests.diagnosis_fakes:NeverLearns",
                                 "-k", "never-count_steps-fit")  # fmt: skip
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "failed" and rec["epochs"] == 200 and rec["extension"]["to_epochs"] == 200
    assert rec["diagnosis"][0].startswith("still improving at the epoch cap")
    assert rec["diagnosis"][-1] == (  # its loss still falls, its count does not: not told to train longer
        "more epochs are not what it needs, judged by its extension: from 100 to 200 epochs, test_mse_len20 went "
        "from 33.27 to 33.27 (gate 0.05), no closer to it (25% of the way would have made it inconclusive); "
        "--epochs-scale 4 tries four times every cap if you expect a late turn"
    )


def test_what_an_extension_that_did_not_close_says() -> None:
    """A check its extension moved less than CLOSING of the way fails and says so (the two-layer LSTM's
    cycle_navigation.longer: 0.965 -> 0.948 over 100 -> 200 epochs); a quarter or more is inconclusive."""
    from rnn_behaviour.benchmarks.extension import CLOSING, not_closing, still_closing
    from rnn_behaviour.tasks.base import Check

    longer = Check("longer", "accuracy_len100", 0.99, True, "", "")
    extension = {"from_epochs": 100, "to_epochs": 200, "why": "still improving", "before": {"longer": 0.965}}
    worse = not_closing(longer, extension, 0.948)
    assert worse and "went from 0.965 to 0.948 (gate 0.99), no closer to it" in worse
    assert "from 100 to 200 epochs" in worse and still_closing(longer, extension, 0.948) is None
    little = not_closing(longer, extension, 0.970)  # 20% of the 0.025 gap
    assert little and "20% of the way there" in little and still_closing(longer, extension, 0.970) is None
    enough = 0.965 + CLOSING * 0.025 + 1e-9
    assert not_closing(longer, extension, enough) is None and still_closing(longer, extension, enough)
    assert not_closing(longer, None, 0.948) is None  # not extended
    assert not_closing(longer, {**extension, "before": {}}, 0.948) is None  # passing when it was extended
    assert not_closing(longer, extension, math.nan) is None


def test_epochs_scale_multiplies_every_cap(pytester: pytest.Pytester) -> None:
    _, results_file = run_matrix(pytester, "--tier", "smoke", "--epochs-scale", "0.5", "--no-early-stop", "--adapter",
                                 CHANCE_ROW, "-k", "chance-copy_memory-recall")  # fmt: skip
    (rec,) = load(results_file)["results"]
    assert rec["epochs"] == 15


def test_epochs_scale_is_checked(pytester: pytest.Pytester) -> None:
    result, _ = run_matrix(pytester, "--epochs-scale", "0", "--collect-only")
    assert result.ret == 4 and "--epochs-scale: must be in (0, 100], got 0.0" in result.stderr.str()


def test_a_check_still_closing_on_its_gate_after_the_extension_is_inconclusive(pytester: pytest.Pytester) -> None:
    closing = "closing=tests.diagnosis_fakes:StillClosing"
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", closing,
                                      "-k", "closing-count_steps-fit")  # fmt: skip
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "incomplete" and rec["cell_outcome"] == "incomplete", result.stdout.str()
    before = rec["extension"]["before"]["fit"]
    assert rec["value"] < before and rec["value"] > rec["threshold"]
    assert rec["reason"].startswith("inconclusive: seed 0: test_mse_len20 went from")
    assert "over the extension from 100 to 200 epochs" in rec["reason"] and "--epochs-scale 4" in rec["reason"]
    assert result.ret == 0 and "incomplete cells (not judged" in result.stdout.str()


#: minGRU (examples/mingru.py) on alphabet_stateful at the smoke tier, seed 0: a steady 0.5% an epoch
#: above half of chance (1.61), its criterion met at epoch 61. A 3-epoch window called it flat at 58.
# fmt: off
MINGRU_STATEFUL = [
    4.4756, 3.0504, 2.9659, 2.8887, 2.7969, 2.7196, 2.6547, 2.5983, 2.5489, 2.5051, 2.4655, 2.4291, 2.3954, 2.3637,
    2.3337, 2.3052, 2.2779, 2.2517, 2.2266, 2.2023, 2.179, 2.1565, 2.1348, 2.1139, 2.0938, 2.0744, 2.0556, 2.0376,
    2.0202, 2.0034, 1.9871, 1.9714, 1.9562, 1.9415, 1.9272, 1.9134, 1.8999, 1.8868, 1.8741, 1.8617, 1.8496, 1.8378,
    1.8263, 1.815, 1.804, 1.7932, 1.7827, 1.7724, 1.7623, 1.7524, 1.7427, 1.7333, 1.7239, 1.7148, 1.7058, 1.697,
    1.6882, 1.68, 1.671, 1.6639, 1.6536,
]
# fmt: on


def test_a_slow_steady_fall_is_moving_not_flat() -> None:
    from rnn_behaviour.benchmarks.diagnosis import reference_level
    from rnn_behaviour.tasks import TASKS

    task = TASKS["alphabet_stateful"]
    data = task.generate(np.random.default_rng(0), "smoke")
    level = reference_level(task, data, task.budget("smoke").loss)
    marks = milestones()[("smoke", "alphabet_stateful")]
    assert level is not None and any(level.value * f < MINGRU_STATEFUL[-1] for f, *_ in marks)  # above a milestone
    for n in range(1, len(MINGRU_STATEFUL) + 1):
        assert fate(MINGRU_STATEFUL[:n], level, marks, 150) is None, n


def same_data(task: Task, tier: str, other: str) -> bool:
    """Whether a task's seed-0 data (every split's inputs and targets) are the same at two tiers."""
    a, b = (task.generate(np.random.default_rng(0), t) for t in (tier, other))
    splits = ("train", "valid", "test")
    return all(np.array_equal(getattr(getattr(a, s), f), getattr(getattr(b, s), f)) for s in splits for f in ("x", "y"))


def test_a_tier_whose_budget_is_the_calibrated_ones_takes_its_milestones() -> None:
    """The standard tier's runs of a task whose standard budget is its smoke one are the smoke runs
    (the same data, the same budget): they are judged by the smoke milestones; others by none."""
    from rnn_behaviour.benchmarks.early_stop import marks_for
    from rnn_behaviour.tasks import TASKS

    table, borrowed = milestones(), []
    for name, task in TASKS.items():
        if ("smoke", name) not in table or ("standard", name) in table:
            continue
        same = task.budget("standard") == task.budget("smoke")
        assert marks_for("standard", name) == (table["smoke", name] if same else []), name
        assert marks_for("full", name) == [], name  # a longer budget: other runs
        if same:
            assert same_data(task, "smoke", "standard"), name
            borrowed.append(name)
    assert {"cycle_navigation", "parity", "selective_copy", "dyck1"} <= set(borrowed)
