"""Training time per model, side by side in one run, with JAX's compilation shown apart.

    python scripts/training_time.py [--tier smoke] [--adapters torch-lstm,keras-lstm,flax-lstm] \
        [--tasks count_steps,adding,copy_memory]

For each task and adapter (in turn, one process, one thread each as in the matrix) this trains the
task's model of seed 0 twice to the task's criterion or the tier's budget, as the matrix does: the
same computation both times (training is deterministic), so the difference is the one-off cost of
the first model of a shape: JAX's `jax.jit` compilation of the step function (cached by the
model's graph, so the second model and every other seed of the task reuse it), where Keras traces
its `tf.function` for every model. The last lines give each adapter's median over the tasks of
both, and of their difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.adapters import BUILTINS  # noqa: E402
from rnn_behaviour.tasks import TASKS  # noqa: E402


def fit_seconds(name: str, task_id: str, tier: str, seed: int = 0) -> tuple[float, int]:
    """Wall seconds of one model's `fit` (built outside the clock) and its epochs."""
    task = TASKS[task_id]
    data = task.generate(np.random.default_rng(seed), tier)
    model = BUILTINS[name].load().build(task.spec, seed)
    start = time.perf_counter()
    log = model.fit(data.train, data.valid, task.budget(tier), lambda m: task.stop(m, data))
    return time.perf_counter() - start, log.epochs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="smoke", choices=("smoke", "standard"))
    parser.add_argument("--adapters", default="torch-lstm,keras-lstm,flax-lstm,torch-gru,keras-gru,flax-gru")
    parser.add_argument("--tasks", default="count_steps,adding,copy_memory,parity")
    args = parser.parse_args(argv)
    adapters, tasks = args.adapters.split(","), args.tasks.split(",")
    for given, known, kind in ((adapters, BUILTINS, "adapter"), (tasks, TASKS, "task")):
        unknown = [n for n in given if n not in known]
        if unknown:
            print(f"training_time: unknown {kind} {unknown[0]!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
    first: dict[str, list[float]] = {a: [] for a in adapters}
    second: dict[str, list[float]] = {a: [] for a in adapters}
    print(f"tier {args.tier}: seconds to train seed 0, the first model of its shape / the same again")
    for task_id in tasks:
        for name in adapters:
            (cold, e0), (warm, e1) = (fit_seconds(name, task_id, args.tier) for _ in range(2))
            first[name].append(cold)
            second[name].append(warm)
            print(f"  {task_id:<14} {name:<11} {cold:7.2f} s / {warm:7.2f} s ({e0}/{e1} epochs)", flush=True)
    print("median over the tasks, first model / the same again (and the one-off cost, their difference):")
    for name in adapters:
        a, b = statistics.median(first[name]), statistics.median(second[name])
        print(f"  {name:<11} {a:7.2f} s / {b:7.2f} s ({a - b:+.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
