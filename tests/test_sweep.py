"""`--lr-sweep` (benchmarks/sweep.py): the multiples parsed, the best rate kept by the task's own
validation criterion, and end to end: a model the recipe's rate makes diverge fails without the
sweep ("diverged") and passes with it, its record saying which rate won."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.adapters.base import FitLog
from rnn_behaviour.benchmarks.sweep import DEFAULT_MULTIPLES, describe, parse_multiples, rank, sweep, validation_loss
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.base import Budget
from rnn_behaviour.tasks.counting import RunningSum
from tests.test_plugin import run_matrix


def test_multiples_are_parsed_and_bad_ones_named() -> None:
    assert parse_multiples("0.1, 0.3,1,3") == DEFAULT_MULTIPLES
    for text, says in [("0.1,x", "'x' is not a number"), ("0,1", "'0' is not a positive"), ("1", "at least two"),
                       ("1,1", "names a multiple twice"), ("nan,1", "'nan' is not a positive")]:  # fmt: skip
        with pytest.raises(ValueError, match=says):
            parse_multiples(text)


def test_rank_puts_the_criterion_first_then_the_lowest_validation_loss() -> None:
    trials = [
        {"criterion_met": False, "valid_loss": 0.001},
        {"criterion_met": True, "valid_loss": 0.04},
        {"criterion_met": True, "valid_loss": 0.02},
        {"criterion_met": False, "valid_loss": None},
    ]
    assert sorted(range(4), key=lambda i: rank(trials[i])) == [2, 1, 0, 3]


def test_validation_loss_is_the_budgets_loss_on_the_validation_split() -> None:
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    exact = RunningSum(per_step=True)
    assert validation_loss(exact, data, "mse") == 0.0
    assert validation_loss(RunningSum(per_step=True, horizon=1), data, "mse") > 1.0

    classes = TASKS["alphabet_one_char"].spec.output_size

    class Uniform:
        def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
            return np.full((len(x), classes), 1.0 / classes), None

    alphabet = TASKS["alphabet_one_char"].generate(np.random.default_rng(0), "smoke")
    assert math.isclose(validation_loss(Uniform(), alphabet, "crossentropy"), math.log(classes), rel_tol=1e-9)

    copy = TASKS["copy_memory"]  # UNSCORED targets everywhere but the recall steps: left out, as in training
    copy_data = copy.generate(np.random.default_rng(0), "smoke")
    assert validation_loss(copy.oracle(copy_data), copy_data, "crossentropy") < 1e-9
    assert validation_loss(copy.memoryless(copy_data), copy_data, "crossentropy") > 1.0


class _Trained:
    def __init__(self, model: Any, seconds: float) -> None:
        self.model, self.log = model, FitLog(epochs=3, seconds=seconds, loss_history=[1.0, 0.5, 0.2])


def test_sweep_trains_each_rate_from_the_same_budget_and_keeps_the_best() -> None:
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    budget = task.budget("smoke")
    seen: list[tuple[float, float]] = []

    def train(at: Budget, spent: float) -> _Trained:
        seen.append((at.learning_rate, spent))
        assert at.max_epochs == budget.max_epochs and at.batch_size == budget.batch_size
        exact = math.isclose(at.learning_rate, budget.learning_rate * 0.3)
        return _Trained(RunningSum(per_step=True, horizon=None if exact else 1), 2.0)

    best, summary = sweep(task, data, budget, (0.1, 0.3, 1.0), train)
    assert [rate for rate, _ in seen] == pytest.approx([budget.learning_rate * m for m in (0.1, 0.3, 1.0)])
    assert [spent for _, spent in seen] == [0.0, 2.0, 4.0]  # the time projection counts the earlier rates
    assert best.model.horizon is None and summary["multiple"] == 0.3 and summary["seconds"] == 6.0
    assert [t["criterion_met"] for t in summary["trials"]] == [False, True, False]
    assert describe(summary).startswith(f"lr sweep: kept x0.3 = {budget.learning_rate * 0.3:.3g} of the recipe's")


def test_a_rate_the_model_cannot_use_is_rescued_and_the_sweep_finds_one_it_can(pytester: pytest.Pytester) -> None:
    """A row of yours that diverges at the recipe's rate is tried at 0.3x and 3x it (the rescue,
    benchmarks/extension.py) and passes at 0.3x; --lr-sweep's grid finds 0.1x."""
    fake = "rated=tests.diagnosis_fakes:RateSensitive"
    result, results_file = run_matrix(pytester, "--tier", "smoke", "--adapter", fake, "-k", "rated-count_steps-fit")
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "passed", result.stdout.str()
    rescue = rec["lr_sweep"]
    assert [t["multiple"] for t in rescue["trials"]] == [1.0, 0.3, 3.0] and rescue["multiple"] == 0.3
    assert rescue["why"].startswith("at the recipe's rate: diverged: stopped early at epoch 4 of 100")
    assert [t["stop_reason"] for t in rescue["trials"]] == ["early_stop", "criterion", "early_stop"]

    result, results_file = run_matrix(
        pytester, "--tier", "smoke", "--adapter", fake, "-k", "rated-count_steps-fit", "--lr-sweep"
    )
    (rec,) = load(results_file)["results"]
    assert rec["outcome"] == "passed", result.stdout.str()
    sweep_record = rec["lr_sweep"]
    assert sweep_record["multiple"] == 0.1 and sweep_record["recipe_learning_rate"] == 3e-3
    assert [t["criterion_met"] for t in sweep_record["trials"]] == [True, True, False, False]
    assert [t["stop_reason"] for t in sweep_record["trials"]] == ["criterion"] * 2 + ["early_stop"] * 2


def test_a_bad_sweep_is_one_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = run_matrix(pytester, "--tier", "smoke", "--lr-sweep", "0.1,fast", "-k", "nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--lr-sweep 0.1,fast: 'fast' is not a number" in result.stderr.str()
