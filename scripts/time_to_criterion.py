"""Time to criterion vs the seed's fixed-epoch recipe, at the same gate (DESIGN §10, issue 7).

    python scripts/time_to_criterion.py [--adapters torch-lstm,keras-lstm] [--tasks count_last,count_steps]

Seed 000 trains its counting models with `model.fit(batch_size=32, epochs=100)` and Adam's
default learning rate. For each adapter and task this trains the same model on the same data
(seed 0) twice, in turn: the suite's way (its budget, stopping at the task's criterion on the
validation split) and the seed's way (100 epochs, lr 1e-3, batch 32, no early stop; for Keras
literally `model.fit` with the validation data, as the seed does). It prints both wall times, the
`fit` gate's value for both (equal gates: both must pass) and the ratio; the goal is >= 5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.adapters import BUILTINS  # noqa: E402
from rnn_behaviour.tasks import TASKS  # noqa: E402
from rnn_behaviour.tasks.base import Budget  # noqa: E402

SEED_EPOCHS, SEED_BATCH, SEED_LR = 100, 32, 1e-3


def _never(_: Any) -> bool:
    return False


def seed_recipe_seconds(name: str, task_id: str, data: Any) -> tuple[float, Any]:
    """Train as seed 000 does; returns (seconds, model with `predict`)."""
    adapter = BUILTINS[name].load()
    model = adapter.build(TASKS[task_id].spec, 0)
    if adapter.framework == "keras":
        import keras  # the seed's literal recipe: compile + fit, validation data every epoch

        net, n = model.keras_model, model.n_states
        # The model takes the initial state as inputs and returns the final one (no loss on it).
        train, valid = (
            [np.zeros((len(split), model.spec.hidden_size), np.float32)] * n for split in (data.train, data.valid)
        )
        net.compile(loss=["mse"] + [None] * n, optimizer=keras.optimizers.Adam(SEED_LR))
        start = time.perf_counter()
        net.fit([data.train.x, *train], [data.train.y, *train], batch_size=SEED_BATCH, epochs=SEED_EPOCHS, verbose=0,
                validation_data=([data.valid.x, *valid], [data.valid.y, *valid]))  # fmt: skip
        return time.perf_counter() - start, model
    budget = Budget(max_epochs=SEED_EPOCHS, batch_size=SEED_BATCH, learning_rate=SEED_LR)
    log = model.fit(data.train, data.valid, budget, _never)
    return log.seconds, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapters", default="torch-lstm,torch-gru,keras-lstm,keras-gru")
    parser.add_argument("--tasks", default="count_last,count_steps")
    args = parser.parse_args(argv)
    for given, known, kind in ((args.adapters, BUILTINS, "adapter"), (args.tasks, TASKS, "task")):
        unknown = [name for name in given.split(",") if name not in known]
        if unknown:
            parser.error(f"unknown {kind} {unknown[0]!r} (known: {', '.join(known)})")
    rows = []
    for task_id in args.tasks.split(","):
        task = TASKS[task_id]
        data = task.generate(np.random.default_rng(0), "standard")
        for name in args.adapters.split(","):
            model = BUILTINS[name].load().build(task.spec, 0)
            log = model.fit(data.train, data.valid, task.budget("standard"), lambda m, t=task, d=data: t.stop(m, d))
            suite_value = task.evaluate("fit", model, data, "standard").value
            recipe_s, recipe_model = seed_recipe_seconds(name, task_id, data)
            recipe_value = task.evaluate("fit", recipe_model, data, "standard").value
            ttc = log.time_to_criterion_s if log.time_to_criterion_s is not None else log.seconds
            rows.append((task_id, name, log.epochs, ttc, suite_value, recipe_s, recipe_value, recipe_s / ttc))
            print(
                f"{task_id:12s} {name:11s} suite: {log.epochs:3d} epochs {ttc:6.2f} s (fit MSE {suite_value:.4f})  "
                f"seed recipe: {SEED_EPOCHS} epochs {recipe_s:6.2f} s (fit MSE {recipe_value:.4f})  "
                f"ratio {recipe_s / ttc:5.1f}x",
                flush=True,
            )
    ratios = sorted(r[-1] for r in rows)
    print(f"median ratio {ratios[len(ratios) // 2]:.1f}x, lowest {ratios[0]:.1f}x (goal >= 5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
