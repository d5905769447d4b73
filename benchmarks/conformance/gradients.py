"""Conformance of the backward pass: every gradient against the float64 reference's analytic BPTT
(`adapters/backprop.py`), and the gradient of a sequence cut into chunks equal to the whole one's.
Both need `Capabilities.weight_io` (a bare layer with `gradients`, weights in the canonical layout).

The loss is Σ dy ⊙ y + Σ dfinal ⊙ final state with random dy on every step and random dfinal on
h (and c): an all-ones dy could not tell a backward that reads the upstream gradient of step t at
another step, or of row b at another row, and no gradient would come from the final state, where
truncated BPTT across chunks enters. Errors are relative to each gradient's scale:
max |layer - reference| / max(1, max |reference|)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.reference import Layer, Weights
from rnn_behaviour.benchmarks.conformance.common import (
    TOL,
    ConformanceCheck,
    Mismatch,
    Outcome,
    Subject,
    arrays,
    explore,
    float32,
    fmt,
    load,
    max_abs,
    random_state,
    rng,
    steer,
)

#: Largest error, relative to each gradient's scale, of a layer's gradient against the reference's:
#: measured worst 5.2e-7 on the built-ins, 24 cases each (benchmarks/README.md "Gradients").
GRADIENT_RTOL = 1e-5
#: The same for chunked against whole (the layer against itself, summed in another order): measured
#: worst 6.5e-7 over 41 chunk plans each.
CHUNKED_RTOL = 1e-5
#: (batch, time, input, hidden, seed): one step, a typical case, odd sizes over more steps.
GRADIENT_CASES = ((1, 1, 3, 4, 16), (4, 16, 5, 12, 17), (3, 33, 4, 7, 18))

Grads = dict[str, np.ndarray]


def _named(cell: str, dx: np.ndarray, dw: Mapping[str, np.ndarray], dstate: Any) -> Grads:
    """Every gradient by the name a message gives it: x, the canonical keys, initial h (and c)."""
    out: Grads = {"x": np.asarray(dx), **{k: np.asarray(v) for k, v in dw.items()}}
    for name, part in zip(("initial h", "initial c"), arrays(dstate), strict=False):
        out[name] = part
    return out


def _errors(got: Grads, want: Grads) -> dict[str, float]:
    """max |got - want| / max(1, max |want|) per gradient; inf where one is missing or misshapen."""
    out = {}
    for name, expected in want.items():
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        out[name] = max_abs(got[name], expected) / scale if name in got else float("inf")
    return out


def _steps(got: np.ndarray, want: np.ndarray, tolerance: float) -> str:
    """The time steps (axis 1) where d/dx is off, as ranges: `steps 0..3, 7`."""
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    bad = [t for t in range(want.shape[1]) if max_abs(got[:, t], want[:, t]) / scale > tolerance]
    runs: list[list[int]] = []
    for t in bad:
        if runs and t == runs[-1][-1] + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    text = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)
    return f"step{'s' if len(bad) > 1 else ''} {text}" if bad else "no single step"


def _off(
    got: Grads, want: Grads, errors: Mapping[str, float], tolerance: float, steps: int, against: str = "reference"
) -> str:
    """Which gradients are off and by how much, the 4 worst first: `d/d bh_f off by 0.3 (...)`."""
    lines = []
    off = sorted((n for n, e in errors.items() if e > tolerance), key=lambda n: -errors[n])
    for name in off[:4]:
        if name not in got:
            lines.append(f"no gradient for {name}")
            continue
        where = f"d/dx at {_steps(got['x'], want['x'], tolerance)} of {steps}" if name == "x" else f"d/d {name}"
        scale = float(np.abs(want[name]).max(initial=0.0))
        lines.append(f"{where} off by {fmt(max_abs(got[name], want[name]))} (largest |{against}| {fmt(scale)})")
    more = off[4:]
    if more:
        lines.append(f"and {len(more)} more ({', '.join(more)})")
    return "; ".join(lines)


def _diagnose(
    subject: Subject, layer: Layer, case: tuple[Any, ...], got: Grads, reference: Callable[..., Grads], tol: float
) -> str:
    """The likely mistake: the reference's gradients with that mistake made are the layer's."""
    x, weights, state, dy, dfinal = case
    recurrent = [k for k in got if k.startswith("bh_")]
    if recurrent and all(not np.any(got[k]) for k in recurrent):
        return "bh gets no gradient: the recurrent bias (PyTorch's bias_hh) takes no part in the computation"
    states = [k for k in got if k.startswith("initial ")]
    if states and all(not np.any(got[k]) for k in states):
        return "no gradient reaches the initial state: it is cut from the graph (e.g. detached) on entry"
    y, final = layer.forward(x, state)
    y_ref, final_ref = ref.forward(subject.cell, x, weights, state, variant=subject.variant)
    if max(max_abs(y, y_ref), max_abs(final, final_ref)) > 1e-4:
        return "the forward pass already differs from the reference (see forward_parity): every gradient follows"

    def matches(**changed: Any) -> bool:
        mistaken = reference(**{"dy": dy, "dfinal": dfinal, **changed})
        return max(_errors(got, mistaken).values()) <= tol

    if matches(dfinal=None):
        return (
            "they are the reference's without the loss on the final state: the final state the layer returns "
            "carries no gradient back (cut from the graph, e.g. detached)"
        )
    if dy.shape[1] > 1 and matches(dy=dy[:, ::-1]):
        return "they are the reference's with the upstream gradient reversed in time (dy of step t used at T-1-t)"
    batch = dy.shape[0]
    for order in ([*range(batch)][::-1], [*range(1, batch), 0], [batch - 1, *range(batch - 1)]):
        if batch > 1 and matches(dy=dy[order]):
            return f"they are the reference's with the upstream gradient's batch rows shuffled (rows {order})"
    return "no simple mistake reproduces them"


def _reference(
    cell: str, variant: str, x: np.ndarray, weights: Weights, state: Any, keep: set[str], dy: np.ndarray, dfinal: Any
) -> Grads:
    """The reference's gradients, by name, of the weights in the layer's layout (`keep`)."""
    dx, dw, ds = ref.backward(cell, x, weights, state, dy, dfinal, variant)
    return _named(cell, dx, {k: v for k, v in dw.items() if k in keep}, ds)


def gradients(subject: Subject) -> Outcome:
    cell, variant = subject.cell, subject.variant
    worst: dict[str, float] = {}
    failure = ""
    for batch, length, input_size, hidden_size, seed in GRADIENT_CASES:
        g = rng(seed)
        weights = ref.rounded(ref.random_weights(cell, input_size, hidden_size, g))
        layer = subject.layers().build_layer(input_size, hidden_size, seed)
        load(layer, cell, weights)
        x = float32(g.normal(0.0, 1.0, (batch, length, input_size)))
        state = random_state(cell, batch, hidden_size, g)
        dy = float32(g.normal(0.0, 1.0, (batch, length, hidden_size)))
        dfinal = random_state(cell, batch, hidden_size, g)
        got = _named(cell, *layer.gradients(x, state, dy, dfinal))
        keep = set(ref.weight_shapes(cell, input_size, hidden_size, ref.has_recurrent_bias(layer.export_weights())))

        reference = partial(_reference, cell, variant, x, weights, state, keep)
        want = reference(dy, dfinal)
        errors = _errors(got, want)
        for name, err in errors.items():
            worst[name] = max(worst.get(name, 0.0), err)
        if not failure and max(errors.values()) > TOL(GRADIENT_RTOL):
            where = f"B={batch}, T={length}, input {input_size}, hidden {hidden_size}"
            why = _diagnose(subject, layer, (x, weights, state, dy, dfinal), got, reference, TOL(GRADIENT_RTOL))
            failure = f"at {where}: {why}. {_off(got, want, errors, TOL(GRADIENT_RTOL), length)}"
    value = max(worst.values())
    by_kind = {
        "x": worst["x"],
        "weights": max(v for k, v in worst.items() if k != "x" and not k.startswith("initial")),
        "initial_state": max(v for k, v in worst.items() if k.startswith("initial")),
    }
    worst_name = max(worst, key=lambda k: worst[k])
    worst_label = "d/dx" if worst_name == "x" else f"d/d {worst_name}"
    detail = (
        f"gradients of Σ dy⊙y + Σ dfinal⊙final state (random dy, dfinal) against the float64 reference's BPTT "
        f"over {len(GRADIENT_CASES)} cases, |diff| / max(1, |reference|): max {fmt(value)} (worst: {worst_label}); "
        f"x {fmt(by_kind['x'])}, weights {fmt(by_kind['weights'])}, initial state {fmt(by_kind['initial_state'])}"
    )
    if failure:
        detail += ". " + failure
    return Outcome(value, value <= TOL(GRADIENT_RTOL), detail, by_kind)


def chunked_gradients(subject: Subject) -> Outcome:
    cell, input_size, hidden_size = subject.cell, 4, 6
    layer = subject.layer(input_size, hidden_size, 19, weights_seed=19)
    worst, plans_run = 0.0, 0

    @st.composite
    def plans(draw: Any) -> tuple[int, int, tuple[int, ...], int]:
        length = draw(st.integers(2, 20))
        cuts = draw(st.lists(st.integers(1, length - 1), min_size=1, max_size=min(4, length - 1), unique=True))
        return draw(st.integers(1, 3)), length, tuple(sorted(cuts)), draw(st.integers(0, 2**16))

    def prop(plan: tuple[int, int, tuple[int, ...], int]) -> None:
        nonlocal worst, plans_run
        batch, length, cuts, seed = plan
        plans_run += 1
        g = rng(seed)
        x = float32(g.normal(0.0, 1.0, (batch, length, input_size)))
        state = random_state(cell, batch, hidden_size, g)
        dy = float32(g.normal(0.0, 1.0, (batch, length, hidden_size)))
        dfinal = random_state(cell, batch, hidden_size, g)
        whole = _named(cell, *layer.gradients(x, state, dy, dfinal))
        pieces, upstream = np.split(x, cuts, axis=1), np.split(dy, cuts, axis=1)
        states = [state]
        for piece in pieces[:-1]:
            states.append(layer.forward(piece, states[-1])[1])
        carried, dxs, dw = dfinal, list[np.ndarray](), Grads()
        for piece, dy_piece, start in reversed(list(zip(pieces, upstream, states, strict=True))):
            dx_piece, dw_piece, carried = layer.gradients(piece, start, dy_piece, carried)
            dxs.insert(0, np.asarray(dx_piece))
            dw = {k: dw.get(k, 0.0) + np.asarray(v, np.float64) for k, v in dw_piece.items()}  # summed over chunks
        chunked = _named(cell, np.concatenate(dxs, axis=1), dw, carried)
        errors = _errors(chunked, whole)
        err = max(errors.values())
        worst = max(worst, err)
        steer(err)
        if err > TOL(CHUNKED_RTOL):
            off = _off(chunked, whole, errors, TOL(CHUNKED_RTOL), length, against="whole")
            raise Mismatch(
                f"cut at {list(cuts)} (B={batch}, T={length}), the gradients chained through the carried state "
                f"(each chunk's d/d initial state fed to the chunk before as its d/d final state) differ from the "
                f"whole sequence's: {off}; the gradient into the "
                "carried state (a chunk's final state) is lost or wrong, as truncated BPTT across chunks needs it"
            )

    message = explore(prop, plans(), examples=5, explicit=((2, 12, (1, 5, 11), 0),))
    detail = (
        f"on the bare layer: gradients of a loss on every output and the final state, the sequence cut in chunks "
        f"and chained through the carried state vs whole: max |diff| / max(1, |whole|) {fmt(worst)} over "
        f"{plans_run} chunk plans (x, weights, initial state)"
    )
    if message:
        detail += ". " + message
    return Outcome(worst, worst <= TOL(CHUNKED_RTOL) and not message, detail)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "gradients", "max_rel_grad_err_vs_reference", GRADIENT_RTOL, ("weight_io", "gradients"),
        "random upstream gradients on every step and on the final state: d/dx, d/d every weight (both biases) "
        "and d/d initial state equal the float64 reference's BPTT (3 shapes, |diff| / max(1, |reference|))",
        gradients,
    ),
    ConformanceCheck(
        "chunked_gradients", "max_rel_diff_chunked_vs_whole", CHUNKED_RTOL, ("weight_io", "gradients"),
        "the gradients of a sequence cut in chunks, chained through the carried state (truncated BPTT that "
        "does not detach it), equal the whole sequence's",
        chunked_gradients,
    ),
)  # fmt: skip
