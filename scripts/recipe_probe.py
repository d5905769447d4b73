"""Try a task's recipe with other budget values before recalibrating it: per adapter and seed, the
task's model trained as the matrix trains one run (the task's data for that seed, `fit` to the
task's criterion or the budget), every check scored, with the epochs and seconds it took.

    python scripts/recipe_probe.py alphabet_varlen --tier smoke --seeds 0-9 \
        --adapters torch-lstm,keras-gru --set batch_size=128 --set learning_rate=3e-2

`--set` replaces a field of the tier's `Budget` (tasks/base.py); without one it is the task's own
recipe, the baseline to compare with in the same run. One run per model (no restarts, no early
stop): a probe, not a calibration; the recipe that wins is calibrated with `scripts/calibrate.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.adapters import BUILTINS  # noqa: E402
from rnn_behaviour.tasks import TASKS  # noqa: E402
from rnn_behaviour.tasks.base import Budget  # noqa: E402


def seeds(given: str) -> list[int]:
    """`0-9` or `0,3,5`."""
    if "-" in given:
        low, high = given.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in given.split(",")]


def budget_with(budget: Budget, settings: list[str]) -> Budget:
    """The budget with each `FIELD=VALUE` of `--set` replacing that field (of the field's type)."""
    changes: dict[str, object] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if not hasattr(budget, name) or not value:
            known = ", ".join(f.name for f in dataclasses.fields(Budget))
            raise SystemExit(f"recipe_probe: --set {setting!r}: expected FIELD=VALUE with a FIELD of {known}")
        current = getattr(budget, name)
        if isinstance(current, bool):
            changes[name] = value.lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            changes[name] = int(value)
        elif isinstance(current, str):
            changes[name] = value
        else:  # a float, or an optional float/int left unset (clip_norm, window)
            changes[name] = None if value.lower() == "none" else (int(value) if name == "window" else float(value))
    return dataclasses.replace(budget, **changes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--tier", default="smoke")
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--adapters", default="torch-lstm,torch-gru")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args(argv)
    task = TASKS[args.task]
    budget = budget_with(task.budget(args.tier), args.set)
    print(f"{task.id} at {args.tier}: {budget}", flush=True)
    for name in args.adapters.split(","):
        adapter = BUILTINS[name].load()
        passed = {c.name: 0 for c in task.checks}
        times, epochs = [], []
        for seed in seeds(args.seeds):
            data = task.generate(np.random.default_rng(seed), args.tier)
            model = adapter.build(task.spec, seed)
            start = time.perf_counter()
            log = model.fit(data.train, data.valid, budget, lambda m, data=data: task.stop(m, data))
            times.append(time.perf_counter() - start)
            epochs.append(log.epochs)
            values = []
            for check in task.checks:
                result = task.evaluate(check.name, model, data, args.tier)
                passed[check.name] += bool(result.passed)
                values.append(f"{check.name} {result.value:.4g}{'' if result.passed else ' FAIL'}")
            print(f"  {name} seed {seed}: {log.epochs} epochs, {times[-1]:.1f} s; {'; '.join(values)}", flush=True)
        n = len(times)
        summary = ", ".join(f"{c} {k}/{n}" for c, k in passed.items())
        print(
            f"{name}: {summary}; epochs median {statistics.median(epochs):g} max {max(epochs)}; "
            f"seconds median {statistics.median(times):.1f} max {max(times):.1f} sum {sum(times):.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
