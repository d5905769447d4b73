"""Each task proves itself: its oracle passes every check, its null controls fail theirs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from rnn_behaviour.tasks import PENDING, TASKS, TIERS, TaskError, get_task
from rnn_behaviour.tasks.base import Check, CheckNotApplicable

ALL_TASKS = {**TASKS, **PENDING}
TASK_IDS = list(ALL_TASKS)


@pytest.fixture(scope="module", params=TASK_IDS)
def task_and_data(request: pytest.FixtureRequest):
    task = ALL_TASKS[request.param]
    return task, task.generate(np.random.default_rng(0), "smoke")


def test_oracle_passes_every_check(task_and_data) -> None:
    task, data = task_and_data
    oracle = task.oracle(data)
    assert task.stop(oracle, data), "the oracle must meet the early-stopping criterion"
    for check in task.checks:
        result = task.evaluate(check.name, oracle, data, "smoke")
        if check.control:
            assert not result.passed, f"the oracle passes the control check {task.id}.{check.name}"
        else:
            assert result.passed, f"oracle fails {task.id}.{check.name}: {result.value} ({result.detail})"


def _null_cases():
    for task_id in TASK_IDS:
        task = ALL_TASKS[task_id]
        data = task.generate(np.random.default_rng(0), "smoke")
        for name, control in task.nulls(data).items():
            for check in sorted(control.fails):
                yield pytest.param(task_id, name, check, id=f"{task_id}-{name}-{check}")


@pytest.mark.parametrize(("task_id", "null", "check"), list(_null_cases()))
def test_null_control_fails(task_id: str, null: str, check: str) -> None:
    task = ALL_TASKS[task_id]
    data = task.generate(np.random.default_rng(0), "smoke")
    control = task.nulls(data)[null]
    result = task.evaluate(check, control.predictor, data, "smoke")
    assert not result.passed, f"null control {null!r} passes {task_id}.{check} with {result.value}"


def test_every_check_has_a_null_that_fails_it(task_and_data) -> None:
    task, data = task_and_data
    caught = set().union(*(c.fails for c in task.nulls(data).values()))
    assert caught == {c.name for c in task.checks if not c.control}


def test_memoryless_baseline_is_a_number(task_and_data) -> None:
    task, data = task_and_data
    for check in task.checks:
        try:
            baseline = task.baseline(check.name, data, "smoke")
        except CheckNotApplicable:
            continue
        assert math.isfinite(baseline), f"{task.id}.{check.name} baseline is {baseline}"


def test_generate_is_a_pure_function_of_the_generator(task_and_data) -> None:
    task, _ = task_and_data
    before = np.random.get_state()[1].copy()
    a = task.generate(np.random.default_rng(7), "standard")
    b = task.generate(np.random.default_rng(7), "standard")
    c = task.generate(np.random.default_rng(8), "standard")
    assert np.array_equal(np.random.get_state()[1], before), "generate must not touch the global RNG"
    for split in ("train", "valid", "test"):
        assert np.array_equal(getattr(a, split).x, getattr(b, split).x)
        assert np.array_equal(getattr(a, split).y, getattr(b, split).y)
    if "fixed-data" not in task.tags:
        assert not np.array_equal(a.train.x, c.train.x)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_metadata(task_id: str) -> None:
    task = ALL_TASKS[task_id]
    assert isinstance(task.version, int) and task.version >= 1
    doc = type(task).__doc__ or ""
    anchor = re.search(r"seed 0\d\d|et al\. \d{4}|\w+/[\w/]+\.py", doc, re.IGNORECASE)
    assert anchor, "the docstring names the seed experiment, paper or file (repository path) it reproduces"
    assert set(task.budgets) == set(TIERS)
    assert len({c.name for c in task.checks}) == len(task.checks)
    assert all(c.source and c.description for c in task.checks)


def test_unknown_task_tier_and_check_name_the_choices() -> None:
    with pytest.raises(TaskError, match="did you mean count_steps"):
        get_task("count_step")
    task = TASKS["count_steps"]
    with pytest.raises(TaskError, match="no tier 'huge'"):
        task.generate(np.random.default_rng(0), "huge")
    with pytest.raises(TaskError, match=r"no check 'nope'.*carry_state"):
        task.check("nope")


def test_check_direction_and_nan() -> None:
    low = Check("c", "m", 0.5, False, "seed 000", "d")
    high = Check("c", "m", 0.5, True, "seed 000", "d")
    assert low.passes(0.5) and not low.passes(0.51)
    assert high.passes(0.5) and not high.passes(0.49)
    assert not low.passes(float("nan")) and not high.passes(float("inf"))


def test_carry_state_failure_explains_itself() -> None:
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    result = task.evaluate("carry_state", task.nulls(data)["state_reset"].predictor, data, "smoke")
    assert "feeding [1, 1, 1] then" in result.detail and "with the returned state gave" in result.detail


def test_plugin_tasks_and_reports_import_no_framework() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = (
        "import sys, conftest, rnn_behaviour.plugin, rnn_behaviour.cli, rnn_behaviour.tasks, "
        "rnn_behaviour.reports.results, rnn_behaviour.reports.table, rnn_behaviour.benchmarks.matrix, "
        "rnn_behaviour.adapters, examples.verify; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
