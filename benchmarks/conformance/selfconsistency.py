"""Conformance of a module against itself (issue 24, items 2-4): checks that need no reference
weights, so an architecture without nn.LSTM's or Keras's layout (minGRU, a diagonal linear
recurrence, CfC, xLSTM, a loop with its own parameter names) gets them as the built-ins do.

- `long_calls`: single calls of T = 255/256/257, 511/512/513, 1031 and 4096 against the same
  sequence in chunks (none longer than 200 steps) and, over the first 320 steps, one step at a
  time, with the carried state, from a state the module reached itself;
- `random_states`: batch independence, causality and streaming from states the module reached
  itself on random inputs, typical and large (the state's own nest: tuple, list or dict), where
  `batch_independence`, `causality` and `streaming` start from zero (or, on a bare layer, a
  small canonical state);
- `saturation`: inputs scaled up (x10, x100) from a large state, so that gates saturate: the
  whole-sequence call against the module's own step-by-step path and its float64 twin.

They run on the bare layer when the adapter has one, else on the model (`common.Runner`). A gap
over the "same computation" gate gets the float64 twin's opinion (rounding.py), as in
`streaming`. Tolerances: benchmarks/README.md, "Self-consistency". This module imports no
framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.conformance.common import (
    SAME_COMPUTATION_ATOL,
    TOL,
    ConformanceCheck,
    Outcome,
    Runner,
    Subject,
    arrays,
    float32,
    fmt,
    max_abs,
    rng,
)
from rnn_behaviour.benchmarks.conformance.nests import batch_axes, scale_of, state_rows
from rnn_behaviour.benchmarks.conformance.rounding import Forward, RoundingLedger
from rnn_behaviour.tasks.rounding import Rounding

#: The single calls of `long_calls`: around powers of two (a time tile of 256 or 512), 1031 (past
#: four such tiles, not a multiple) and 4096 (eight times the behaviour tasks' longest stream).
LONG_LENGTHS = (255, 256, 257, 511, 512, 513, 1031, 4096)
#: The longest chunk of the reference path, and the prefix run one step at a time.
CHUNK_MAX, STEP_PREFIX = 200, 320
#: How far inputs are scaled for the large states and for saturation (the bare layer's and the
#: models' pre-activations are around 1 at scale 1).
LARGE, SATURATION_SCALES = 10.0, (10.0, 100.0)
#: `saturation`: the float32 whole-sequence output against its float64 twin, of max(1, |twin|).
#: Calibrated in benchmarks/README.md ("Self-consistency").
SATURATION_TWIN_RTOL = 1e-3
#: Added to every seed of the three checks: 0 in the checks, others in the calibration
#: (scripts/selfconsistency_calibration.py).
SEED = 0


def first_step_off(a: np.ndarray, b: np.ndarray, gate: float) -> int | None:
    """The first step (0-based) where outputs (batch, time, ...) differ by more than `gate`."""
    if a.shape != b.shape:
        return 0
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(a.shape[0], a.shape[1], -1)
    off = np.flatnonzero((np.nan_to_num(diff, nan=np.inf) > gate).any(axis=(0, 2)))
    return int(off[0]) if off.size else None


class Probe:
    """The runner of a check and the states the module reaches itself: `reached(batch, scale)`
    runs it on a random input of that scale for 24 steps from zero and returns its final state."""

    def __init__(self, subject: Subject, input_size: int, hidden_size: int, seed: int) -> None:
        self.runner = Runner(subject, input_size, hidden_size, seed)
        self.forward, self.seed = self.runner.forward, seed
        self.stateful = bool(subject.adapter.capabilities.state)
        self._axes: dict[int, Any] = {}

    def x(self, g: np.random.Generator, batch: int, length: int, scale: float = 1.0) -> np.ndarray:
        return float32(scale * g.normal(0.0, 1.0, (batch, length, self.runner.input_size)))

    def reached(self, batch: int, scale: float, g: np.random.Generator) -> Any:
        return self.forward(self.x(g, batch, 24, scale))[1] if self.stateful else None

    def axes(self, state: Any, batch: int) -> Any:
        if batch not in self._axes:
            self._axes[batch] = batch_axes(state, batch, self.reached(1, 1.0, rng(self.seed + 1)))
        return self._axes[batch]

    def gap(self, first: Any, second: Any) -> tuple[float, float]:
        """The absolute gap between two paths' results and the gate it is held to (the absolute
        "same computation" gate, of max(1, |first|))."""
        return max_abs(first, second), TOL.same * scale_of(first)


def judge(probe: Probe, ledger: RoundingLedger, paths: Callable[[Forward], tuple[Any, Any]]) -> tuple[float, str]:
    """Two paths run by the module: their gap of max(1, |first|), and "" when they agree (or differ
    by float32 rounding, by the twin), else what the twin said."""
    first, second = paths(probe.forward)
    gap, gate = probe.gap(first, second)
    if gap <= gate:
        return gap * TOL.same / gate, ""
    if not np.isfinite(gap):  # NaN or inf on one path: never rounding (its "own error" is inf too)
        return float("inf"), "by NaN or inf (a non-finite output or state on one path)"
    opinion = ledger.ask(gap, first, paths)
    return gap * TOL.same / gate, "" if opinion.explains(gap) else f"by {fmt(gap)} (gate {fmt(gate)}); " + (
        opinion.describe(gap)
    )


# --- long_calls --------------------------------------------------------------------------------


def long_calls(subject: Subject) -> Outcome:
    probe = Probe(subject, 3, 8, SEED + 31)
    ledger = RoundingLedger(probe.runner)
    g = rng(SEED + 31)
    batch, total = 2, max(LONG_LENGTHS)
    x = probe.x(g, batch, total)
    state = probe.reached(batch, 1.0, g)
    cuts, at = set(LONG_LENGTHS) | {STEP_PREFIX}, 0
    while at < total:
        at += int(g.integers(1, CHUNK_MAX + 1))
        cuts.add(min(at, total))
    ends = sorted(cuts)

    def chunked(forward: Forward, steps: bool = False) -> tuple[np.ndarray, dict[int, Any]]:
        """The sequence in chunks (one step at a time over the first STEP_PREFIX steps when `steps`)
        with the carried state: the outputs, and the state carried at each of LONG_LENGTHS."""
        outs, carried, start, finals = [], state, 0, {}
        for end in range(1, STEP_PREFIX + 1) if steps else ends:
            out, carried = forward(x[:, start:end], carried)
            outs.append(np.asarray(out))
            finals[end], start = carried, end
        return np.concatenate(outs, axis=1), finals

    def paths(length: int, steps: bool) -> Callable[[Forward], tuple[Any, Any]]:
        def run(forward: Forward) -> tuple[Any, Any]:
            y, final = forward(x[:, :length], state)
            other, finals = chunked(forward, steps)
            if length > STEP_PREFIX and steps:  # the step path covers the first STEP_PREFIX steps only
                return y[:, :STEP_PREFIX], other
            return (y, final), (other[:, :length], finals[length])

        return run

    runs = {False: chunked(probe.forward), True: chunked(probe.forward, steps=True)}
    # The two paths of many calls against each other: where they disagree, the state handed from one
    # call to the next is what goes wrong, not the single call (which then disagrees with both).
    handoff_gap, handoff_gate = probe.gap(runs[False][0][:, :STEP_PREFIX], runs[True][0])
    handoff = None
    if handoff_gap > 10 * handoff_gate:
        off = first_step_off(runs[False][0][:, :STEP_PREFIX], runs[True][0], handoff_gate)
        handoff = (
            f": the chunked and the one-step-at-a-time runs disagree with each other too (by {fmt(handoff_gap)}"
            + (f", first at step {off + 1}" if off is not None else "")
            + "), so the state handed from one call to the next does not continue the sequence (dropped or altered?)"
        )
    worst, failures = 0.0, []
    for length in LONG_LENGTHS:
        whole = probe.forward(x[:, :length], state)
        for steps in (False, True):
            if steps and STEP_PREFIX < length < total:
                continue  # one prefix comparison, on the longest call, is enough
            other, finals = runs[steps]
            if length > STEP_PREFIX and steps:
                first, second = whole[0][:, :STEP_PREFIX], other
            else:
                first, second = whole, (other[:, :length], finals[length])
            gap, gate = probe.gap(first, second)
            worst = max(worst, gap * TOL.same / gate)
            if gap <= gate:
                continue
            opinion = ledger.ask(gap, first, paths(length, steps)) if np.isfinite(gap) else Rounding(why_not="NaN")
            if opinion.explains(gap):
                continue
            path = f"one step at a time (first {STEP_PREFIX} steps)" if steps else "in chunks of 1-200 steps"
            n = min(length, other.shape[1])
            step = first_step_off(whole[0][:, :n], other[:, :n], gate)
            where = f", first off at step {step + 1} (1-based)" if step is not None else ", in the final state only"
            if handoff is not None:
                where += handoff
            elif step is not None and step >= 64:
                tile = step & -step
                where += f": the first {step} steps agree, the single call goes wrong past {step} steps" + (
                    f" ({step // tile} x {tile}: a time tile that drops or garbles the carried state?)"
                    if tile >= 64 else " (a position-dependent computation, a table or buffer that ends there?)"
                )  # fmt: skip
            failures.append(
                f"a single call of T={length} and the same sequence fed {path} with the carried state differ by "
                f"{fmt(gap)} (gate {fmt(gate)}){where}; {opinion.describe(gap)}"
            )
    detail = (
        f"on the {probe.runner.kind}, B={batch}, from a state it reached: single calls of T = "
        f"{'/'.join(map(str, LONG_LENGTHS))} vs the same sequence in {len(ends)} chunks of 1-{CHUNK_MAX} steps (cut at "
        f"each T) and one step at a time over the first {STEP_PREFIX}, with the carried state: worst gap "
        f"{fmt(worst)} (of max(1, |output|))"
    )
    detail += ledger.note() + "".join(f". {f}" for f in failures[:3])
    extras = {"worst_gap": worst} | ledger.extras()
    return Outcome(worst, not failures, detail, extras, threshold=ledger.threshold())


# --- random_states -----------------------------------------------------------------------------

#: The initial states of `random_states`: reached from zero on inputs of each scale.
STATE_KINDS = (("typical", 1.0), ("large", LARGE))
STATE_CASES = 3
REACHED = "states it reached on random inputs x1 and x10, continued on inputs of the same scale (its own nest)"


def random_states(subject: Subject) -> Outcome:
    probe = Probe(subject, 4, 6, SEED + 32)
    ledger = RoundingLedger(probe.runner)
    errors = {"alone": 0.0, "permuted": 0.0, "chunks": 0.0, "before_t": 0.0}
    least_effect, failures, batch = float("inf"), [], 4
    kinds = STATE_KINDS if probe.stateful else (("zero", 0.0),)
    for k, (kind, scale) in enumerate(kinds):
        for case in range(STATE_CASES):
            g = rng(SEED + 32 + 100 * k + case)
            length = int(g.integers(2, 17))
            x = probe.x(g, batch, length, max(scale, 1.0))
            state = probe.reached(batch, scale, g) if probe.stateful else None
            axes = probe.axes(state, batch) if probe.stateful else None
            where = f"from a {kind} state (reached on inputs x{scale:g}, continued on inputs x{scale:g}; B={batch}, "
            where += f"T={length})"
            if not probe.stateful:
                where = f"from the zero state (B={batch}, T={length})"

            def rows(y: Any, final: Any, index: Any) -> Any:
                return (y[index], state_rows(final, axes, index)) if probe.stateful else y[index]

            def alone(i: int) -> Callable[[Forward], tuple[Any, Any]]:
                def paths(forward: Forward) -> tuple[Any, Any]:
                    one = slice(i, i + 1)
                    by_itself = forward(x[one], state_rows(state, axes, one))
                    return rows(*forward(x, state), one), rows(*by_itself, slice(None))

                return paths

            order = g.permutation(batch)

            def permuted(forward: Forward) -> tuple[Any, Any]:
                moved = forward(np.ascontiguousarray(x[order]), state_rows(state, axes, order))
                return rows(*forward(x, state), order), rows(*moved, slice(None))

            for i in range(batch):
                gap, message = judge(probe, ledger, alone(i))
                errors["alone"] = max(errors["alone"], gap)
                if message:
                    failures.append(f"{where}: row {i} of the batch and that row alone (its row of the state) differ "
                                    f"{message}")  # fmt: skip
                    break
            gap, message = judge(probe, ledger, permuted)
            errors["permuted"] = max(errors["permuted"], gap)
            if message:
                failures.append(f"{where}: the batch permuted by {list(order)} (the state's rows too) gives outputs "
                                f"away from the outputs permuted {message}")  # fmt: skip
            t = int(g.integers(0, length))
            changed = x.copy()
            changed[:, t] = float32(max(scale, 1.0) * (g.normal(0.0, 1.0, changed[:, t].shape) + 2.0))
            y, y_changed = probe.forward(x, state)[0], probe.forward(changed, state)[0]
            before, effect = max_abs(y[:, :t], y_changed[:, :t]), max_abs(y[:, t], y_changed[:, t])
            errors["before_t"], least_effect = max(errors["before_t"], before), min(least_effect, effect)
            if before > 0:
                failures.append(f"{where}: changing x_{t} changed earlier outputs by {fmt(before)}")
            if not effect > 0:
                failures.append(f"{where}: changing x_{t} left y_{t} unchanged")
            if not probe.stateful or length < 2:
                continue
            cuts = sorted({int(c) for c in g.integers(1, length, size=min(3, length - 1))})

            def streaming(forward: Forward) -> tuple[Any, Any]:
                pieces, carried = [], state
                for part in np.split(x, cuts, axis=1):
                    out, carried = forward(part, carried)
                    pieces.append(out)
                return forward(x, state), (np.concatenate(pieces, axis=1), carried)

            gap, message = judge(probe, ledger, streaming)
            errors["chunks"] = max(errors["chunks"], gap)
            if message:
                failures.append(f"{where}: fed in chunks cut at {cuts} with the carried state, the outputs and final "
                                f"state differ from the whole sequence's {message}")  # fmt: skip
    worst = max(errors["alone"], errors["permuted"], errors["chunks"])
    detail = (
        f"on the {probe.runner.kind}, {len(kinds) * STATE_CASES} cases from "
        + (REACHED if probe.stateful else "the zero state")
        + f": alone vs in the batch {fmt(errors['alone'])}, permuted {fmt(errors['permuted'])}"
        + (f", chunked vs whole {fmt(errors['chunks'])}" if probe.stateful else "")
        + f" (of max(1, |output|)); change before t {fmt(errors['before_t'])} (must be 0), "
        f"smallest change at t {fmt(least_effect)} (must be > 0)"
    )
    if not probe.stateful:
        notes = getattr(subject.adapter, "capability_notes", {}) or {}
        detail += f"; the zero state only: {notes.get('state') or 'it declares no state (Capabilities.state is off)'}"
    detail += ledger.note() + "".join(f". {f}" for f in failures[:3])
    extras = dict(errors) | {"smallest_effect_at_t": least_effect} | ledger.extras()
    return Outcome(worst, not failures, detail, extras, threshold=ledger.threshold())


# --- saturation --------------------------------------------------------------------------------


def saturation(subject: Subject) -> Outcome:
    probe = Probe(subject, 3, 8, SEED + 33)
    ledger = RoundingLedger(probe.runner)
    twin = probe.runner.float64_twin()
    worst, worst_twin, top, failures, batch, length = 0.0, 0.0, 0.0, [], 3, 40
    for scale in SATURATION_SCALES:
        g = rng(SEED + 33 + int(scale))
        x = probe.x(g, batch, length, scale)
        state = probe.reached(batch, scale, g)

        def paths(forward: Forward) -> tuple[Any, Any]:
            outs, carried = [], state
            for t in range(length):
                out, carried = forward(x[:, t : t + 1], carried)
                outs.append(np.asarray(out))
            return forward(x, state), (np.concatenate(outs, axis=1), carried)

        whole, stepped = paths(probe.forward)
        top = max(top, scale_of(whole))
        gap, message = judge(probe, ledger, paths)
        worst = max(worst, gap)
        here = f"inputs x{scale:g} from a state reached on them (B={batch}, T={length}, max |output| "
        here += f"{scale_of(whole):.3g})"
        if message:
            step = first_step_off(np.asarray(whole[0]), stepped[0], TOL.same * scale_of(whole))
            at = f", first off at step {step + 1} (1-based)" if step is not None else ", in the final state only"
            failures.append(
                f"with {here}, the whole sequence in one call and one step at a time with the carried state differ "
                f"{message}{at}: the whole-sequence path computes otherwise when the gates saturate (a clamp of the "
                "pre-activations or of the state, or a log-space trick whose epsilon or floor is too coarse?)"
            )
        exact = twin(x, state) if callable(twin) else None
        if exact is not None and any(a.dtype != np.float64 for a in arrays(exact)):
            twin = "it does not compute in float64 (its outputs come back in another dtype)"
        if callable(twin):
            rel = max_abs(whole, exact) / scale_of(exact)
            worst_twin = max(worst_twin, rel)
            if not rel <= TOL(SATURATION_TWIN_RTOL):
                failures.append(
                    f"with {here}, the float32 output is {fmt(rel)} of max(1, |output|) away from the same module in "
                    f"float64 (tolerance {TOL(SATURATION_TWIN_RTOL):g}): more than float32 rounding where the gates "
                    "saturate (an exp that overflows, a 1 - sigmoid or log that loses everything in float32?)"
                )
    twin_words = (f"vs its float64 twin {fmt(worst_twin)} (tolerance {TOL(SATURATION_TWIN_RTOL):g})" if callable(twin)
                  else f"no float64 twin ({twin}): the step path only")  # fmt: skip
    if callable(twin) and worst_twin == 0:
        twin_words += " (bit-identical: the twin seems to compute in float32, e.g. a cell without the dtype policy)"
    detail = (
        f"on the {probe.runner.kind}, inputs x{'/x'.join(f'{s:g}' for s in SATURATION_SCALES)} from states reached "
        f"on them (max |output| {top:.3g}): whole vs one step at a time {fmt(worst)} (of max(1, |output|)); "
        f"{twin_words}"
    )
    detail += ledger.note() + "".join(f". {f}" for f in failures[:3])
    extras = {"whole_vs_steps": worst, "vs_float64_twin": worst_twin} | ledger.extras()
    return Outcome(worst, not failures, detail, extras, threshold=ledger.threshold())


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "long_calls", "max_gap_single_call_vs_chunks", SAME_COMPUTATION_ATOL, ("state",),
        "single calls of T = 255/256/257/511/512/513/1031/4096 == the same sequence in chunks and one step at a "
        "time with the carried state, from a state the module reached (of max(1, |output|), or float32 rounding "
        "by the float64 twin)",
        long_calls,
    ),
    ConformanceCheck(
        "random_states", "max_gap_from_reached_states", SAME_COMPUTATION_ATOL, (),
        "batch independence, causality and streaming from states the module reached on inputs x1 and x10, "
        "its own nest (the zero state for a module without state)",
        random_states,
    ),
    ConformanceCheck(
        "saturation", "max_gap_whole_vs_steps_saturated", SAME_COMPUTATION_ATOL, ("state",),
        "inputs x10 and x100 from a large state: the whole sequence == one step at a time with the carried "
        "state, and within 1e-3 of max(1, |output|) of the float64 twin",
        saturation,
    ),
)  # fmt: skip
