"""`rnn-behaviour gpu [--report-dir DIR] [PYTEST ARGS]`: every check that needs a GPU, in one go.

For an environment that has a CUDA build of torch (the user's own: nothing else is installed):
  1. conformance of the PyTorch rows under `--device cuda` (TF32 off): every check on the GPU, and
     `device_parity` (the same module on the CPU and the GPU, forward and backward);
  2. the speed items of the PyTorch rows on the GPU and, side by side, on this machine's CPU;
  3. one behaviour row per PyTorch row (count_steps, smoke tier) trained on the GPU.
Extra pytest arguments (`--adapter torch:mypkg.rnn:my_lstm`, `-k`) go to every step; the rows are
the PyTorch ones (`-k "torch- or <yours>"` picks others). Each step writes its own report under
DIR (default: `gpu` in the report base); the results record the device name, CUDA, cuDNN and the
torch build (`run.accelerator`). Exit 0 when every step passed, 1 when one failed, 4 when this
environment has no GPU for torch (one line naming why), before anything runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnn_behaviour import base_dir, environment
from rnn_behaviour.invoke import pytest_command

USAGE = 4
STEPS = (
    ("conformance", ["benchmarks/test_conformance.py", "--device", "cuda"]),
    ("speed-gpu", ["benchmarks/test_speed.py", "--device", "cuda"]),
    ("speed-cpu", ["benchmarks/test_speed.py", "--device", "cpu"]),
    ("behaviour", ["benchmarks/test_behaviour.py", "--device", "cuda", "--tier", "smoke", "-k", "count_steps"]),
)


def rows(extra: Sequence[str]) -> list[str]:
    """The -k of the torch rows, and of the user's own rows given with --adapter (by their name)."""
    names = ["torch-"]
    for i, arg in enumerate(extra):
        spec = extra[i + 1] if arg == "--adapter" and i + 1 < len(extra) else arg.removeprefix("--adapter=")
        if (arg == "--adapter" or arg.startswith("--adapter=")) and spec:
            names.append(spec.split("=", 1)[0] + "-" if "=" in spec else spec.rsplit(":", 1)[-1] + "-")
    return ["-k", " or ".join(dict.fromkeys(names))]


def speed_table(gpu: Path, cpu: Path) -> list[str]:
    """Medians on the GPU and the CPU side by side, from the two speed runs' results."""
    from rnn_behaviour.reports.results import ResultsError, load

    try:
        runs = [load(gpu / "results.json"), load(cpu / "results.json")]
    except ResultsError as exc:
        return [f"(no speed table: {exc})"]
    medians: list[dict[tuple[str, str], float]] = [
        {(r["adapter"], r["check"]): r["value"] for r in run["results"] if r["task"] == "speed" and r["value"]}
        for run in runs
    ]
    lines = [f"{'row':<14} {'item':<28} {'GPU median':>12} {'CPU median':>12} {'CPU/GPU':>8}"]
    for key in sorted(set(medians[0]) & set(medians[1])):
        on_gpu, on_cpu = medians[0][key], medians[1][key]
        lines.append(
            f"{key[0]:<14} {key[1]:<28} {on_gpu * 1e3:>10.3f}ms {on_cpu * 1e3:>10.3f}ms {on_cpu / on_gpu:>8.2f}"
        )
    return lines


def device_line(run: dict[str, Any]) -> str:
    gpu = run.get("accelerator") or {}
    return ", ".join(f"{k} {v}" for k, v in gpu.items()) or "no accelerator recorded"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="rnn-behaviour gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report-dir", default="gpu", metavar="DIR", help="where each step's report goes")
    args, extra = parser.parse_known_args(argv)
    missing = environment.problem("cuda", [])
    if missing is None and not environment.has("torch"):
        missing = "rnn-behaviour gpu: torch is not installed here; the GPU checks run the PyTorch rows"
    if missing:
        print(missing, file=sys.stderr)
        return USAGE
    out = Path(args.report_dir)
    out = out if out.is_absolute() else base_dir() / out
    failed: list[str] = []
    for name, step in STEPS:
        command = pytest_command([*step, *rows(extra), "-q", "--report-dir", str(out / name), *extra])
        print(f"== {name}: {' '.join(command[3:])}", flush=True)
        start = time.monotonic()
        rc = subprocess.call(command)
        print(f"== {name} took {time.monotonic() - start:.0f} s (exit {rc})", flush=True)
        if rc != 0:
            failed.append(name)
    print("\n".join(speed_table(out / "speed-gpu", out / "speed-cpu")))
    from rnn_behaviour.reports.results import ResultsError, load

    try:
        print(f"device: {device_line(load(out / 'conformance' / 'results.json')['run'])}")
    except ResultsError as exc:
        print(f"device: not recorded ({exc})")
    if failed:
        print(f"rnn-behaviour gpu: failed: {', '.join(failed)} (reports under {out})")
        return 1
    print(f"rnn-behaviour gpu: all passed (reports under {out})")
    return 0
