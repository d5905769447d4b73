"""Per-epoch accuracy of `cycle_navigation` runs through a built-in row's own adapter (tasks/README.md,
"why the torch LSTM/GRU runs are long"): for each seed and run, the validation accuracy at length 40
(the stopping criterion's) and the `select` accuracy at length 100 (what `keep` reads) after every
epoch, then the run's `fit` and `longer`. Run k of seed s starts from seed s + 1000 k, as the
matrix's restarts do; the task's smoke budget is used as it is.

    python scripts/cycle_curves.py torch-gru --seeds 0,4,5,7,9 [--runs 0,1] [--out curves.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RNN_BEHAVIOUR_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rnn_behaviour.adapters import BUILTINS
from rnn_behaviour.benchmarks.restarts import RESTART_SEED
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.tracking import per_step_accuracy

KEEP_AT = 0.995


def trace(adapter: Any, task: Any, data: Any, seed: int, tier: str) -> tuple[Any, Any, list[tuple[float, ...]]]:
    """One run from `seed`: its model, its log and, per epoch, (validation accuracy at length 40,
    `select` accuracy at length 100, seconds so far)."""
    select, curve, start = data.probes["select"], [], time.perf_counter()

    def stop(m: Any) -> bool:
        valid = float(np.mean(per_step_accuracy(m.predict(data.valid.x)[0], data.valid.y)))
        chosen = float(np.mean(per_step_accuracy(m.predict(select.x)[0], select.y)))
        curve.append((round(valid, 5), round(chosen, 5), round(time.perf_counter() - start, 2)))
        return bool(task.stop(m, data))

    model = adapter.build(task.spec, seed)
    log = model.fit(data.train, data.valid, task.budget(tier), stop)
    return model, log, curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row", choices=sorted(BUILTINS), help="a built-in row that trains (not an engine row)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--runs", default="0", help="comma-separated run numbers k (seed + 1000 k)")
    p.add_argument("--out", type=Path, help="write every curve to this JSON file")
    args = p.parse_args()
    task, tier = TASKS["cycle_navigation"], "smoke"
    adapter = BUILTINS[args.row].load()
    out = []
    for seed in (int(s) for s in args.seeds.split(",")):
        data = task.generate(np.random.default_rng(seed), tier)
        for run in (int(r) for r in args.runs.split(",")):
            model, log, curve = trace(adapter, task, data, seed + run * RESTART_SEED, tier)
            fit, longer = (task.evaluate(c, model, data, tier).value for c in ("fit", "longer"))
            first = next((i + 1 for i, c in enumerate(curve) if c[1] >= KEEP_AT), None)
            print(f"{args.row} seed {seed} run {run}: {log.epochs} epochs, select >= {KEEP_AT} first after epoch "
                  f"{first}, fit {fit:.4f}, longer {longer:.4f}", flush=True)  # fmt: skip
            out.append({"row": args.row, "seed": seed, "run": run, "epochs": log.epochs, "fit": fit,
                        "longer": longer, "curve": curve})  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
