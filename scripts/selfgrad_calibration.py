"""The measurement behind `self_gradients`' gates (benchmarks/README.md, "Gradients without a
reference"): the check's largest error on correct modules, over several seeds, in float64 (their
float64 copy) and forced to float32; and on the planted defects, for the margin on both sides.

    python scripts/selfgrad_calibration.py [--seeds 5] [--adapter torch-lstm ...]

The seed moves the module's initialisation, the inputs, the initial state, the upstream gradients
and the directions (`selfgrad.SEED`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from rnn_behaviour.adapters import resolve  # noqa: E402
from rnn_behaviour.benchmarks.conformance import Subject, selfgrad  # noqa: E402

CORRECT = (
    "torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn",
    "torch:examples.lstm_loop:lstm_loop", "torch:examples.peephole:peephole", "torch:examples.mingru:mingru",
    "keras:examples.keras_cell:keras_cell", "torch:tests.handwritten:lstm", "torch:tests.handwritten:gru",
    "torch:tests.byo_factories:dict_state", "torch:tests.byo_factories:time_first_glued",
    "torch:tests.byo_factories:stateless", "torch:tests.planted_rounding:log_scan_mingru",
    "torch:tests.planted_selfgrad:slow_mingru",
)  # fmt: skip
PLANTED = (
    "torch:tests.planted_selfgrad:cut_every_32", "torch:tests.planted_selfgrad:wrong_gate_backward",
    "torch:tests.planted_selfgrad:half_state", "keras:tests.planted_selfgrad_keras:flipped_cell",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--adapter", action="append", help="adapter specs (default: the correct modules and planted)")
    args = parser.parse_args()
    specs = args.adapter or [*CORRECT, *PLANTED]
    rows, base = [], selfgrad.SEED
    for spec in specs:
        adapter = resolve(spec).load()
        row: list[object] = [spec.rsplit(":", 1)[-1], "planted" if spec in PLANTED else "correct"]
        start = time.perf_counter()
        for force in (False, True):
            selfgrad.FORCE_FLOAT32 = force
            worst, modes = 0.0, set()
            for k in range(args.seeds):
                selfgrad.SEED = base + k
                outcome = selfgrad.self_gradients(Subject(spec, adapter))
                worst = max(worst, outcome.value)
                modes.add("float64" if outcome.extras.get("float64") else "float32")
            row += [f"{worst:.2g}", "/".join(sorted(modes))]
        selfgrad.FORCE_FLOAT32, selfgrad.SEED = False, base
        rows.append([*row, f"{time.perf_counter() - start:.1f}"])
        print(rows[-1], flush=True)
    headers = ["module", "kind", "max error", "ran in", "forced float32: max error", "ran in", "s"]
    print(tabulate(rows, headers=headers))
    print(f"gates: float64 {selfgrad.SELF_GRAD_RTOL:g}; float32 max({selfgrad.FLOAT32_RTOL:g}, "
          f"{selfgrad.NOISE_K:g} x the probe's finite-difference spread)")  # fmt: skip


if __name__ == "__main__":
    main()
