"""Harness overhead: the adapters' training loop vs a bare hand-written one (DESIGN §10, issue 7).

    python scripts/overhead.py [--epochs 20] [--repeats 5]

The same model (seed 000's Dense(32) -> LSTM(32) -> Dense(1), every step), the same data
(count_steps, seed 0), batch 32, Adam 3e-3, a fixed number of epochs with no early stop:
- PyTorch: a plain loop written here (permute, slice, forward, MSE, backward, step) vs
  `TorchModel.fit`;
- Keras: a bare `model.fit(batch_size=32)` of the same Keras model vs `KerasModel.fit` (one
  `tf.function` per epoch).
Both sides include their one-time costs (Keras traces its train function once per fit in both).
Runs alternate (bare, adapter, bare, ...) so that the machine's noise falls on both; it prints
the median seconds per epoch of each and the ratio adapter / bare (goal <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.adapters import BUILTINS  # noqa: E402
from rnn_behaviour.tasks import TASKS  # noqa: E402
from rnn_behaviour.tasks.base import Budget  # noqa: E402

TASK = TASKS["count_steps"]


def _never(_: Any) -> bool:
    return False


def bare_torch(data: Any, epochs: int, budget: Budget) -> float:
    BUILTINS["torch-lstm"].load()  # the same torch settings as the adapter (one intra-op thread)
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.ModuleDict({"proj": nn.Linear(1, 32), "rnn": nn.LSTM(32, 32, batch_first=True), "head": nn.Linear(32, 1)})
    opt = torch.optim.Adam(net.parameters(), lr=budget.learning_rate)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x) - budget.batch_size + 1, budget.batch_size):
            idx = order[i : i + budget.batch_size]
            out = net["head"](net["rnn"](net["proj"](x[idx]))[0])
            loss = nn.functional.mse_loss(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def bare_keras(data: Any, epochs: int, budget: Budget) -> float:
    import keras

    model = BUILTINS["keras-lstm"].load().build(TASK.spec, 0)
    net, n = model.keras_model, model.n_states
    states = [np.zeros((len(data.train), 32), np.float32)] * n
    net.compile(loss=["mse"] + [None] * n, optimizer=keras.optimizers.Adam(budget.learning_rate))
    start = time.perf_counter()
    net.fit([data.train.x, *states], [data.train.y, *states], batch_size=budget.batch_size, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def adapter(name: str) -> Callable[[Any, int, Budget], float]:
    def run(data: Any, epochs: int, budget: Budget) -> float:
        model = BUILTINS[name].load().build(TASK.spec, 0)
        return model.fit(data.train, data.valid, budget, _never).seconds

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frameworks", default="torch,keras")
    args = parser.parse_args(argv)
    unknown = [f for f in args.frameworks.split(",") if f not in ("torch", "keras")]
    if unknown:
        parser.error(f"unknown framework {unknown[0]!r} (known: torch, keras)")
    data = TASK.generate(np.random.default_rng(0), "standard")
    budget = Budget(max_epochs=args.epochs, batch_size=32, learning_rate=3e-3)
    pairs = {"torch": (bare_torch, adapter("torch-lstm")), "keras": (bare_keras, adapter("keras-lstm"))}
    for framework in args.frameworks.split(","):
        bare, ours = pairs[framework]
        times: dict[str, list[float]] = {"bare": [], "adapter": []}
        for _ in range(args.repeats):
            times["bare"].append(bare(data, args.epochs, budget) / args.epochs)
            times["adapter"].append(ours(data, args.epochs, budget) / args.epochs)
        b, a = statistics.median(times["bare"]), statistics.median(times["adapter"])
        print(
            f"{framework}: bare {b * 1e3:.1f} ms/epoch, adapter {a * 1e3:.1f} ms/epoch "
            f"(medians of {args.repeats} alternating runs of {args.epochs} epochs); ratio adapter/bare {a / b:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
