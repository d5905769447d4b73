"""The single-run recipes tried for `cycle_navigation` (tasks/README.md): a plain torch loop of the
task's model (nn.LSTM or nn.GRU of `--hidden` units -> Linear(5), cross-entropy at every step,
Adam, minibatches of `--bs`), one run per seed, printing `fit` (accuracy at length 40), the
accuracy at length 100 and 500 and the first step whose accuracy falls under 0.99.

    python scripts/probe_cycle.py --seeds 0,5,7,9,18 --clip 1 --lr 4e-2

The seed draws the data and the initial weights together (the matrix draws the weights of a
restart from another seed on the same data), so its figures are per-run rates, not the matrix's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rnn_behaviour.tasks.tracking import CycleNavigation, running_state


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--lr", type=float, default=2e-2)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--bs", type=int, default=32, help="batch size")
    p.add_argument("--epochs", type=int, default=100, help="epoch cap")
    p.add_argument("--ntrain", type=int, default=4000, help="training sequences")
    p.add_argument("--trainlen", type=int, default=40, help="training length")
    p.add_argument("--clip", type=float, default=0.0, help="global gradient norm (0: none)")
    p.add_argument("--extra", type=int, default=0, help="epochs trained on after the first perfect validation")
    p.add_argument("--pgamma", type=float, default=1.0, help="learning-rate decay per epoch in those epochs")
    p.add_argument("--fresh", action="store_true", help="new training data every epoch")
    p.add_argument("--gru", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    moves = np.asarray(CycleNavigation().moves, np.int64)

    def split(rng: np.random.Generator, n: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = rng.integers(0, 3, size=(n, length))
        x = np.eye(3, dtype=np.float32)[tokens]
        return torch.from_numpy(x), torch.from_numpy(running_state(tokens, moves, 5))

    for seed in (int(s) for s in a.seeds.split(",")):
        rng = np.random.default_rng(seed)
        train = split(rng, a.ntrain, a.trainlen)
        valid, test, long = split(rng, 500, 40), split(rng, 500, 40), split(rng, 500, 500)
        torch.manual_seed(seed)
        order_rng = np.random.default_rng(seed)
        rnn = (nn.GRU if a.gru else nn.LSTM)(3, a.hidden, batch_first=True)
        head = nn.Linear(a.hidden, 5)
        params = [*rnn.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=a.lr)

        def logits(x: torch.Tensor) -> torch.Tensor:
            return head(rnn(x)[0])  # noqa: B023

        def accuracy(s: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
            with torch.no_grad():
                return (logits(s[0]).argmax(-1) == s[1]).float().mean(0).numpy()

        start, first, epoch = time.perf_counter(), None, 0
        for epoch in range(1, a.epochs + 1):
            if a.fresh:
                train = split(rng, a.ntrain, a.trainlen)
            for idx in np.array_split(order_rng.permutation(a.ntrain), a.ntrain // a.bs):
                loss = nn.functional.cross_entropy(logits(train[0][idx]).reshape(-1, 5), train[1][idx].reshape(-1))
                opt.zero_grad()
                loss.backward()
                if a.clip:
                    nn.utils.clip_grad_norm_(params, a.clip)
                opt.step()
            if first is None and float(accuracy(valid).mean()) >= 1.0:
                first = epoch
            if first is not None:
                for group in opt.param_groups:
                    group["lr"] *= a.pgamma
                if epoch - first >= a.extra:
                    break
        seconds = time.perf_counter() - start
        steps = accuracy(long)
        by_length = np.cumsum(steps) / np.arange(1, len(steps) + 1)
        fit, at100, at500 = float(accuracy(test).mean()), float(by_length[99]), float(by_length[499])
        below = np.flatnonzero(steps < 0.99)
        print(
            f"seed {seed}: {epoch} epochs, {seconds:.1f} s; fit {fit:.4f}{'' if fit >= 0.99 else ' FAIL'}, "
            f"length 100 {at100:.4f}{'' if at100 >= 0.99 else ' FAIL'}, length 500 {at500:.4f}, "
            f"first step under 0.99: {int(below[0]) + 1 if len(below) else '-'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
