"""Conformance in low precision: the bare layer run in float16 and bfloat16 against the float64
reference on the same rounded values (weights, input and initial state rounded to the dtype, then
the reference in float64), held to PyTorch's tolerance classes for a whole recurrent layer.

PyTorch's `torch.testing.assert_close` passes when |actual - expected| <= atol + rtol * |expected|
elementwise; its defaults (torch/testing/_comparison.py, `_DTYPE_PRECISIONS`) are rtol 1e-3 for
float16 and 1.6e-2 for bfloat16 (atol 1e-5): one operation's rounding, about two units of
roundoff. A recurrent layer rounds many times a step and carries its state in the dtype, so the
classes here are those of PyTorch's own module tests, `dtype2prec_DONTUSE` in
torch/testing/_internal/common_utils.py: 1e-2 for float16 and 1e-1 for bfloat16 (atol = rtol),
each about 20 units of roundoff of its dtype (2^-11, 2^-8). test_mkldnn.py's `test_lstm` uses 2e-2
for bfloat16, but between two bfloat16 runs; against float64, PyTorch's own bfloat16 GRU reaches
that (benchmarks/README.md has the figures). Sequences are short (T <= 32), so that the error
does not compound past the class. Two regimes: the random weights of `forward_parity`, and
saturating ones whose LSTM cell state grows to ~18 and whose GRU/RNN pre-activations reach ±10,
where a hand-written kernel's exp overflows in float16.

A dtype the framework (or the layer) cannot run on this device is skipped with the exception's
first line; when neither runs, the whole check is skipped with both reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.custom import first_line, takes_keyword
from rnn_behaviour.adapters.reference import Layer, Weights
from rnn_behaviour.benchmarks.conformance.common import (
    ConformanceCheck,
    Outcome,
    Subject,
    arrays,
    fmt,
    random_state,
    rng,
)

#: atol = rtol of each dtype: PyTorch's `dtype2prec_DONTUSE` (see the module docstring).
CLASSES = {"float16": 1e-2, "bfloat16": 1e-1}
INPUT, HIDDEN, BATCH = 5, 16, 4
LENGTHS = (1, 32)
SEEDS = (0, 1)
REGIMES = ("random", "saturating")


def round_to(a: Any, dtype: str) -> np.ndarray:
    """`a` rounded (to nearest, ties to even) to what `dtype` holds, as float64. NumPy has no
    bfloat16: it is float32 with the low 16 bits of the mantissa rounded off."""
    a32 = np.asarray(a, np.float32)
    if dtype == "float16":
        return a32.astype(np.float16).astype(np.float64)
    bits = a32.view(np.uint32).astype(np.uint64)
    kept = (bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) & np.uint64(0xFFFF0000)
    return kept.astype(np.uint32).view(np.float32).astype(np.float64)


def saturating_weights(cell: str, input_size: int, hidden_size: int, generator: np.random.Generator) -> Weights:
    """LSTM: forget gate near 1 and candidates of a fixed sign per unit, so |c| grows to ~18 in 32
    steps (trained models run with |c| in the tens); GRU/RNN: kernels scaled so pre-activations
    reach ±10 and the gates saturate."""
    weights = ref.random_weights(cell, input_size, hidden_size, generator)
    if cell == "lstm":
        signs = np.where(np.arange(hidden_size) % 2 == 0, 1.0, -1.0)
        weights["b_f"] = weights["b_f"] + 2.0
        weights["b_i"] = weights["b_i"] + 2.0
        weights["b_g"] = 2.5 * signs
        return weights
    return {k: 4.0 * v if k.startswith("W_") else v for k, v in weights.items()}


def _worst(dtype: str, got: Any, expected: Any, names: tuple[str, ...]) -> tuple[float, float, str]:
    """(largest |error| / (atol + rtol |expected|), largest |error|, where the worst element is);
    a NaN or infinite output counts as an infinite error."""
    tol = CLASSES[dtype]
    ratio, err, where = 0.0, 0.0, ""
    for name, a, b in zip(names, arrays(got), arrays(expected), strict=True):
        if a.shape != b.shape:
            return float("inf"), float("inf"), f"{name} has shape {a.shape}, expected {b.shape}"
        if not a.size:
            continue
        diff = np.abs(a.astype(np.float64) - b)
        diff[~np.isfinite(diff)] = np.inf
        r = diff / (tol + tol * np.abs(b))
        err = max(err, float(diff.max()))
        idx = np.unravel_index(int(np.argmax(r)), r.shape)
        if float(r[idx]) > ratio or not where:
            ratio = float(r[idx])
            at = f"step {idx[1] + 1}, row {idx[0]}, unit {idx[2]}" if a.ndim == 3 else f"row {idx[0]}, unit {idx[1]}"
            where = f"{name} at {at} is {a[idx]:.4g} where the reference gives {b[idx]:.4g}"
            if not np.isfinite(a[idx]):
                where += f" (not finite where the reference is: an overflow or 0/0 in {dtype})"
    return ratio, err, where


CASES = [(regime, seed, length) for regime in REGIMES for seed in SEEDS for length in LENGTHS]


def run_dtype(layer: Layer, cell: str, dtype: str) -> tuple[float, float, str, int]:
    """Every case of one dtype: (worst ratio, worst |error|, the failure message or "", cases)."""
    names = ("output h_t", "final h", "final c") if cell == "lstm" else ("output h_t", "final h")
    worst, worst_err, failure, cases = 0.0, 0.0, "", 0
    for regime, seed, length in CASES:
        g = rng(100 * seed + length)
        make = ref.random_weights if regime == "random" else saturating_weights
        drawn = ref.in_form(cell, make(cell, INPUT, HIDDEN, g), str(getattr(layer, "variant", "") or ""))
        weights = {k: round_to(v, dtype) for k, v in drawn.items()}
        layer.import_weights(weights)
        x = round_to(g.normal(0.0, 1.0, (BATCH, length, INPUT)), dtype)
        state = ref.pack_state(cell, [round_to(s, dtype) for s in arrays(random_state(cell, BATCH, HIDDEN, g))])
        y, final = layer.forward(
            x.astype(np.float32), ref.pack_state(cell, [s.astype(np.float32) for s in arrays(state)])
        )
        y_ref, final_ref = ref.forward(cell, x, weights, state, variant=str(getattr(layer, "variant", "") or ""))
        ratio, err, where = _worst(dtype, [y, *arrays(final)], [y_ref, *arrays(final_ref)], names)
        cases += 1
        worst_err = max(worst_err, err)
        if ratio > worst:
            worst = ratio
            if ratio > 1.0:
                failure = (
                    f"{dtype}: {where} (|error| {fmt(err)} > {CLASSES[dtype]:g} + {CLASSES[dtype]:g}·|reference|; "
                    f"{regime} weights, B={BATCH}, T={length}, seed {seed})"
                )
    return worst, worst_err, failure, cases


def low_precision(subject: Subject) -> Outcome:
    cell, ran, skipped, failures = subject.cell, {}, [], []
    extras: dict[str, float] = {}
    if not takes_keyword(subject.layers().build_layer, "dtype"):
        reason = f"{subject.name}: its build_layer() takes no dtype keyword: the bare layer is float32 only"
        return Outcome(float("nan"), True, reason, skipped=reason)
    for dtype in CLASSES:
        try:  # a dtype the framework or module cannot build or run at all is skipped with the error
            layer = subject.layers().build_layer(INPUT, HIDDEN, 0, dtype=dtype)  # type: ignore[call-arg]
            layer.forward(np.zeros((1, 1, INPUT), np.float32))
        except Exception as exc:
            skipped.append(f"{dtype} does not run here ({first_line(exc)})")
            continue
        try:  # once it ran, an error on another case is the layer's, not the dtype's
            result = run_dtype(layer, cell, dtype)
        except Exception as exc:
            ran[dtype] = f"{dtype}: raised {first_line(exc)}"
            extras[f"{dtype}_of_tolerance"] = float("inf")
            failures.append(f"{dtype}: a forward raised {first_line(exc)} after a one-step forward in {dtype} ran")
            continue
        worst, err, failure, cases = result
        policy = getattr(layer, "policy", dtype)
        note = f" under Keras's {policy}" if policy != dtype else ""
        ran[dtype] = (
            f"{dtype}{note}: max |error| {fmt(err)}, {fmt(worst)} of the class (atol = rtol = {CLASSES[dtype]:g}) "
            f"over {cases} cases"
        )
        extras[f"{dtype}_max_abs_err"], extras[f"{dtype}_of_tolerance"] = err, worst
        if failure:
            failures.append(failure)
    if not ran:
        return Outcome(float("nan"), True, "; ".join(skipped), extras, skipped=f"{subject.name}: {'; '.join(skipped)}")
    worst = max(extras[f"{d}_of_tolerance"] for d in ran)
    detail = "; ".join([*ran.values(), *(f"skipped: {s}" for s in skipped)])
    if failures:
        detail += ". FAIL " + "; ".join(failures)
    return Outcome(worst, not failures, detail, extras)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "low_precision", "max_err_over_tolerance", 1.0, ("weight_io",),
        "float16 and bfloat16 layers against the float64 reference on the same rounded weights, input "
        "and state: |error| <= tol + tol·|reference| with PyTorch's classes (tol 1e-2 float16, 1e-1 "
        "bfloat16), random and saturating weights, T <= 32; a dtype the framework cannot run is skipped",
        low_precision,
        device_scaled=False,
    ),
)  # fmt: skip
