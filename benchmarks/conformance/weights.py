"""Conformance of the weights: parity with the float64 reference, export/import, transplants
between frameworks and gate order. These need `Capabilities.weight_io` (a bare layer and its
weights in the canonical layout of adapters/reference.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.reference import Layer, Weights
from rnn_behaviour.benchmarks.conformance.common import (
    BATCHES,
    HIDDEN_SIZE,
    INPUT_SIZE,
    LENGTHS,
    PARITY_ATOL,
    SWAP_MARGIN,
    TOL,
    ConformanceCheck,
    Mismatch,
    Outcome,
    Subject,
    diagnose,
    explore,
    float32,
    fmt,
    layer_adapter,
    load,
    max_abs,
    random_state,
    rng,
    steer,
)


def forward_parity(subject: Subject) -> Outcome:
    cell, variant, worst, cases = subject.cell, subject.variant, 0.0, 0

    def compare(layer: Layer, weights: Weights, batch: int, length: int, seed: int) -> tuple[float, str]:
        """The error of one case, and what is wrong when it is too large."""
        g = rng(seed)
        x = float32(g.normal(0.0, 1.0, (batch, length, layer.input_size)))
        state = random_state(cell, batch, layer.hidden_size, g)
        y, final = layer.forward(x, state)
        y_ref, final_ref = ref.forward(cell, x, weights, state, variant=variant)
        err = max(max_abs(y, y_ref), max_abs(final, final_ref))
        if err <= TOL.parity:
            return err, ""
        where = f"B={batch}, T={length}, input {layer.input_size}, hidden {layer.hidden_size}"
        why = diagnose(cell, x, weights, state, y, variant)
        return err, f"at {where}: max |adapter - reference| = {fmt(err)}; {why}"

    layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 0)
    weights = ref.rounded(ref.random_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(0)))
    load(layer, cell, weights)
    failure = ""
    for batch in BATCHES:
        for length in LENGTHS:
            err, message = compare(layer, weights, batch, length, 10 * batch + length)
            worst, cases, failure = max(worst, err), cases + 1, failure or message

    @st.composite
    def shapes(draw: Any) -> tuple[int, int, int, int, int]:
        return (
            draw(st.integers(1, 5)), draw(st.integers(1, 16)), draw(st.integers(1, 8)), draw(st.integers(1, 16)),
            draw(st.integers(0, 2**16)),
        )  # fmt: skip

    def generated(case: tuple[int, int, int, int, int]) -> None:
        nonlocal worst, cases
        batch, length, input_size, hidden_size, seed = case
        layer = subject.layers().build_layer(input_size, hidden_size, seed)
        w = ref.rounded(ref.random_weights(cell, input_size, hidden_size, rng(seed)))
        load(layer, cell, w)
        err, message = compare(layer, w, batch, length, seed)
        worst, cases = max(worst, err), cases + 1
        steer(err)
        if message:
            raise Mismatch(message)

    if not failure:
        failure = explore(generated, shapes(), examples=6, explicit=((1, 1, 1, 1, 0),)) or ""
    detail = f"max |adapter - reference| {fmt(worst)} over {cases} cases (outputs and final state)"
    if failure:
        detail += "; " + failure
    return Outcome(worst, worst <= TOL.parity, detail)


def round_trip(subject: Subject) -> Outcome:
    cell, problems = subject.cell, []
    source = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 1)
    exported = source.export_weights()
    shapes = ref.weight_shapes(cell, INPUT_SIZE, HIDDEN_SIZE, ref.has_recurrent_bias(exported))
    try:
        ref.check_weights(cell, INPUT_SIZE, HIDDEN_SIZE, exported, subject.variant)
    except ValueError as exc:
        return Outcome(float("inf"), False, f"export is not in the canonical layout: {exc}")
    target_layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 2)
    x = float32(rng(1).normal(0.0, 1.0, (3, 9, INPUT_SIZE)))
    state = random_state(cell, 3, HIDDEN_SIZE, rng(2))
    before = max_abs(target_layer.forward(x, state)[0], source.forward(x, state)[0])
    target_layer.import_weights(exported)
    again = target_layer.export_weights()
    change = max(max_abs(again.get(k, np.zeros(0)), exported[k]) for k in shapes)
    if change > 0:
        worst_key = max(shapes, key=lambda k: max_abs(again.get(k, np.zeros(0)), exported[k]))
        problems.append(f"re-export differs from what was imported (worst {worst_key}: {fmt(change)})")
    # Full weights, folded into the layer's layout (its bh into b when its export has none).
    drawn = ref.in_form(cell, ref.random_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(3)), subject.variant)
    given_weights = ref.to_layout(cell, drawn, ref.has_recurrent_bias(exported), subject.variant)
    target_layer.import_weights(given_weights)
    stored = target_layer.export_weights()
    # What import got, rounded to the layer's precision: float32, or the dtype it exports.
    rounding = {
        k: min(
            max_abs(stored.get(k, np.zeros(0)), ref.rounded(given_weights, dtype)[k])
            for dtype in (np.float32, np.asarray(stored.get(k, 0.0)).dtype)
        )
        for k in shapes
    }
    if max(rounding.values()) > 0:
        problems.append(
            "importing float64 weights then exporting does not give them back (rounded to the layer's precision)"
        )
    change = max(change, *rounding.values())
    target_layer.import_weights(exported)
    after = max_abs(target_layer.forward(x, state)[0], source.forward(x, state)[0])
    if after > TOL.parity:
        problems.append(
            f"after importing, the layer's output differs from the exporting layer's by {fmt(after)} (before: "
            f"{fmt(before)}): import does not set what the layer computes with"
        )
    detail = (
        f"re-exported weights change by {fmt(change)} (must be 0); outputs of the importing layer "
        f"{fmt(before)} apart before, {fmt(after)} after"
    )
    if problems:
        detail += ". " + "; ".join(problems)
    return Outcome(change, change == 0 and after <= TOL.parity, detail, {"output_diff_after_import": after})


def transplant(subject: Subject) -> Outcome:
    assert subject.counterpart is not None
    other_name = getattr(subject.counterpart, "name", "counterpart")
    other = layer_adapter(other_name, subject.counterpart)
    x = float32(rng(4).normal(0.0, 1.0, (4, 16, INPUT_SIZE)))
    state = random_state(subject.cell, 4, HIDDEN_SIZE, rng(5))
    errors, held = {}, {}
    for direction, (src, dst) in {
        f"{subject.name} -> {other_name}": (subject.layers(), other),
        f"{other_name} -> {subject.name}": (other, subject.layers()),
    }.items():
        a, b = src.build_layer(INPUT_SIZE, HIDDEN_SIZE, 6), dst.build_layer(INPUT_SIZE, HIDDEN_SIZE, 7)
        try:
            load(b, subject.cell, a.export_weights(), moved=True)
        except ref.CannotHold as exc:  # a limit of the receiving form (e.g. a no_bhn GRU and bh_n), not judged
            held[direction] = str(exc)
            continue
        (ya, fa), (yb, fb) = a.forward(x, state), b.forward(x, state)
        errors[direction] = max(max_abs(ya, yb), max_abs(fa, fb))
    lines = [f"{d} max |diff| {fmt(e)}" for d, e in errors.items()]
    lines += [f"{d} not judged: {why}" for d, why in held.items()]
    detail = "each framework's own initial weights, moved (bh folded into b where a layout has none): "
    detail += "; ".join(lines)
    if not errors:
        return Outcome(float("nan"), False, detail, skipped=f"neither direction can move: {detail}")
    worst = max(errors.values())
    return Outcome(worst, worst <= TOL.parity, detail)


def gate_order(subject: Subject) -> Outcome:
    cell, variant = subject.cell, subject.variant
    layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 8)
    weights = ref.rounded(ref.canary_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(8)))
    load(layer, cell, weights)
    x = float32(rng(9).normal(0.0, 1.0, (4, 7, INPUT_SIZE)))
    state = random_state(cell, 4, HIDDEN_SIZE, rng(10))
    y_ref = ref.forward(cell, x, weights, state, variant=variant)[0]
    margins = {
        order: max_abs(ref.forward(cell, x, ref.permute_gates(cell, weights, order), state, variant=variant)[0], y_ref)
        for order in ref.gate_permutations(cell)
    }
    y = layer.forward(x, state)[0]
    err = max_abs(y, y_ref)
    if margins:
        nearest = min(margins, key=lambda o: margins[o])
        if margins[nearest] <= SWAP_MARGIN:
            raise AssertionError(f"canary weights do not separate gates {nearest}: {margins[nearest]}")
        detail = (
            f"max |adapter - reference| {fmt(err)} on per-gate-distinct weights; the closest of the "
            f"{len(margins)} other gate orders ({ref.describe_permutation(cell, nearest)}) would be off by "
            f"{fmt(margins[nearest])} (> {SWAP_MARGIN:g})"
        )
    else:
        detail = f"max |adapter - reference| {fmt(err)} (one gate: nothing to swap)"
    if err > TOL.parity:
        detail += "; " + diagnose(cell, x, weights, state, y, variant)
    extras = {"closest_swap_error": min(margins.values())} if margins else {}
    return Outcome(err, err <= TOL.parity, detail, extras)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "forward_parity", "max_abs_err_vs_reference", PARITY_ATOL, ("weight_io",),
        "same weights, random initial state: outputs and final state equal the float64 reference "
        "(B in {1,4} x T in {1,7,64}, input 5 != hidden 12, plus generated shapes)",
        forward_parity,
    ),
    ConformanceCheck(
        "round_trip", "max_abs_weight_change", 0.0, ("weight_io",),
        "export -> import into another layer -> export is bitwise the same, in the canonical keys and "
        "shapes, and the importing layer then computes what the exporting one did",
        round_trip,
    ),
    ConformanceCheck(
        "transplant", "max_abs_diff_across_frameworks", PARITY_ATOL, ("weight_io", "counterpart"),
        "the same weights in this adapter and its counterpart in the other framework give the same "
        "outputs, moved either way",
        transplant,
    ),
    ConformanceCheck(
        "gate_order", "max_abs_err_vs_reference_canary", PARITY_ATOL, ("weight_io",),
        f"parity on weights whose gates are far apart: any gate swap would be off by > {SWAP_MARGIN:g}",
        gate_order,
    ),
)  # fmt: skip
