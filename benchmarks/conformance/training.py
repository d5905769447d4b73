"""Conformance of training: determinism of a short training, and a trained model moved into the
other framework and back (gradients are in `gradients`)."""

from __future__ import annotations

import numpy as np

from rnn_behaviour.adapters.reference import CannotHold
from rnn_behaviour.benchmarks.conformance.common import (
    TOL,
    TRAINED_RTOL,
    ConformanceCheck,
    Outcome,
    Subject,
    float32,
    fmt,
    layer_adapter,
    max_abs,
    rng,
)
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split


def determinism(subject: Subject) -> Outcome:
    spec = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)
    g = rng(18)
    x = float32(g.normal(0.0, 1.0, (32, 10, 3)))
    train = Split(x, float32(np.cumsum(x[..., :2], axis=1) * 0.1))
    budget = Budget(max_epochs=2, batch_size=8, learning_rate=1e-2, shuffle=True)
    probe = float32(g.normal(0.0, 1.0, (4, 10, 3)))
    runs = []
    for _ in range(2):
        model = subject.adapter.build(spec, 0)
        untrained = model.predict(probe)[0]
        log = model.fit(train, train, budget, lambda m: False)
        runs.append((np.asarray(log.loss_history, np.float64), model.predict(probe)[0], untrained))
    (loss_a, y_a, untrained), (loss_b, y_b, _) = runs
    diff = max(max_abs(loss_a, loss_b), max_abs(y_a, y_b))
    moved = max_abs(y_a, untrained)
    detail = (
        f"two runs of seed 0, {budget.max_epochs} epochs of {len(train) // budget.batch_size} steps: losses and "
        f"predictions differ by {fmt(diff)} (training moved the predictions by {fmt(moved)})"
    )
    if not moved > 0:
        detail += "; training changed nothing, so the check proves nothing"
    return Outcome(diff, diff == 0 and moved > 0, detail)


def trained_transplant(subject: Subject) -> Outcome:
    assert subject.counterpart is not None
    task, tier = TASKS["count_steps"], "smoke"
    data = task.generate(rng(0), tier)
    mine, other = subject.layers(), layer_adapter("counterpart", subject.counterpart)
    other_name = getattr(subject.counterpart, "name", "counterpart")
    source = subject.adapter.build(task.spec, 0)
    log = source.fit(data.train, data.valid, task.budget(tier), lambda m: task.stop(m, data))
    moved = subject.counterpart.build(task.spec, 1)
    back = subject.adapter.build(task.spec, 2)
    try:
        other.import_model(moved, mine.export_model(source))
        mine.import_model(back, other.export_model(moved))
    except CannotHold as exc:  # a limit of a form (a no_bhn GRU and a trained bh_n), not a defect
        why = f"{subject.name}'s trained weights cannot move into {other_name} and back: {exc}"
        return Outcome(float("nan"), False, why, skipped=why)
    models = {f"in {other_name}": moved, "moved back": back}
    probe = data.probes["long"].x
    y_source = source.predict(probe)[0]
    output_diff = max(max_abs(m.predict(probe)[0], y_source) for m in models.values())
    worst, lines, flipped = 0.0, [], []
    for check in task.checks:
        base = task.evaluate(check.name, source, data, tier)
        cells = [f"{base.value:.4g}"]
        for label, model in models.items():
            result = task.evaluate(check.name, model, data, tier)
            rel = abs(result.value - base.value) / max(1.0, abs(base.value))
            worst = max(worst, rel if np.isfinite(rel) else float("inf"))
            cells.append(f"{result.value:.4g}")
            if result.passed != base.passed:
                flipped.append(f"{check.name} {label}")
        lines.append(f"{check.name} {'/'.join(cells)}")
    detail = (
        f"{subject.name} trained {log.epochs} epochs ({log.stop_reason}), moved into {other_name} and back; "
        f"count_steps scores trained/in {other_name}/back: {', '.join(lines)}; outputs on lengths up to 40 "
        f"differ by {fmt(output_diff)}"
    )
    if flipped:
        detail += f"; verdict changed for {', '.join(flipped)}"
    return Outcome(worst, worst <= TOL(TRAINED_RTOL) and not flipped, detail, {"max_abs_output_diff": output_diff})


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "determinism", "max_abs_diff_between_runs", 0.0, ("training",),
        "two models built and trained for 8 steps with the same seed are bitwise identical",
        determinism,
    ),
    ConformanceCheck(
        "trained_transplant", "max_rel_score_diff", TRAINED_RTOL, ("weight_io", "counterpart", "training"),
        "a model trained on count_steps (smoke budget), moved whole into the counterpart and back, "
        "scores every count_steps check the same up to numerical noise",
        trained_transplant,
    ),
)  # fmt: skip
