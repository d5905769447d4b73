"""The measurement behind the rounding-aware "same computation" gates (benchmarks/README.md,
"Rounding"): chunked vs whole (and a row alone vs in its batch) in float32 and in the module's
float64 twin, and the module's own float32 error against that twin.

    python scripts/rounding_calibration.py [--cases 200] [--adapter torch-lstm ...]

For each adapter with a float64 twin (default: the torch built-ins, the hand-written LSTM/GRU and
the planted log-space scan of tests/planted_rounding.py) it runs `--cases` random chunk plans and
batches at the `streaming` and `batch_independence` checks' sizes and prints: the largest float32
gap, the largest float64 gap relative to max(1, |whole|), and the largest ratio of the float32 gap
to the whole run's own float32 error (the figure `ROUNDING_K` bounds), over the cases whose gap
exceeds float32's last digits (> 1e-7).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from rnn_behaviour.adapters import resolve  # noqa: E402
from rnn_behaviour.benchmarks.conformance.common import Runner, Subject, float32, max_abs, take_rows  # noqa: E402

THRESHOLD = 1e-7
DEFAULT = (
    "torch-lstm", "torch-gru", "torch-rnn", "hand-lstm=torch:tests.handwritten:lstm",
    "hand-gru=torch:tests.handwritten:gru", "log-scan=torch:tests.planted_rounding:log_scan_mingru",
)  # fmt: skip


def _chunked(forward: Any, x: np.ndarray, state: Any, cuts: list[int]) -> tuple[np.ndarray, Any]:
    pieces = []
    for part in np.split(x, cuts, axis=1):
        out, state = forward(part, state)
        pieces.append(out)
    return np.concatenate(pieces, axis=1), state


def _alone(forward: Any, x: np.ndarray, state: Any) -> np.ndarray:
    return np.concatenate([forward(x[i : i + 1], take_rows(state, slice(i, i + 1)))[0] for i in range(len(x))])


def measure(spec: str, cases: int) -> list[list[Any]]:
    name, _, target = spec.partition("=")
    adapter = resolve(target or name).load()
    rows = []
    for check, sizes in (("streaming", (3, 8, 11)), ("batch_independence", (4, 6, 13))):
        runner = Runner(Subject(name, adapter), *sizes)
        twin = runner.float64_twin()
        assert not isinstance(twin, str), twin
        g = np.random.default_rng(0)
        gap32 = gap64 = ratio = 0.0
        over = 0
        for _ in range(cases):
            batch, length = int(g.integers(1, 7)), int(g.integers(2, 25))
            x = float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
            state = runner.initial_state(batch, g)
            whole, whole64 = runner.forward(x, state)[0], twin(x, state)[0]
            if check == "streaming":
                cuts = sorted(g.choice(np.arange(1, length), int(g.integers(1, min(5, length - 1) + 1)), replace=False))
                other, other64 = _chunked(runner.forward, x, state, cuts)[0], _chunked(twin, x, state, cuts)[0]
            else:
                other, other64 = _alone(runner.forward, x, state), _alone(twin, x, state)
            gap, own = max_abs(other, whole), max_abs(whole, whole64)
            gap32, gap64 = (
                max(gap32, gap),
                max(gap64, max_abs(other64, whole64) / max(1.0, float(np.abs(whole64).max()))),
            )
            if gap > THRESHOLD:
                over += 1
                ratio = max(ratio, gap / own if own > 0 else float("inf"))
        rows.append([name, check, f"{gap32:.2g}", f"{gap64:.2g}", over, f"{ratio:.3g}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--adapter", nargs="*", default=list(DEFAULT))
    args = parser.parse_args(argv)
    rows = [row for spec in args.adapter for row in measure(spec, args.cases)]
    headers = ["adapter", "check", "gap float32", "gap float64 (rel)", "cases > 1e-7", "max gap32 / own32"]
    print(tabulate(rows, headers=headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
