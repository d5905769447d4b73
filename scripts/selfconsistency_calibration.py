"""The figures behind the self-consistency checks' gates (`long_calls`, `random_states`,
`saturation`; benchmarks/README.md, "Self-consistency"):

    python scripts/selfconsistency_calibration.py [--seeds 5] [--adapter NAME=SPEC ...]

For each adapter (default: the six built-ins, the examples, and the correct non-canonical modules
of tests/) it runs the three checks at `selfconsistency.SEED` = 0 (the checks' own cases) and at
1000, 2000, ... (other weights, inputs and states) and prints, per check, the worst gap of
max(1, |output|) over the seeds, how many gaps the float64 twin explained as rounding (and the
largest gap so explained, with the gate that applied), and for `saturation` the float32 output's
distance from the float64 twin, the figure `SATURATION_TWIN_RTOL` bounds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from rnn_behaviour.adapters import resolve  # noqa: E402
from rnn_behaviour.benchmarks.conformance import Subject, run, selfconsistency  # noqa: E402

DEFAULT = (
    "torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn",
    "lstm_loop=torch:examples.lstm_loop:lstm_loop", "peephole=torch:examples.peephole:peephole",
    "mingru=torch:examples.mingru:mingru", "keras_cell=keras:examples.keras_cell:keras_cell",
    "hand-lstm=torch:tests.handwritten:lstm", "hand-gru=torch:tests.handwritten:gru",
    "dict_state=torch:tests.byo_factories:dict_state", "time_first_glued=torch:tests.byo_factories:time_first_glued",
    "log_scan=torch:tests.planted_rounding:log_scan_mingru",
    "own_mingru=torch:tests.planted_selfconsistency:own_mingru",
    "memory_state=keras:tests.byo_keras_factories:memory_state",
)  # fmt: skip
CHECKS = ("long_calls", "random_states", "saturation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--adapter", action="append", help="NAME=SPEC (repeatable); default: the list above")
    args = parser.parse_args(argv)
    rows, worst = [], {c: (0.0, "") for c in CHECKS}
    twin_worst = (0.0, "")
    for spec in args.adapter or DEFAULT:
        name, _, target = spec.rpartition("=") if "=" in spec else ("", "", spec)
        adapter = resolve(target, name or None).load()
        for check in CHECKS:
            gap = twin = explained = 0.0
            failed = 0
            for k in range(args.seeds):
                selfconsistency.SEED = 1000 * k
                try:
                    outcome = run(check, Subject(adapter.name, adapter))
                finally:
                    selfconsistency.SEED = 0
                failed += not outcome.passed
                if outcome.threshold is not None:  # a gap judged as rounding: its own figure
                    explained = max(explained, outcome.value)
                else:
                    gap = max(gap, outcome.value)
                twin = max(twin, outcome.extras.get("vs_float64_twin", 0.0))
            rows.append((adapter.name, check, f"{gap:.2g}", f"{explained:.2g}" if explained else "-",
                         f"{twin:.2g}" if check == "saturation" else "", f"{failed}/{args.seeds}"))  # fmt: skip
            if gap > worst[check][0]:
                worst[check] = (gap, adapter.name)
            if twin > twin_worst[0]:
                twin_worst = (twin, adapter.name)
        print(*rows[-3:], sep="\n", flush=True)
    headers = ("adapter", "check", "worst gap (absolute gate)", "worst gap explained as rounding",
               "saturation: vs float64 twin", "failed")  # fmt: skip
    print(tabulate(rows, headers=headers))
    gate = selfconsistency.SAME_COMPUTATION_ATOL
    for check, (value, name) in worst.items():
        print(f"{check}: worst gap within the absolute gate {value:.2g} ({name}); gate {gate:g}, margin "
              f"{gate / value if value else float('inf'):.1f}x")  # fmt: skip
    rtol = selfconsistency.SATURATION_TWIN_RTOL
    print(f"saturation vs float64 twin: worst {twin_worst[0]:.2g} ({twin_worst[1]}); tolerance {rtol:g}, margin "
          f"{rtol / twin_worst[0] if twin_worst[0] else float('inf'):.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
