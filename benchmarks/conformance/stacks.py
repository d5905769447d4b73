"""Conformance of stacks and directions: a 2-layer layer and a bidirectional one against the
reference composed layer by layer (adapters/reference_stack.py), the state in PyTorch's layout
(num_layers * num_directions, batch, hidden), random initial states, random canonical weights per
layer and direction imported by PyTorch's names (`weight_ih_l1`, `weight_ih_l0_reverse`, ...).

Two checks, not one: a factory may take `num_layers` and not `bidirectional` (or a Keras layer
stack but not wrap), and each then gets its own record, skip reason and failure. Torch factories
get them when they accept the keyword (`nn.LSTM`'s); Keras layers are stacked and wrapped in
`keras.layers.Bidirectional` by the adapter (`build_stack`). An adapter without `build_stack`, or a
factory that cannot build the stack, is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.adapters import reference_stack as rs
from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.reference import in_form, rounded
from rnn_behaviour.benchmarks.conformance.common import (
    PARITY_ATOL,
    TOL,
    ConformanceCheck,
    Outcome,
    Subject,
    arrays,
    float32,
    fmt,
    max_abs,
    rng,
)

INPUT, HIDDEN, BATCH, LENGTH = 5, 8, 3, 9
SEEDS = (0, 1)


def _layer1_from(state: Any, directions: int, zeros: bool) -> Any:
    """The state with layer 1's rows replaced by layer 0's (or by zeros)."""
    out = []
    for a in arrays(state):
        a = a.copy()
        a[directions : 2 * directions] = 0.0 if zeros else a[:directions]
        out.append(a)
    return tuple(out) if isinstance(state, tuple) else out[0]


def _mistakes(cell: str, x: np.ndarray, w: rs.StackWeights, state: Any, layers: int,
              bidirectional: bool, variant: str = "") -> dict[str, Callable[[], np.ndarray]]:  # fmt: skip
    """What the stack's output is under each classic mistake (the reference made to make it)."""

    def run(s: Any = state) -> np.ndarray:
        return rs.forward(cell, x, w, s, layers, bidirectional, variant)[0]

    h = HIDDEN
    out: dict[str, Callable[[], np.ndarray]] = {"the initial state is ignored (zeros used)": lambda: run(None)}
    n = 2 if bidirectional else 1
    if layers > 1:
        rows = f"row{'s' if n > 1 else ''} {', '.join(str(n + d) for d in range(n))}"
        out[f"layer 1 starts from layer 0's rows of the initial state, not its own ({rows})"] = lambda: run(
            _layer1_from(state, n, zeros=False)
        )
        out[f"layer 1 starts from zeros: its rows of the initial state ({rows}) are dropped"] = lambda: run(
            _layer1_from(state, n, zeros=True)
        )
    if bidirectional and layers == 1:
        y = run()
        backward_in_step_order = rs.direction_forward(
            cell, x, w["l0_reverse"], rs.parts(cell, state, 1), False, variant
        )[0]
        out["the backward direction's outputs are not reversed back (y_t of the backward half is its own step t, "
            "i.e. about input step T-1-t)"] = lambda: np.concatenate([y[..., :h], y[:, ::-1, h:]], axis=-1)  # fmt: skip
        out["the backward direction reads the input in forward order (no time reversal)"] = lambda: np.concatenate(
            [y[..., :h], backward_in_step_order], axis=-1
        )
        out["the halves are swapped: [backward | forward] instead of PyTorch's [forward | backward]"] = lambda: (
            np.concatenate([y[..., h:], y[..., :h]], axis=-1)
        )
    return out


def _row_names(layers: int, bidirectional: bool) -> list[str]:
    names = []
    for layer, direction, row in rs.units(layers, bidirectional):
        way = (" backward" if direction else " forward") if bidirectional else ""
        names.append(f"row {row} (layer {layer}{way})")
    return names


def _compare(subject: Subject, layers: int, bidirectional: bool) -> tuple[float, str]:
    """The worst error over the seeds and, on failure, what is wrong."""
    cell = subject.cell
    stack = subject.adapter.build_stack(INPUT, HIDDEN, 0, num_layers=layers, bidirectional=bidirectional)  # type: ignore[attr-defined]
    worst = 0.0
    for seed in SEEDS:
        g = rng(200 + seed)
        drawn = rs.random_stack_weights(cell, INPUT, HIDDEN, layers, bidirectional, g)
        w = {k: rounded(in_form(cell, v, subject.variant)) for k, v in drawn.items()}
        stack.import_weights(w)
        x = float32(g.normal(0.0, 1.0, (BATCH, LENGTH, INPUT)))
        state = rs.random_stack_state(cell, BATCH, HIDDEN, layers, bidirectional, g)
        try:
            y, final = stack.forward(x, state)
        except Exception as exc:
            return float("inf"), f"forward raised {first_line(exc)}"
        y_ref, final_ref = rs.forward(cell, x, w, state, layers, bidirectional, subject.variant)
        err = max(max_abs(y, y_ref), max_abs(final, final_ref))
        worst = max(worst, err)
        if err <= TOL.parity:
            continue
        shape = f"{layers} layer(s), {'bidirectional' if bidirectional else 'one direction'}, B={BATCH}, T={LENGTH}"
        problems = [f"outputs off by {fmt(max_abs(y, y_ref))}"]
        if np.shape(y) == y_ref.shape and bidirectional:
            halves = {"forward": slice(0, HIDDEN), "backward": slice(HIDDEN, 2 * HIDDEN)}
            problems = [f"{half} half of the outputs off by {fmt(max_abs(y[..., s], y_ref[..., s]))}"
                        for half, s in halves.items()]  # fmt: skip
        for k, (got, want) in enumerate(zip(arrays(final), arrays(final_ref), strict=False)):
            part = "h" if k == 0 else "c"
            if got.shape != want.shape:
                problems.append(
                    f"final {part} has shape {got.shape}, expected {want.shape} (layers x directions, B, H)"
                )
                continue
            problems += [f"final {part} {name} off by {fmt(max_abs(got[r], want[r]))}"
                         for r, name in enumerate(_row_names(layers, bidirectional))
                         if max_abs(got[r], want[r]) > TOL.parity]  # fmt: skip
        named = [m for m, make in _mistakes(cell, x, w, state, layers, bidirectional, subject.variant).items()
                 if max_abs(y, make()) <= TOL.parity]  # fmt: skip
        if bidirectional and layers == 1 and all(
            max_abs(a[r], b[1 - r]) <= TOL.parity for a, b in zip(arrays(final), arrays(final_ref), strict=False)
            for r in (0, 1)
        ):  # fmt: skip
            named.append("the final states of the two directions are swapped (backward's in row 0, forward's in row 1)")
        diagnosis = f"; it is the reference with this mistake: {named[0]}" if named else ""
        return worst, f"at {shape}, seed {seed}: {'; '.join(problems)}{diagnosis}"
    return worst, ""


def _check(layers: int, bidirectional: bool) -> Callable[[Subject], Outcome]:
    what = f"{layers}-layer" + (" bidirectional" if bidirectional else "")
    short = f"{layers} layer{'s' if layers > 1 else ''}"

    def check(subject: Subject) -> Outcome:
        if not callable(getattr(subject.adapter, "build_stack", None)):
            return Outcome(float("nan"), True, "", skipped=f"{subject.name}: the adapter has no build_stack()")
        try:
            worst, failure = _compare(subject, layers, bidirectional)
        except rs.NotStackable as exc:
            return Outcome(float("nan"), True, str(exc), skipped=f"{subject.name}: {exc}")
        except AdapterError as exc:
            return Outcome(float("inf"), False, f"the {what} stack cannot be built as asked: {exc}")
        detail = f"{short}: max |error| {fmt(worst)}"
        if failure:
            detail += f"; {failure}"
        return Outcome(worst, worst <= TOL.parity, detail)

    return check


def stacked(subject: Subject) -> Outcome:
    outcome = _check(2, False)(subject)
    return Outcome(outcome.value, outcome.passed, f"{_PREFIX}; {outcome.detail}", skipped=outcome.skipped)


def bidirectional(subject: Subject) -> Outcome:
    """One bidirectional layer, then two (layer 1 reads [forward | backward] of layer 0)."""
    one = _check(1, True)(subject)
    if one.skipped or not one.passed:
        return Outcome(one.value, one.passed, f"{_PREFIX}; {one.detail}", skipped=one.skipped)
    two = _check(2, True)(subject)
    if not two.passed:
        return Outcome(two.value, False, f"{_PREFIX}; {one.detail}; {two.detail}")
    return Outcome(max(one.value, two.value), True, f"{_PREFIX}; {one.detail}; {two.detail}")


_PREFIX = (
    f"against the reference composed layer by layer, outputs and final state in PyTorch's layout, {len(SEEDS)} seeds"
)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "stacked", "max_abs_err_vs_reference", PARITY_ATOL, ("weight_io",),
        "num_layers=2 (torch: the factory's keyword; keras: two layers stacked) against the reference "
        "layer by layer, random per-layer weights by PyTorch's names and initial state (layers, B, H)",
        stacked,
    ),
    ConformanceCheck(
        "bidirectional", "max_abs_err_vs_reference", PARITY_ATOL, ("weight_io",),
        "bidirectional=True (torch: the factory's keyword; keras: Bidirectional) with 1 and 2 layers "
        "against the reference (backward = reversed in time and back), outputs [forward | backward]",
        bidirectional,
    ),
)  # fmt: skip
