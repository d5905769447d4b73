"""Conformance in the regimes where real kernels break (issue 14, item 2): forward parity of the
bare layer with the float64 reference at long lengths across power-of-two tile boundaries, at
hidden sizes with a tail beyond a multiple of 8/16/32, at one realistic shape and on a saturated
counter whose cell state grows to tens. `forward_parity` runs T <= 64, H <= 16 with small random
weights (|c| near 1), where a time-tile, hidden-tile or state-clipping bug is invisible.

A failure names the regime, the shape and where the error starts: the first step off, the hidden
units off (e.g. only the tail beyond a multiple of 32), the magnitude of the cell state where it is
off. The tolerance is per regime, `atol + rtol·|reference|` per element (benchmarks/README.md has
the float32 errors measured on the built-ins, `scripts/conformance_tolerances.py`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.reference import LayerAdapter, Weights
from rnn_behaviour.benchmarks.conformance.common import (
    TOL,
    ConformanceCheck,
    Outcome,
    Subject,
    arrays,
    float32,
    fmt,
    random_state,
    rng,
)

#: A saturating case must reach this |c| (LSTM) or have half its final |h| above SATURATED_H.
SATURATED_C, SATURATED_H = 10.0, 0.95


@dataclass(frozen=True)
class Regime:
    name: str
    words: str
    batch: int
    lengths: tuple[int, ...]
    input_size: int
    hidden_sizes: tuple[int, ...]
    atol: float
    rtol: float
    saturating: bool = False

    @property
    def tolerance(self) -> str:
        return f"{TOL(self.atol):g} + {TOL(self.rtol):g}·|reference|"


REGIMES = (
    Regime("long", "long sequences across power-of-two tile boundaries", 2, (255, 256, 257, 1031), 5, (32,),
           1e-5, 1e-5),
    Regime("odd_sizes", "hidden sizes with a tail beyond a multiple of 8/16/32, odd input size", 5, (40,), 7,
           (33, 67), 1e-5, 1e-5),
    Regime("realistic", "a realistic shape", 64, (16,), 32, (256,), 2e-5, 2e-5),
    Regime("saturating", "a saturated counter whose |c| grows to tens, h near ±1 for a GRU/RNN", 4, (48,), 3,
           (16,), 1e-5, 1e-5, saturating=True),
    Regime("long_counter", "the saturated counter run for 1031 steps, |c| to hundreds: rounding accumulates", 4,
           (1031,), 3, (16,), 1e-4, 1e-4, saturating=True),
)  # fmt: skip


@dataclass
class Comparison:
    """One run of the layer at one length beside the reference's: named parts (y, h, c), each
    (layer, reference) arrays."""

    regime: Regime
    batch: int
    length: int
    input_size: int
    hidden_size: int
    parts: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def shape(self) -> str:
        return f"B={self.batch}, T={self.length}, input {self.input_size}, hidden {self.hidden_size}"

    def ratios(self) -> dict[str, np.ndarray]:
        """|layer - reference| / (atol + rtol·|reference|) per element; inf on a NaN or wrong shape."""
        out = {}
        for name, (got, want) in self.parts.items():
            if got.shape != want.shape:
                out[name] = np.full(want.shape, np.inf)
                continue
            err = np.abs(got.astype(np.float64) - want)
            out[name] = np.where(
                np.isnan(err), np.inf, err / (TOL(self.regime.atol) + TOL(self.regime.rtol) * np.abs(want))
            )
        return out

    def max_abs(self) -> float:
        errs = [np.abs(g.astype(np.float64) - w).max() for g, w in self.parts.values() if g.shape == w.shape]
        return float("inf") if len(errs) < len(self.parts) or np.isnan(errs).any() else float(max(errs))


@functools.lru_cache(maxsize=16)
def reference_case(
    cell: str, regime: Regime, hidden_size: int, seed: int, variant: str = ""
) -> tuple[Weights, np.ndarray, Any, list[Any]]:
    """Weights (float32-rounded), input and initial state drawn from `seed`, and the reference's
    (y, final state) at each of the regime's lengths, in one pass: it is causal, so the run to 257
    steps is the run to 256 and one more. Cached: the float64 loop over 1031 steps, or over B=64 x
    H=256, is most of the check's time, and every adapter of a cell runs the same cases."""
    g = rng(seed)
    make = ref.saturating_weights if regime.saturating else ref.random_weights
    weights = ref.rounded(ref.in_form(cell, make(cell, regime.input_size, hidden_size, g), variant))
    x = float32(g.normal(0.0, 1.0, (regime.batch, max(regime.lengths), regime.input_size)))
    state = initial = random_state(cell, regime.batch, hidden_size, g)
    runs, ys, done = [], [], 0
    for length in regime.lengths:
        y, state = ref.forward(cell, x[:, done:length], weights, state, variant=variant)
        ys.append(y)
        done = length
        runs.append((np.concatenate(ys, axis=1), state))
    for a in [*weights.values(), x, *arrays(initial), *(a for y, final in runs for a in (y, *arrays(final)))]:
        a.flags.writeable = False  # shared by every adapter of the cell: the layers get copies
    return weights, x, initial, runs


def saturation(cell: str, final: Any) -> str:
    """How saturated the reference's final state is; raises when the case does not saturate (the
    weights would not test what the regime promises)."""
    if cell == "lstm":
        top = float(np.abs(final[1]).max())
        assert top >= SATURATED_C, f"saturating weights reach max |c| {top:.3g} only (< {SATURATED_C:g})"
        return f"max |c| {top:.3g}"
    share = float(np.mean(np.abs(final) >= SATURATED_H))
    assert share >= 0.5, f"saturating weights leave {1 - share:.0%} of the final |h| below {SATURATED_H}"
    return f"{share:.0%} of final |h| >= {SATURATED_H}"


def compare(layers: LayerAdapter, regime: Regime, hidden_size: int, seed: int) -> tuple[list[Comparison], str]:
    """The layer against the reference at every length of one regime and hidden size, on weights,
    inputs and initial state drawn from `seed`; and the saturation reached ("" when not saturating)."""
    cell, batch, input_size = layers.cell, regime.batch, regime.input_size
    weights, x, state, runs = reference_case(cell, regime, hidden_size, seed, str(getattr(layers, "variant", "")))
    layer = layers.build_layer(input_size, hidden_size, seed)
    layer.import_weights({k: v.copy() for k, v in weights.items()})
    out, reached = [], ""
    for length, (y_ref, final_ref) in zip(regime.lengths, runs, strict=True):
        y, final = layer.forward(x[:, :length].copy(), ref.pack_state(cell, [a.copy() for a in arrays(state)]))
        parts = {"y": (np.asarray(y), y_ref)}
        names = ("h", "c") if cell == "lstm" else ("h",)
        got, want = arrays(final), arrays(final_ref)
        for k, name in enumerate(names):
            parts[f"final {name}"] = (got[k] if k < len(got) else np.zeros(0), want[k])
        out.append(Comparison(regime, batch, length, input_size, hidden_size, parts))
        if regime.saturating:
            reached = saturation(cell, final_ref)
    return out, reached


def units(off: np.ndarray, hidden_size: int) -> str:
    """Which hidden units are off, in words: a tail beyond a multiple of 32/16/8 is named as such."""
    idx = np.flatnonzero(off)
    if len(idx) == hidden_size:
        return "in every hidden unit"
    if idx[0] > 0 and idx[-1] == hidden_size - 1 and len(idx) == hidden_size - idx[0]:
        tile = next((t for t in (32, 16, 8) if idx[0] % t == 0), 0)
        tail = f" (the tail beyond a multiple of {tile})" if tile else ""
        return f"only hidden units {idx[0]}..{idx[-1]} of 0..{hidden_size - 1}{tail}"
    shown = ", ".join(str(i) for i in idx[:6]) + (", ..." if len(idx) > 6 else "")
    return f"in {len(idx)} of {hidden_size} hidden units ({shown})"


def first_units(case: Comparison) -> str:
    """The hidden units off at the first step whose output is off ("" when every output agrees)."""
    y_off = case.ratios()["y"] > 1
    if not y_off.any():
        return ""
    first = int(np.flatnonzero(y_off.any(axis=(0, 2)))[0])
    return units(np.asarray(y_off[:, first].any(axis=0)), case.hidden_size)


def where_off(case: Comparison) -> str:
    """Where the error starts: the first step off and the units off at it (later steps mix every
    unit through the recurrent kernel), and for the cell state the |c| above which it is off."""
    ratios, words = case.ratios(), []
    y_off = ratios["y"] > 1
    if y_off.any():
        first = int(np.flatnonzero(y_off.any(axis=(0, 2)))[0])
        steps = (
            f"the first {first} steps agree, first off at step {first + 1} (1-based)" if first else "off from step 1"
        )
        words.append(f"outputs: {steps}, {first_units(case)} there")
        tile = first & -first
        if tile >= 64:
            words[-1] += f" (after {first} = {first // tile} x {tile} steps: the state carried across a time tile?)"
    else:
        words.append("the outputs agree at every step")
    for name, ratio in ratios.items():
        off = ratio > 1
        if name == "y" or not off.any():
            continue
        text = f"{name}: {units(np.asarray(off.any(axis=0)), case.hidden_size)}"
        size = np.abs(case.parts[name][1])
        if name == "final c" and off.shape == size.shape and float(size[off].min()) > 1.0:
            above = float(size[off].min())
            below = size[~off & (size < above)]
            if below.size:
                text += (
                    f", only where |c| is large: the {below.size} entries with |c| <= {below.max():.3g} agree, the "
                    f"{int(off.sum())} off have |c| >= {above:.3g} (is the cell state clipped, or imprecise when "
                    "large?)"
                )
        words.append(text)
    return "; ".join(words)


def regimes(subject: Subject) -> Outcome:
    layers = subject.layers()
    worst, failures, notes, extras = 0.0, [], [], {}
    for k, regime in enumerate(REGIMES):
        errors, failed = [], []
        for hidden_size in regime.hidden_sizes:
            cases, reached = compare(layers, regime, hidden_size, 100 + k)
            if reached:
                notes.append(f"{regime.name}: {reached}")
            for case in cases:
                ratio = max(float(r.max()) if r.size else 0.0 for r in case.ratios().values())
                worst = max(worst, ratio)
                errors.append(case.max_abs())
                if ratio > 1:
                    failed.append((case, ratio))
        extras[f"{regime.name}_max_abs_err"] = max(errors)
        if failed:
            case, ratio = failed[0]
            also = [
                f"T={c.length}, hidden {c.hidden_size}"
                + (f" ({first_units(c)})" if c.hidden_size != case.hidden_size and first_units(c) else "")
                for c, _ in failed[1:]
            ]
            failures.append(
                f"regime {regime.name} ({regime.words}) at {case.shape}: error {fmt(ratio)}x the tolerance "
                f"({regime.tolerance}), max |adapter - reference| {fmt(case.max_abs())}; {where_off(case)}"
                + (f"; also off at {', '.join(also)}" if also else "")
            )
    detail = "max error / tolerance {} over {} regimes (max |adapter - reference|: {})".format(
        fmt(worst), len(REGIMES), ", ".join(f"{r.name} {fmt(extras[f'{r.name}_max_abs_err'])}" for r in REGIMES)
    )
    detail += "".join(f". {f}" for f in failures) + "".join(f"; {n}" for n in notes)
    return Outcome(worst, worst <= 1.0, detail, extras)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "regimes", "max_err_over_tolerance", 1.0, ("weight_io",),
        "forward parity where kernels break: T = 255/256/257/1031, hidden 33 and 67 (input 7), B=64 x "
        "hidden 256, a saturated counter (|c| to tens; to hundreds over 1031 steps); tolerance atol + "
        "rtol·|reference| per regime",
        regimes,
        device_scaled=False,
    ),
)  # fmt: skip
