"""Conformance of the backward pass and the carried state's precision of any module, judged
against itself: no reference, no weights in a canonical layout, so it runs on a minGRU, a CfC or a
loop with its own parameter names as much as on nn.LSTM (beside `gradients`, as a second opinion).

`self_gradients` holds the module's autograd (torch) / GradientTape (Keras) to central differences
of its own forward, by directional derivatives (random unit directions, so a probe costs four
forward passes): along x at early and late steps of a 64-step sequence, along each tensor of the
initial state and along each parameter, of the loss Σ dy ⊙ y + Σ dfinal ⊙ final state; and along x
at early steps and at every run of steps where autograd's gradient is exactly 0, of the last
output alone (a gradient cut part-way through the sequence is named so). It runs on the module's
float64 copy (`Differentiable`, adapters/native.py) where the module computes in float64 there,
else in float32 with a gate widened to the module's own finite-difference noise. Each directional
derivative is taken at two step sizes (ε and ε/8) and the closest of those and their Richardson
extrapolation counts: at a kink of a correct module (a ReLU, torch.where) one step may straddle it,
the other seldom; a wrong gradient is wrong at all three. Errors are relative to the largest directional
derivative of the same loss.

`state_precision` names a state returned in a lower precision than the module computes in (its
output's dtype), in float32 and in its float64 copy. This module imports no framework."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.conformance.common import ConformanceCheck, Outcome, Subject, arrays, float32, fmt, rng
from rnn_behaviour.benchmarks.conformance.robustness import gist

INPUT_SIZE, HIDDEN_SIZE, BATCH, LENGTH, SEED = 4, 6, 2, 64, 41
#: Steps probed along x: of the loss on every output and the final state; of the last output only.
STEPS_ALL, STEPS_LAST = (0, LENGTH // 2, LENGTH - 1), (0, 1, LENGTH // 4, LENGTH // 2, LENGTH - 1)
#: The larger finite-difference step (the other is ε/8) in each dtype.
EPS = {"float64": 1e-4, "float32": 1e-2}
#: Largest error of a directional derivative in float64, relative to the largest of its loss:
#: measured worst 9.2e-9 (time-first glue; the rest 3.5e-9 or less) over 17 correct modules x 5
#: seeds, so 1e-6 leaves a margin of 109; the planted defects reach 1 to 2 (benchmarks/README.md,
#: "Gradients without a reference", scripts/selfgrad_calibration.py).
SELF_GRAD_RTOL = 1e-6
#: The same in float32 (a module with no float64 copy): measured worst 9.9e-3 on the correct modules
#: forced to float32, the planted defects 0.5 or more; 5e-2 sits between (5x over, 10x under).
#: The gate is the larger of this and NOISE_K x the probe's own finite-difference spread
#: (|FD(ε) - FD(ε/8)|, relative): the module's own float32 noise.
FLOAT32_RTOL = 5e-2
NOISE_K = 10.0
#: Calibration only (scripts/conformance_tolerances.py): run in float32 even where float64 works.
FORCE_FLOAT32 = False
#: Mantissa bits (with the implicit one) of each floating dtype a state may come back in.
PRECISION = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}


def _map(nest: Any, fn: Callable[[np.ndarray, int], Any], counter: list[int] | None = None) -> Any:
    """The nest with each array leaf `a` replaced by fn(a, k) (k: its index in `arrays` order)."""
    counter = [0] if counter is None else counter
    if isinstance(nest, dict):  # indexed in sorted-key order, rebuilt in the nest's own order
        mapped = {key: _map(nest[key], fn, counter) for key in sorted(nest, key=str)}
        return {key: mapped[key] for key in nest}
    if isinstance(nest, tuple | list):
        return type(nest)(_map(s, fn, counter) for s in nest)
    if isinstance(nest, np.ndarray):
        counter[0] += 1
        return fn(nest, counter[0] - 1)
    return nest


def _floating(a: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def _unit(g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = g.normal(0.0, 1.0, shape)
    return v / max(float(np.linalg.norm(v)), 1e-300)


def _runs(steps: list[int]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for t in steps:
        if runs and t == runs[-1][-1] + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return [(r[0], r[-1]) for r in runs]


def _span(a: int, b: int) -> str:
    return f"step {a}" if a == b else f"steps {a}..{b}"


@dataclass
class Probe:
    """One directional derivative: autograd's, and the central differences at ε and ε/8."""

    label: str
    analytic: float
    fd: tuple[float, float]
    cut: str = ""  # "steps 0..31" when autograd's gradient is exactly 0 along it

    def estimates(self) -> tuple[float, ...]:
        """FD(ε), FD(ε/8) and their Richardson extrapolation (64 FD(ε/8) − FD(ε)) / 63, which cancels
        the ε² truncation term where the forward is smooth (exponential gates, norms: sLSTM)."""
        big, small = self.fd
        return big, small, (64 * small - big) / 63

    def error(self, scale: float) -> float:
        return min(abs(self.analytic - f) for f in self.estimates()) / scale

    def spread(self, scale: float) -> float:
        return abs(self.fd[0] - self.fd[1]) / scale

    def describe(self, scale: float, length: int) -> str:
        fd = min(self.estimates(), key=lambda f: abs(self.analytic - f))
        if self.cut:
            return (
                f"no gradient reaches {self.cut} of {length} from the last output: autograd's d/dx there is exactly "
                f"0, while the module's own forward moves by {fd:.3g} per unit along x at step "
                f"{self.label.split()[-1]} "
                "(finite differences)"
            )
        how = ""
        if self.analytic == 0:
            how = ": autograd gives exactly 0 where the forward moves, no gradient flows there"
        elif fd != 0 and abs(self.analytic / fd + 1) < 0.05:
            how = ": sign flipped"
        elif fd != 0 and self.analytic != 0:
            how = f": {self.analytic / fd:.3g}x the finite differences"
        return (
            f"{self.label}: autograd {self.analytic:.4g} vs finite differences {fd:.4g} ({fmt(self.error(scale))}{how})"
        )


class NotDifferentiable(Exception):
    """The adapter's native module offers no differentiable form: the check is skipped with this."""


def _differentiable(subject: Subject) -> tuple[Any, Any, str, Any]:
    """The native module, its differentiable form in float64 where it computes in float64 there
    (else float32), why not float64 ('' when it is), and a state of the module's own form (from a
    5-step warm-up; None when it declares no state)."""
    native = subject.adapter.native_module(INPUT_SIZE, HIDDEN_SIZE, SEED)  # type: ignore[attr-defined]
    if not hasattr(native, "differentiable"):
        raise NotDifferentiable(
            f"{subject.name}: its native module ({type(native).__name__}) has no differentiable(dtype) "
            "(adapters/native.py): nothing to run its own gradients through"
        )
    g = rng(SEED)
    state = None
    if subject.adapter.capabilities.state:
        state = native.forward(float32(g.normal(0.0, 1.0, (BATCH, 5, INPUT_SIZE))))[1]
    probe = float32(g.normal(0.0, 1.0, (BATCH, 3, INPUT_SIZE)))
    if FORCE_FLOAT32:
        return native, native.differentiable("float32"), "float32 forced (calibration)", state
    try:
        twin = native.differentiable("float64")
        dtype = twin.run(probe, state)[2]
        if dtype == "float64":
            return native, twin, "", state
        why = f"its float64 copy computes in {dtype}"
    except Exception as exc:  # a module that cannot be copied or run in float64
        why = f"its float64 copy raised {gist(exc)}"
    return native, native.differentiable("float32"), why, state


def _probes(diff: Any, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any, g: np.random.Generator,
            steps: tuple[int, ...], params: bool, cuts: bool) -> list[Probe]:  # fmt: skip
    dx, dstate, dparams = diff.gradients(x, state, dy, dfinal)
    eps = EPS[diff.dtype]
    loss = lambda **kw: diff.loss(kw.get("x", x), kw.get("state", state), dy, dfinal, kw.get("shift"))  # noqa: E731

    def central(move: Callable[[float], dict[str, Any]]) -> tuple[float, float]:
        return tuple((loss(**move(e)) - loss(**move(-e))) / (2 * e) for e in (eps, eps / 8))  # type: ignore[return-value]

    out = []
    along: list[tuple[str, list[int], str]] = [(f"d/dx at step {t}", [t], "") for t in steps]
    if cuts:  # the runs of steps that autograd says no gradient reaches, probed at their last step (the
        # nearest the output, where the forward depends on them most)
        zero = [t for t in range(x.shape[1]) if not np.any(dx[:, t])]
        along += [(f"d/dx at step {b}", [b], _span(a, b)) for a, b in _runs(zero)[:2]]
    for label, ts, cut in along:
        v = np.zeros_like(x, np.float64)
        v[:, ts] = _unit(g, v[:, ts].shape)
        out.append(Probe(label, float(np.sum(dx * v)), central(lambda e, v=v: {"x": x + e * v}), cut))
    if state is not None:
        leaves, grads = arrays(state), arrays(dstate)
        for k, (leaf, grad) in enumerate(zip(leaves, grads, strict=True)):
            if not _floating(leaf):
                continue
            v = _unit(g, leaf.shape)
            moved = lambda e, k=k, v=v: {"state": _map(state, lambda a, i: a + e * v if i == k else a)}  # noqa: E731
            name = "d/d initial state" + (f"[{k}]" if len(leaves) > 1 else "")
            out.append(Probe(name, float(np.sum(np.asarray(grad) * v)), central(moved)))
    if params:
        for j, (name, shape, grad) in enumerate(zip(diff.names, diff.shapes, dparams, strict=True)):
            v = _unit(g, shape)
            shift = lambda e, j=j, v=v: {"shift": [e * v if i == j else None for i in range(len(diff.names))]}  # noqa: E731
            out.append(Probe(f"d/d {name}", float(np.sum(np.asarray(grad) * v)), central(shift)))
    return out


def self_gradients(subject: Subject) -> Outcome:
    try:
        _, diff, why64, state = _differentiable(subject)
    except NotDifferentiable as exc:
        return Outcome(0.0, True, str(exc), skipped=str(exc))
    g = rng(SEED + 2)
    x = g.normal(0.0, 1.0, (BATCH, LENGTH, INPUT_SIZE))
    y, final, _, dtypes = diff.run(x[:, :3], state)  # the output's size, the final state's form and dtypes
    # Where the run is not all float64 (float32, or a state that comes back below float64: see
    # state_precision), the finite differences carry that rounding: the gate widens to their spread.
    noisy = diff.dtype != "float64" or any(str(d) != "float64" for d in arrays(dtypes) if str(d) in PRECISION)
    dy = g.normal(0.0, 1.0, (*x.shape[:2], *y.shape[2:]))
    dfinal = None if final is None else _map(final, lambda a, _: g.normal(0.0, 1.0, a.shape) if _floating(a) else a)
    every = _probes(diff, x, state, dy, dfinal, g, STEPS_ALL, params=True, cuts=False)
    last_dy = np.zeros_like(dy)
    last_dy[:, -1] = g.normal(0.0, 1.0, dy[:, -1].shape)
    no_final = None if final is None else _map(final, lambda a, _: np.zeros(a.shape) if _floating(a) else a)
    last = _probes(diff, x, state, last_dy, no_final, g, STEPS_LAST, params=False, cuts=True)
    errors: list[tuple[float, float, str]] = []  # (error, gate, what)
    for probes, loss in ((every, "loss on every output and the final state"), (last, "last output")):
        scale = max([abs(p.analytic) for p in probes] + [abs(f) for p in probes for f in p.fd]) or 1.0
        for p in probes:
            gate = SELF_GRAD_RTOL if diff.dtype == "float64" else FLOAT32_RTOL
            if noisy:
                gate = max(gate, NOISE_K * p.spread(scale))
            text = p.describe(scale, LENGTH) + ("" if p.cut else f" [{loss}]")
            errors.append((p.error(scale), gate, text))
    value = max(e for e, _, _ in errors)
    gate = max(gt for _, gt, _ in errors)
    cut_first = lambda item: (not item[2].startswith("no gradient reaches"), -item[0])  # noqa: E731
    failed = sorted((item for item in errors if item[0] > item[1]), key=cut_first)
    where = "in float64 (its float64 copy)" if not why64 else f"in float32 ({why64}; gate from its own noise)"
    if noisy and not why64:
        where += " (its state comes back below float64 there: gate widened to the finite differences' spread)"
    detail = (
        f"the module's own autograd vs central differences of its own forward {where}, {len(errors)} directional "
        f"derivatives along x at steps {', '.join(map(str, STEPS_ALL))} of {LENGTH}, "
        + ("the initial state, " if state is not None else "")
        + f"each of {len(diff.names)} parameters (loss on every output and the final state), and along x at steps "
        f"{', '.join(map(str, STEPS_LAST))} and every run of steps autograd gives exactly 0 (loss on the last output "
        f"alone): max error {fmt(value)} of the largest derivative"
    )
    if not subject.adapter.capabilities.state:
        notes = getattr(subject.adapter, "capability_notes", None) or {}
        detail += f"; no initial-state part: {notes.get('state') or 'the module declares no state'}"
    if failed:
        detail += ". " + "; ".join(text for _, _, text in failed[:4])
        if len(failed) > 4:
            detail += f"; and {len(failed) - 4} more"
    threshold = None if not noisy else gate
    return Outcome(value, not failed, detail, {"float64": float(not why64)}, threshold=threshold)


def state_precision(subject: Subject) -> Outcome:
    try:
        native, diff64, why64, state = _differentiable(subject)
    except NotDifferentiable as exc:
        return Outcome(0.0, True, str(exc), skipped=str(exc))
    x = float32(rng(SEED + 1).normal(0.0, 1.0, (BATCH, 7, INPUT_SIZE)))
    runs = [("float32", native.differentiable("float32"))] + ([("float64", diff64)] if not why64 else [])
    failures, seen = [], []
    worst = 0
    for label, diff in runs:
        _, _final, y_dtype, dtypes = diff.run(x, state)
        names = [str(d) for d in arrays(dtypes)]
        seen.append(f"{label}: output {y_dtype}, state {', '.join(names) or 'none'}")
        lower = [(k, d) for k, d in enumerate(names) if d in PRECISION and PRECISION[d] < PRECISION.get(y_dtype, 0)]
        for k, d in lower:
            worst = max(worst, PRECISION[y_dtype] - PRECISION[d])
            part = f"state[{k}]" if len(names) > 1 else "the state"
            rel = 2.0 ** -PRECISION[d]
            copy = "" if label == "float32" else " (its float64 copy)"
            failures.append(
                f"{part} comes back in {d} while the module{copy} computes in {y_dtype}: each call rounds the "
                f"carried state to {d} (relative rounding {rel:.2g}), so a stream fed in chunks drifts from the "
                f"computation it runs"
            )
    if why64:
        seen.append(f"no float64 run ({why64})")
    detail = f"the dtype of the final state vs the output's, {'; '.join(seen)}"
    if failures:
        detail += ". " + "; ".join(failures)
    return Outcome(float(worst), not failures, detail, {"lost_mantissa_bits": float(worst)})


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "self_gradients", "max_rel_err_autograd_vs_central_differences", SELF_GRAD_RTOL, ("native_module",),
        "the module's own autograd / GradientTape equals central differences of its own forward (float64 copy "
        "where it has one): directional derivatives along x at early and late steps of 64, the initial state, "
        "each parameter; a gradient cut part-way through the sequence is named",
        self_gradients, device_scaled=False,
    ),
    ConformanceCheck(
        "state_precision", "mantissa_bits_lost_by_the_state", 0.0, ("native_module", "state"),
        "the final state comes back in the precision the module computes in (its output's dtype), in float32 "
        "and in its float64 copy: a state in float16/bfloat16 (or float32 from float64) drifts over long streams",
        state_precision, device_scaled=False,
    ),
)  # fmt: skip
