"""Speed benchmarks (DESIGN §10), framework-free: what is timed, at which shapes, and the FLOP
counts behind the rates. `benchmarks/test_speed.py` times each item with pytest-benchmark.

Three operations per adapter at batch B = 32 and T = 100 steps, input size = hidden size H:
- `forward`: `predict(x)` over the whole sequence, from the zero state;
- `train_step`: one optimizer step (forward, backward, Adam) on one batch of the whole sequence,
  through the model's `make_train_step` (Keras: a traced `tf.function`, never eager);
- `stream_step`: `predict(x_t, state)` on one step with the carried state, the latency an online
  user pays per step.
FLOPs of the recurrent layer's forward (DESIGN §10): LSTM 8·H²·N·T, GRU 6·H²·N·T, tanh RNN
2·H²·N·T (N = batch); a train step counts 3× the forward, a stream step T = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_behaviour.reports.cells import SPEED_TASK
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split

#: Bumped when what is timed changes, so `compare` does not set old figures against new ones.
VERSION = 1
TASK = SPEED_TASK
BATCH, STEPS = 32, 100
OPS = ("forward", "train_step", "stream_step")
#: Hidden sizes per tier; the smoke tier times the small shape only.
HIDDEN = {"smoke": (32,), "standard": (32, 256), "full": (32, 256)}
#: Timed rounds per item (after one warm-up round, which traces the Keras functions).
ROUNDS = {"smoke": 10, "standard": 30, "full": 100}
FLOP_FACTOR = {"lstm": 8, "gru": 6, "rnn": 2}
BUDGET = Budget(max_epochs=1, batch_size=BATCH, learning_rate=1e-3)


@dataclass(frozen=True)
class SpeedItem:
    """One pytest item: an adapter, an operation and a hidden size."""

    adapter: str
    op: str
    hidden: int

    @property
    def id(self) -> str:
        return f"{self.adapter}-{self.op}-H{self.hidden}"

    @property
    def check(self) -> str:
        return f"{self.op}-B{BATCH}-T{STEPS}-H{self.hidden}"

    def spec(self) -> ModelSpec:
        return ModelSpec(input_size=self.hidden, output_size=1, hidden_size=self.hidden, return_sequences=True)

    def batch(self, seed: int = 0) -> Split:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((BATCH, STEPS, self.hidden)).astype(np.float32)
        return Split(x, rng.standard_normal((BATCH, STEPS, 1)).astype(np.float32))


def items(adapters: list[str], tier: str) -> list[SpeedItem]:
    return [SpeedItem(a, op, h) for a in adapters for h in HIDDEN[tier] for op in OPS]


def flops(cell: str | None, op: str, hidden: int) -> float | None:
    """FLOPs of one call of `op`, or None for an adapter that names no standard cell."""
    if cell not in FLOP_FACTOR:
        return None
    steps = 1 if op == "stream_step" else STEPS
    forward = FLOP_FACTOR[cell] * hidden**2 * BATCH * steps
    return 3.0 * forward if op == "train_step" else float(forward)
