"""Conformance of the state and the time axis: chunked == whole, batch rows independent, causal,
and padded == trimmed. They run on the bare layer when the adapter has one, else on the model."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from hypothesis import strategies as st

from benchmarks.conformance.common import (
    SAME_COMPUTATION_ATOL,
    ConformanceCheck,
    Mismatch,
    Outcome,
    Runner,
    Subject,
    arrays,
    explore,
    float32,
    fmt,
    max_abs,
    random_state,
    rng,
    steer,
    take_rows,
    zeros_like,
)


def streaming(subject: Subject) -> Outcome:
    runner = Runner(subject, 3, 8, 11)
    errors = {"chunks": 0.0, "zero_state": 0.0, "final_is_last": 0.0}
    failure: list[str] = []
    plans_run = 0

    @st.composite
    def plans(draw: Any) -> tuple[int, int, tuple[int, ...], int]:
        length = draw(st.integers(2, 24))
        cuts = draw(st.lists(st.integers(1, length - 1), min_size=1, max_size=min(5, length - 1), unique=True))
        return draw(st.integers(1, 4)), length, tuple(sorted(cuts)), draw(st.integers(0, 2**16))

    def prop(plan: tuple[int, int, tuple[int, ...], int]) -> None:
        nonlocal plans_run
        batch, length, cuts, seed = plan
        plans_run += 1
        g = rng(seed)
        x = float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        whole, whole_final = runner.forward(x, state)
        pieces, carried = [], state
        for part in np.split(x, cuts, axis=1):
            out, carried = runner.forward(part, carried)
            pieces.append(out)
        chunked = np.concatenate(pieces, axis=1)
        err = max(max_abs(chunked, whole), max_abs(carried, whole_final))
        errors["chunks"] = max(errors["chunks"], err)
        steer(err)
        if err > SAME_COMPUTATION_ATOL:
            steps = [s for s in range(length) if max_abs(chunked[:, s], whole[:, s]) > SAME_COMPUTATION_ATOL]
            where = f", first at step {steps[0]}" if steps else " (in the final state)"
            cold = runner.forward(np.split(x, cuts, axis=1)[-1], None)[0]
            note = ""
            if max_abs(pieces[-1], cold) <= SAME_COMPUTATION_ATOL:
                note = ": the last chunk comes out as if from the zero state, so the state passed in is dropped"
            raise Mismatch(
                f"fed in chunks cut at {list(cuts)} (B={batch}, T={length}) with the carried state, the output "
                f"differs from the whole sequence's by {fmt(err)}{where}{note}"
            )

    one_step = (2, 12, tuple(range(1, 12)), 1)
    message = explore(prop, plans(), explicit=(one_step,))
    if message:
        failure.append(message)
    g = rng(12)
    x = float32(g.normal(0.0, 1.0, (3, 10, runner.input_size)))
    _, some_state = runner.forward(x)
    y_none, final_none = runner.forward(x, None)
    y_zero, final_zero = runner.forward(x, zeros_like(some_state))
    errors["zero_state"] = max(max_abs(y_zero, y_none), max_abs(final_zero, final_none))
    if errors["zero_state"] > SAME_COMPUTATION_ATOL:
        failure.append(f"an explicit zero state gives other outputs than no state (by {fmt(errors['zero_state'])})")
    if runner.layer is not None:
        state = runner.initial_state(3, g)
        y, final = runner.forward(x, state)
        h = arrays(final)[0]
        errors["final_is_last"] = max_abs(h, y[:, -1])
        if errors["final_is_last"] > SAME_COMPUTATION_ATOL:
            failure.append(f"the final h differs from the last output by {fmt(errors['final_is_last'])}")
    worst = max(errors.values())
    detail = (
        f"on the {runner.kind}: chunked vs whole {fmt(errors['chunks'])} over {plans_run} chunk plans "
        f"(one step at a time included); zero state vs none {fmt(errors['zero_state'])}"
    )
    detail += f"; final h vs last output {fmt(errors['final_is_last'])}" if runner.layer is not None else ""
    if failure:
        detail += ". " + "; ".join(failure)
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not failure, detail, dict(errors))


def batch_independence(subject: Subject) -> Outcome:
    runner = Runner(subject, 4, 6, 13)
    errors = {"alone": 0.0, "permuted": 0.0}

    @st.composite
    def cases(draw: Any) -> tuple[int, int, tuple[int, ...], int]:
        batch = draw(st.integers(2, 6))
        return batch, draw(st.integers(1, 16)), tuple(draw(st.permutations(range(batch)))), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, int, tuple[int, ...], int]) -> None:
        batch, length, order, seed = case
        g = rng(seed)
        x = float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        y, final = runner.forward(x, state)
        alone = []
        for i in range(batch):
            yi, fi = runner.forward(x[i : i + 1], take_rows(state, slice(i, i + 1)))
            err = max_abs(yi, y[i : i + 1])
            if runner.layer is not None:
                err = max(err, max_abs(fi, take_rows(final, slice(i, i + 1))))
            alone.append(err)
        errors["alone"] = max(errors["alone"], *alone)
        steer(max(alone), "alone")
        for i, err in enumerate(alone):
            if err > SAME_COMPUTATION_ATOL:
                raise Mismatch(
                    f"row {i} of a batch of {batch} (T={length}) differs from that sample alone by {fmt(err)}"
                )
        index = np.asarray(order)
        yp, fp = runner.forward(np.ascontiguousarray(x[index]), take_rows(state, index))
        err = max_abs(yp, y[index])
        if runner.layer is not None:
            err = max(err, max_abs(fp, take_rows(final, index)))
        errors["permuted"] = max(errors["permuted"], err)
        steer(err, "permuted")
        if err > SAME_COMPUTATION_ATOL:
            raise Mismatch(
                f"the batch permuted by {list(order)} gives outputs {fmt(err)} away from the outputs permuted"
            )

    message = explore(prop, cases())
    worst = max(errors.values())
    detail = f"on the {runner.kind}: alone vs in the batch {fmt(errors['alone'])}; permuted {fmt(errors['permuted'])}"
    if message:
        detail += ". " + message
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not message, detail, dict(errors))


def causality(subject: Subject) -> Outcome:
    runner = Runner(subject, 3, 7, 14)
    worst, least_effect = 0.0, float("inf")

    @st.composite
    def cases(draw: Any) -> tuple[int, int, int, int]:
        length = draw(st.integers(2, 20))
        return draw(st.integers(1, 3)), length, draw(st.integers(0, length - 1)), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, int, int, int]) -> None:
        nonlocal worst, least_effect
        batch, length, t, seed = case
        g = rng(seed)
        x = float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        changed = x.copy()
        changed[:, t] = float32(g.normal(0.0, 1.0, changed[:, t].shape)) + 2.0
        y, y_changed = runner.forward(x, state)[0], runner.forward(changed, state)[0]
        before = max_abs(y[:, :t], y_changed[:, :t])
        effect = max_abs(y[:, t], y_changed[:, t])
        worst, least_effect = max(worst, before), min(least_effect, effect)
        steer(before)
        if before > 0:
            raise Mismatch(f"changing x_{t} (B={batch}, T={length}) changed earlier outputs by {fmt(before)}")
        if not effect > 0:
            raise Mismatch(f"changing x_{t} (B={batch}, T={length}) left y_{t} unchanged: the input is not read")

    message = explore(prop, cases(), explicit=((2, 9, 0, 0), (2, 9, 8, 1)))
    detail = (
        f"on the {runner.kind}: largest change before t {fmt(worst)} (must be 0); smallest change at t "
        f"{fmt(least_effect)} (must be > 0)"
    )
    if message:
        detail += ". " + message
    return Outcome(worst, worst == 0 and not message, detail, {"smallest_effect_at_t": least_effect})


def variable_length(subject: Subject) -> Outcome:
    layer = subject.layer(3, 6, 15, weights_seed=15)
    masked = cast(Any, layer).forward
    worst = 0.0

    @st.composite
    def cases(draw: Any) -> tuple[int, tuple[int, ...], int]:
        length = draw(st.integers(1, 12))
        lengths = draw(st.lists(st.integers(1, length), min_size=1, max_size=4))
        return length, tuple(lengths), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, tuple[int, ...], int]) -> None:
        nonlocal worst
        length, lengths, seed = case
        g = rng(seed)
        batch = len(lengths)
        x = float32(g.normal(0.0, 1.0, (batch, length, 3)))
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        state = random_state(subject.cell, batch, 6, g)
        y, final = masked(x, state, lengths=np.asarray(lengths))
        rows = []
        for b, n in enumerate(lengths):
            yb, fb = layer.forward(x[b : b + 1, :n], take_rows(state, slice(b, b + 1)))
            rows.append(max(max_abs(y[b : b + 1, :n], yb), max_abs(take_rows(final, slice(b, b + 1)), fb)))
        worst = max(worst, *rows)
        steer(max(rows))
        for b, (n, err) in enumerate(zip(lengths, rows, strict=True)):
            if err > SAME_COMPUTATION_ATOL:
                raise Mismatch(
                    f"row {b} of length {n} padded to {length}: outputs/final state differ from the trimmed "
                    f"sequence's by {fmt(err)}"
                )

    message = explore(prop, cases())
    detail = f"padded with lengths vs trimmed: max |diff| {fmt(worst)}"
    if message:
        detail += ". " + message
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not message, detail)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "streaming", "max_abs_diff_chunked_vs_whole", SAME_COMPUTATION_ATOL, (),
        "chunks fed with the carried state == the whole sequence (outputs and final state); zero state "
        "== no state; final state == last output",
        streaming,
    ),
    ConformanceCheck(
        "batch_independence", "max_abs_diff_alone_vs_batched", SAME_COMPUTATION_ATOL, (),
        "row i of a batch == that sample alone; permuting the batch permutes the outputs",
        batch_independence,
    ),
    ConformanceCheck(
        "causality", "max_abs_change_before_t", 0.0, (),
        "changing x_t changes no output before t (exactly), and does change y_t",
        causality,
    ),
    ConformanceCheck(
        "variable_length", "max_abs_diff_padded_vs_trimmed", SAME_COMPUTATION_ATOL, ("weight_io", "variable_length"),
        "right-padded sequences with their lengths give the trimmed sequences' outputs and final state",
        variable_length,
    ),
)  # fmt: skip
