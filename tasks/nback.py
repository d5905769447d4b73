"""n-back: a delayed echo over a stream, the memory length a model holds exactly and no longer.

A stream of symbols (8, one-hot) and, at every step, the symbol seen k steps earlier (k = 5 at the
smoke and standard tiers, 10 at full; before step k, a ninth answer: "nothing yet"). It is
bsuite's memory-length experiment (`bsuite/experiments/memory_len`: recall the observation of
k steps ago) asked at every step of a stream, as the delayed-recall tasks of the linear-recurrence
papers are: the state must hold a shift register of exactly k symbols. Three things are checked:
that it fits (`fit`), that the state handed out carries the register across calls, so that a
500-step stream fed in chunks equals the whole stream and stays right (`long_stream`), and that
the symbol k + 1 steps back has left it (`forgets`: changing it does not move any later output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_behaviour.tasks.base import (
    Check,
    CheckResult,
    Data,
    ModelSpec,
    NullControl,
    Predictor,
    Split,
    Task,
    TaskError,
    accuracy,
    feed_in_chunks,
    nan_max,
    tiered,
)

SYMBOLS = 8
NOTHING_YET = SYMBOLS  # the answer before step k
LAGS = {"smoke": 5, "standard": 5, "full": 10}
TRAIN_LENGTH = 40
N_TRAIN, N_VALID, N_TEST = 2000, 200, 500
#: `long_stream`: streams of this many steps, each fed in chunks of random lengths in CHUNKS.
N_STREAMS, STREAM_LENGTH, CHUNKS = 50, 500, (20, 120)
#: `forgets`: positions changed per test sequence (each one its own copy of the batch).
N_NUDGED = 6
CRITERION = 0.995
#: `forgets`' gate: the built-ins' worst over 20 seeds each at standard was 0.085 (torch-lstm; the
#: calibration table), a model that keeps x_{t-k-1} with weight w moves y_t by w (the null: 0.3).
FORGETS_TV = 0.1
#: `long_stream`'s bound on chunked vs whole outputs (probabilities), as count_steps.carry_state's.
CHUNK_ATOL = 1e-4


def lag(tier: str) -> int:
    if tier not in LAGS:
        raise TaskError(f"task 'n_back' has no tier {tier!r}; choose from {sorted(LAGS)}")
    return LAGS[tier]


def echo(symbols: np.ndarray, k: int) -> np.ndarray:
    """The labels: the symbol k steps back, NOTHING_YET before step k."""
    labels = np.full(symbols.shape, NOTHING_YET, np.int64)
    labels[:, k:] = symbols[:, :-k]
    return labels


def stream(rng: np.random.Generator, n: int, length: int, k: int) -> Split:
    symbols = rng.integers(0, SYMBOLS, size=(n, length))
    return Split(np.eye(SYMBOLS, dtype=np.float32)[symbols], echo(symbols, k))


class ShiftRegister:
    """The oracle: the last k symbols (and how many it has seen) as its state; `leak` mixes the
    symbol k + 1 back into each answer (the null that remembers too long), `horizon` drops the
    state handed in (the null that restarts every call)."""

    def __init__(self, k: int, leak: float = 0.0, keep_state: bool = True) -> None:
        self.k, self.leak, self.keep_state = k, leak, keep_state

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        symbols = np.argmax(x, axis=-1)
        n, length = symbols.shape
        if state is None or not self.keep_state:
            history = np.full((n, self.k + 1), -1, np.int64)
        else:
            history = np.asarray(state, np.int64)
        full = np.concatenate([history, symbols], axis=1)  # full[:, j + k + 1] is step j
        eye = np.eye(SYMBOLS + 1, dtype=np.float32)
        steps = np.arange(length)
        back = full[:, steps + 1]  # k steps before step j
        older = full[:, steps]  # k + 1 steps before step j
        probs = eye[np.where(back < 0, NOTHING_YET, back)]
        if self.leak:
            probs = (1 - self.leak) * probs + self.leak * eye[np.where(older < 0, NOTHING_YET, older)]
        return probs, full[:, -(self.k + 1) :].copy()


class SymbolMemoryless:
    """The memoryless baseline: the most frequent answer overall (every answer is as likely)."""

    def __init__(self, train: Split) -> None:
        self.mode = int(np.bincount(np.asarray(train.y).ravel(), minlength=SYMBOLS + 1).argmax())

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return np.broadcast_to(np.eye(SYMBOLS + 1, dtype=np.float32)[self.mode], (*x.shape[:2], SYMBOLS + 1)), None


@dataclass(frozen=True)
class NBack(Task):
    """n-back over a stream of 8 symbols: y_t = x_{t-k}, k = 5 (10 at the full tier); bsuite's
    memory length (Osband et al. 2020, bsuite/experiments/memory_len/memory_len.py) at every step.

    `fit`: per-step accuracy on fresh sequences of the training length; `long_stream`: 500-step
    streams fed in chunks of 20..120 steps with the state handed back: the chunked outputs equal
    the whole stream's (within 1e-4) and are right; `forgets`: changing x_{t-k-1} does not move
    y_t (the total-variation distance of y_t's distribution, averaged over the test sequences and
    the changed positions).
    """

    id: str = "n_back"
    version: int = 1
    tags: tuple[str, ...] = ("literature", "memory length", "state", "streaming")
    spec: ModelSpec = ModelSpec(
        input_size=SYMBOLS, output_size=SYMBOLS + 1, hidden_size=32, return_sequences=True, head="softmax"
    )
    budgets: Any = field(
        default_factory=lambda: tiered(40, 40, 80, batch_size=64, learning_rate=1e-2, loss="crossentropy")
    )
    checks: tuple[Check, ...] = (
        Check("fit", "accuracy", 0.99, True, "bsuite memory_len", "per-step accuracy on fresh length-40 sequences"),
        Check(
            "long_stream",
            "accuracy_chunked_500",
            0.98,
            True,
            "bsuite memory_len",
            "500-step streams fed in chunks with the carried state: equal to the whole stream (max abs diff "
            f"<= {CHUNK_ATOL:g}) and right",
            capability="state contract",
        ),
        Check(
            "forgets",
            "mean_tv_shift_from_x_t_minus_k_minus_1",
            FORGETS_TV,
            False,
            "bsuite memory_len",
            f"changing x_{{t-k-1}} moves y_t's distribution by <= {FORGETS_TV:g} (total variation, mean over "
            "sequences); remembering it with weight w moves it by w",
        ),
    )

    def generate(self, rng: np.random.Generator, tier: str) -> Data:
        k = lag(tier)
        self.budget(tier)
        train, valid, test = (stream(rng, n, TRAIN_LENGTH, k) for n in (N_TRAIN, N_VALID, N_TEST))
        long = stream(rng, N_STREAMS, STREAM_LENGTH, k)
        cuts = []
        for _ in range(N_STREAMS):
            plan, at = [], 0
            while at < STREAM_LENGTH:
                at = min(STREAM_LENGTH, at + int(rng.integers(CHUNKS[0], CHUNKS[1] + 1)))
                plan.append(at)
            cuts.append(plan)
        positions = rng.integers(0, TRAIN_LENGTH - k - 1, size=N_NUDGED)
        return Data(train, valid, test, probes={"long": long, "cuts": cuts, "nudged": positions, "k": k})

    def memoryless(self, data: Data) -> Predictor:
        return SymbolMemoryless(data.train)

    def stop(self, model: Predictor, data: Data) -> bool:
        return accuracy(model.predict(data.valid.x)[0], data.valid.y) >= CRITERION

    def evaluate(self, check: str, model: Predictor, data: Data, tier: str) -> CheckResult:
        gate = self.check(check)
        if check == "fit":
            value = accuracy(model.predict(data.test.x)[0], data.test.y)
            return CheckResult(value, gate.passes(value), f"k = {data.probes['k']}")
        if check == "long_stream":
            return self._long_stream(model, data, gate.threshold)
        if check == "forgets":
            return self._forgets(model, data, gate.threshold)
        raise TaskError(f"task {self.id!r} has no check {check!r}")

    @staticmethod
    def _long_stream(model: Predictor, data: Data, threshold: float) -> CheckResult:
        long = data.probes["long"]
        whole = model.predict(long.x)[0].astype(np.float64)
        diff, right = 0.0, 0
        by_step = np.zeros(STREAM_LENGTH)
        for row, plan in enumerate(data.probes["cuts"]):
            chunked = feed_in_chunks(model, long.x[row : row + 1], plan[:-1])[0].astype(np.float64)
            diff = nan_max(diff, float(np.max(np.abs(chunked - whole[row]))))
            hits = np.argmax(chunked, axis=-1) == long.y[row]
            right += int(hits.sum())
            by_step += hits
        value = right / long.y.size
        passed = value >= threshold and diff <= CHUNK_ATOL
        first_wrong = np.flatnonzero(by_step < N_STREAMS)
        detail = (
            f"chunked vs whole max |diff| {diff:.2g} (<= {CHUNK_ATOL:g}); accuracy over {N_STREAMS} streams of "
            f"{STREAM_LENGTH} steps {value:.4f}"
            + (f"; first step with a miss: {int(first_wrong[0])}" if first_wrong.size else "")
        )
        steps = list(range(0, STREAM_LENGTH, 25))
        curve = {"step": [float(s) for s in steps], "accuracy": [float(by_step[s] / N_STREAMS) for s in steps]}
        return CheckResult(value, passed, detail, {"max_abs_diff_chunked_vs_whole": diff}, curve)

    @staticmethod
    def _forgets(model: Predictor, data: Data, threshold: float) -> CheckResult:
        k = data.probes["k"]
        x = data.test.x
        base = model.predict(x)[0].astype(np.float64)
        symbols = np.argmax(x, axis=-1)
        shifts = []
        for p in data.probes["nudged"]:
            moved_x = x.copy()
            moved_x[:, p] = np.eye(SYMBOLS, dtype=np.float32)[(symbols[:, p] + SYMBOLS // 2) % SYMBOLS]
            moved = model.predict(moved_x)[0].astype(np.float64)
            t = int(p) + k + 1  # the first step for which x_p is k + 1 back: it must have left the register
            shifts.append(float(0.5 * np.abs(moved[:, t] - base[:, t]).sum(-1).mean()))
        value = float(np.mean(shifts))
        detail = f"mean total-variation shift per changed position: {', '.join(f'{s:.3f}' for s in shifts)}"
        return CheckResult(value, value <= threshold, detail)

    def oracle(self, data: Data) -> Predictor:
        return ShiftRegister(data.probes["k"])

    def nulls(self, data: Data) -> dict[str, NullControl]:
        k = data.probes["k"]
        return {
            "memoryless": NullControl(SymbolMemoryless(data.train), frozenset({"fit", "long_stream"})),
            "wrong_lag": NullControl(ShiftRegister(k - 1), frozenset({"fit", "long_stream"})),
            "restarts_every_call": NullControl(ShiftRegister(k, keep_state=False), frozenset({"long_stream"})),
            "remembers_too_long": NullControl(ShiftRegister(k, leak=0.3), frozenset({"forgets"})),
        }
