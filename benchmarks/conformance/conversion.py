"""Conformance of a conversion: an inference-engine row's exported model against the model it was
exported from (adapters/engines), on the same inputs and states. The bare-layer checks hold the
engine's own node to the reference; this one holds the exporter and the engine together to the
source framework, which is what a user deploys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import AdapterError
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
from rnn_behaviour.tasks.base import ModelSpec

#: A sequence model and a classifier (the last step only, softmax head): the two heads tasks use.
SPECS = (
    ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True),
    ModelSpec(input_size=3, output_size=4, hidden_size=8, return_sequences=False, head="softmax"),
)
#: (batch, time): one step, an odd batch and length, a long sequence.
SHAPES = ((1, 1), (3, 17), (2, 300))
SEEDS = (0,)
STATE_NAMES = {"lstm": ("h", "c")}

Predict = Callable[..., tuple[np.ndarray, Any]]


def gap(a: tuple[np.ndarray, Any], b: tuple[np.ndarray, Any]) -> float:
    """max |difference| over the outputs and every array of the final states."""
    parts = [max_abs(a[0], b[0])]
    parts += [max_abs(x, y) for x, y in zip(arrays(a[1]), arrays(b[1]), strict=True)]
    return max(parts)


def _zero_leaf(state: Any, k: int) -> Any:
    leaves = [np.array(a) for a in arrays(state)]
    leaves[k] = np.zeros_like(leaves[k])
    return tuple(leaves) if isinstance(state, tuple | list) else leaves[0]


def likely_cause(
    converted: Predict, source: Predict, x: np.ndarray, state: Any, cell: str | None, sequences: bool
) -> str:
    """The source's computation with one mistake made that gives the converted model's output."""
    got = converted(x, state)
    near = lambda out: gap(got, out) <= 1e-4  # noqa: E731
    if state is not None and near(source(x, None)):
        return "it is the source's output from the zero state: the state passed in is ignored"
    leaves = arrays(state) if state is not None else []
    names = STATE_NAMES.get(str(cell), tuple(f"part {k}" for k in range(len(leaves))))
    for k in range(len(leaves) if len(leaves) > 1 else 0):
        if near(source(x, _zero_leaf(state, k))):
            return (
                f"it is the source's output with the {names[k]} state passed in zeroed: that part of the state is "
                "dropped"
            )
    want = source(x, state)
    if max_abs(got[0], want[0]) <= 1e-4:
        got_leaves, want_leaves = arrays(got[1]), arrays(want[1])
        off = [names[k] for k, (a, b) in enumerate(zip(got_leaves, want_leaves, strict=True)) if max_abs(a, b) > 1e-4]
        swapped = (
            len(got_leaves) == 2
            and max(max_abs(got_leaves[0], want_leaves[1]), max_abs(got_leaves[1], want_leaves[0])) <= 1e-4
        )
        if swapped:
            return (
                f"the outputs match, the final state's parts come back swapped ({names[1]}, {names[0]} for "
                f"{names[0]}, {names[1]})"
            )
        return f"the outputs match, the final state does not ({', '.join(off)}): it is not the state reached"
    if sequences and x.shape[1] > 1:
        flipped = source(x[:, ::-1].copy(), state)  # a copy: NumPy's reversed view has a negative stride
        if max_abs(got[0], flipped[0][:, ::-1]) <= 1e-4:
            return "it is the source's output on the sequence read backwards (the recurrence runs in reverse)"
        first = max_abs(got[0][:, :1], source(x[:, :1], state)[0])
        if first <= TOL.parity:
            return (
                f"the first step matches ({fmt(first)}), later ones do not: the recurrence or the carried state differs"
            )
    return "the outputs differ from the first step: the weights, the gates or the head differ"


def export_parity(subject: Subject) -> Outcome:
    adapter = subject.adapter
    source_adapter = adapter.source  # type: ignore[attr-defined]
    worst, cases, failure = 0.0, 0, ""
    seconds = []
    for spec in SPECS:
        for seed in SEEDS:
            source = source_adapter.build(spec, seed)
            try:
                converted = adapter.convert(source)  # type: ignore[attr-defined]
            except AdapterError as exc:  # the exporter's or the engine's refusal, or a graph that fixes a shape
                what = "classifier" if not spec.return_sequences else "sequence model"
                why = f"{subject.name} could not convert {adapter.trained_by}'s model ({what}): {exc}"
                return Outcome(float("inf"), False, why)
            seconds.append(converted.conversion_seconds)
            g = rng(40 + seed)
            for batch, time in SHAPES:
                x = float32(g.normal(0.0, 2.0, (batch, time, spec.input_size)))
                reached = source.predict(float32(g.normal(0.0, 2.0, (batch, 5, spec.input_size))))[1]
                for state in (None, reached):
                    err = gap(converted.predict(x, state), source.predict(x, state))
                    cases += 1
                    if err > worst:
                        worst = err
                    if err > TOL.parity and not failure:
                        where = (
                            f"{'classifier' if not spec.return_sequences else 'sequence model'} seed {seed}, "
                            f"B {batch} x T {time}, {'from a reached state' if state is not None else 'zero state'}"
                        )
                        cause = likely_cause(converted.predict, source.predict, x, state, adapter.cell,
                                             spec.return_sequences)  # fmt: skip
                        graph = adapter.suspects(converted)  # type: ignore[attr-defined]
                        failure = f"; first off: {where} by {fmt(err)}: {cause}" + "".join(f"; {s}" for s in graph)
    how = adapter.compute_path()
    detail = (
        f"{subject.name} ({how.get('exporter', '?')}, opset {how.get('opset', '?')}) against {adapter.trained_by}'s "
        f"own models, untrained, {cases} cases (sequence model and classifier, T 1/17/300, zero and reached states): "
        f"max |difference| {fmt(worst)} over outputs and final states; conversion {np.median(seconds):.2f} s median"
        f"{failure}"
    )
    return Outcome(
        worst, worst <= TOL.parity and not failure, detail, {"conversion_seconds": float(np.median(seconds))}
    )


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "export_parity", "max_abs_diff_vs_source", PARITY_ATOL, ("conversion",),
        "an inference-engine row's exported model against the model it was exported from (the source row's own), "
        "untrained, a sequence model and a classifier, T 1/17/300, from the zero state and from a state it reached: "
        "outputs and final states; a failure names the likely cause (the state ignored, a part of it dropped, the "
        "sequence read backwards) and what the graph's recurrent nodes say that the source does not",
        export_parity,
    ),
)  # fmt: skip
