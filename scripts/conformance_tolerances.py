"""How far float32 layers are from the float64 reference in the `regimes` conformance check:
the measurement behind its per-regime tolerances (benchmarks/README.md, "Regimes").

    python scripts/conformance_tolerances.py [--seeds 5] [--adapter torch-lstm ...]

For each adapter (default: the six built-ins and the hand-written LSTM/GRU of tests/handwritten.py)
and each regime of `benchmarks/conformance/regimes.py`, runs the check's cases on `--seeds` draws
of weights, inputs and initial state (plus the check's own seed) and prints a table: the largest
|layer - reference| in the outputs and in the final state, the largest |reference|, and the
largest error / (1 + |reference|), the figure the tolerance `t + t·|reference|` bounds. The last
table is the worst per regime over all adapters, with the margin of the chosen tolerance over it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from rnn_behaviour.adapters import resolve  # noqa: E402
from rnn_behaviour.benchmarks.conformance.common import layer_adapter  # noqa: E402
from rnn_behaviour.benchmarks.conformance.regimes import REGIMES, compare  # noqa: E402

DEFAULT = (
    "torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn",
    "hand-lstm=torch:tests.handwritten:lstm", "hand-gru=torch:tests.handwritten:gru",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--adapter", action="append", help="adapter spec (repeatable); default: " + ", ".join(DEFAULT))
    args = parser.parse_args(argv)
    rows, worst = [], {r.name: 0.0 for r in REGIMES}
    for spec in args.adapter or DEFAULT:
        name, _, target = spec.rpartition("=") if "=" in spec else ("", "", spec)
        adapter = resolve(target, name or None).load()
        layers = layer_adapter(adapter.name, adapter)
        for k, regime in enumerate(REGIMES):
            y_err = state_err = scaled = top = 0.0
            start = time.perf_counter()
            for seed in (*range(args.seeds), 100 + k):
                for hidden in regime.hidden_sizes:
                    for case in compare(layers, regime, hidden, seed)[0]:
                        for part, (got, want) in case.parts.items():
                            err = np.abs(got.astype(np.float64) - want)
                            if part == "y":
                                y_err = max(y_err, float(err.max()))
                            else:
                                state_err = max(state_err, float(err.max()))
                            top = max(top, float(np.abs(want).max()))
                            scaled = max(scaled, float((err / (1.0 + np.abs(want))).max()))
            worst[regime.name] = max(worst[regime.name], scaled)
            seconds = (time.perf_counter() - start) / (args.seeds + 1)
            rows.append([adapter.name, regime.name, y_err, state_err, top, scaled, f"{seconds:.2f}"])
    headers = ["adapter", "regime", "max |err| y", "max |err| state", "max |ref|", "max err/(1+|ref|)", "s/seed"]
    print(tabulate(rows, headers, floatfmt=".2g"))
    print()
    margins = {r.name: f"{min(r.atol, r.rtol) / worst[r.name]:.0f}x" if worst[r.name] else "-" for r in REGIMES}
    table = [[r.name, worst[r.name], r.tolerance, margins[r.name]] for r in REGIMES]
    print(tabulate(table, ["regime", "worst err/(1+|ref|)", "tolerance", "margin"], floatfmt=".2g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
