"""Selective copying: recall the symbols scattered among blanks, in order, and nothing else.

MAD-Lab's selective copying (Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid
Architectures"; the repository athms/mad-lab, `mad/data/instances.py`) scatters a few tokens among
noise and asks for them back in order after the sequence: unlike the copy task, where they are
and how far apart varies per sequence, so the model must select what to keep, not just delay it.
Shrunk here for a CPU: 4 symbols of 8 among 30 slots (60 at the full tier), then a delimiter and
4 recall steps; only the recall steps are scored (tasks.base.UNSCORED elsewhere, as copy_memory).
Positions come from the task's own generator (MAD-Lab draws them from numpy's global one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    UNSCORED,
    Check,
    CheckResult,
    Data,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    tiered,
)
from rnn_behaviour.tasks.longrange import BLANK, DELIMITER, N_CLASSES, N_SYMBOLS, BlankThenGuess, recall_accuracy

SYMBOLS = 4
SLOTS = {"smoke": 30, "standard": 30, "full": 60}
N_TRAIN, N_VALID, N_TEST = 4000, 500, 1000
CRITERION = 0.995


def scattered(rng: np.random.Generator, n: int, slots: int) -> Split:
    """SYMBOLS symbols of 8 at sorted random positions among `slots` blanks, a delimiter, then
    SYMBOLS recall steps whose targets are the symbols in order (every other target UNSCORED)."""
    length = slots + 1 + SYMBOLS
    positions = np.sort(np.argsort(rng.random((n, slots)), axis=1)[:, :SYMBOLS], axis=1)
    given = rng.integers(1, N_SYMBOLS + 1, size=(n, SYMBOLS))
    rows = np.arange(n)[:, None]
    tokens = np.full((n, length), BLANK, np.int64)
    tokens[rows, positions] = given
    tokens[:, slots] = DELIMITER
    target = np.full((n, length), UNSCORED, np.int64)
    target[:, slots + 1 :] = given
    return Split(np.eye(N_CLASSES, dtype=np.float32)[tokens], target)


class Selector:
    """The oracle: the non-blank symbols before the delimiter, in order, at the recall steps. With
    `keep`, the null that remembers only the last `keep` symbols it saw (the rest recalled as
    symbol 1): what a memory that overwrites holds."""

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        tokens = np.argmax(x, axis=-1)
        slots = x.shape[1] - 1 - SYMBOLS
        out = np.zeros(tokens.shape, np.int64)
        for row, seq in enumerate(tokens[:, :slots]):
            seen = [int(t) for t in seq if t != BLANK][:SYMBOLS]
            if self.keep is not None:
                seen = [1] * (len(seen) - self.keep) + seen[len(seen) - self.keep :]
            out[row, slots + 1 : slots + 1 + len(seen)] = seen
        return np.eye(N_CLASSES, dtype=np.float32)[out], None


class InOrderOfValue(Selector):
    """The null that keeps the symbols but not their order: recalled sorted by value."""

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        probs, _ = super().predict(x)
        slots = x.shape[1] - 1 - SYMBOLS
        recalled = np.sort(np.argmax(probs[:, slots + 1 :], axis=-1), axis=1)
        probs[:, slots + 1 :] = np.eye(N_CLASSES, dtype=np.float32)[recalled]
        return probs, None


@dataclass(frozen=True)
class SelectiveCopy(Task):
    """Selective copying (MAD-Lab, Poli et al. 2024): 4 symbols of 8 scattered among 30 slots (60 at
    full), recalled in order after a delimiter.

    `recall`: accuracy on the recalled symbols (chance 1/8), with the accuracy per recall position.
    """

    id: str = "selective_copy"
    version: int = 1
    tags: tuple[str, ...] = ("literature", "memory length")
    spec: ModelSpec = ModelSpec(
        input_size=N_CLASSES, output_size=N_CLASSES, hidden_size=64, return_sequences=True, head="softmax"
    )
    budgets: Any = field(
        default_factory=lambda: tiered(30, 30, 60, batch_size=32, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = (
        Check(
            "recall",
            "recall_accuracy",
            0.99,
            True,
            "MAD-Lab selective copying (Poli et al. 2024)",
            "accuracy on the 4 recalled symbols, in order (chance: 1/8)",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        self.budget(tier)
        return Data.of(scattered(rng, n, SLOTS[tier]) for n in (N_TRAIN, N_VALID, N_TEST))

    def stop(self, model: Predictor, data: Data) -> bool:
        return float(np.mean(recall_accuracy(model, data.valid, SYMBOLS))) >= CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check != "recall":
            raise TaskError(f"task {self.id!r} has no check {check!r}")
        probs = model.predict(data.test.x)[0]
        slots = data.test.x.shape[1] - 1 - SYMBOLS
        right = np.argmax(probs[:, slots + 1 :], axis=-1) == data.test.y[:, slots + 1 :]
        value = float(np.mean(right))
        per_position = ", ".join(f"{v:.3f}" for v in right.mean(axis=0))
        return CheckResult(
            value, gate.passes(value), f"{SYMBOLS} symbols among {slots} slots; by position {per_position}"
        )

    def memoryless(self, data: Data) -> Predictor:
        return BlankThenGuess(SYMBOLS)

    def oracle(self, data: Data) -> Predictor:
        return Selector()

    def nulls(self, data: Data) -> dict[str, NullControl]:
        return {
            "blank_then_guess": NullControl(BlankThenGuess(SYMBOLS), frozenset({"recall"})),
            "keeps_the_last_two": NullControl(Selector(keep=2), frozenset({"recall"})),
            "loses_the_order": NullControl(InOrderOfValue(), frozenset({"recall"})),
        }
