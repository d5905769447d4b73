"""Conformance of the caller's data: the module leaves the tensors it is handed as they were,
gives the same result for one state object used twice, and reads a non-contiguous input as the
contiguous one. It runs on the module itself with its framework's own tensors
(`adapter.native_module`, adapters/native.py): the Layer API copies every array, so a module that
writes into its input would go unseen there."""

from __future__ import annotations

import numpy as np

from rnn_behaviour.adapters.native import NativeCall, NativeModule
from rnn_behaviour.benchmarks.conformance.common import (
    SAME_COMPUTATION_ATOL,
    TOL,
    ConformanceCheck,
    Outcome,
    Subject,
    float32,
    fmt,
    rng,
)
from rnn_behaviour.benchmarks.conformance.robustness import gist

INPUT_SIZE, HIDDEN_SIZE, BATCH, LENGTH = 4, 6, 3, 9


def _differ(a: tuple[np.ndarray, list[np.ndarray]], b: tuple[np.ndarray, list[np.ndarray]]) -> tuple[float, str]:
    """Largest |difference| between two calls' (y, final state), and where it is largest."""
    (ya, fa), (yb, fb) = a, b
    if ya.shape != yb.shape or [f.shape for f in fa] != [f.shape for f in fb]:
        return float("inf"), "the shapes differ"
    diff = np.abs(ya.astype(np.float64) - yb.astype(np.float64))
    worst, where = 0.0, ""
    if diff.size and (np.isnan(diff).any() or diff.max() > 0):
        step = int(np.argmax(np.nan_to_num(diff, nan=np.inf).max(axis=(0, 2))))
        worst, where = float(np.nan_to_num(diff, nan=np.inf).max()), f"y, first largest at step {step}"
    for k, (p, q) in enumerate(zip(fa, fb, strict=True)):
        d = float(np.nan_to_num(np.abs(p.astype(np.float64) - q.astype(np.float64)), nan=np.inf).max(initial=0.0))
        if d > worst:
            worst, where = d, f"final state[{k}]"
    return worst, where


def caller_data(subject: Subject) -> Outcome:
    native: NativeModule = subject.adapter.native_module(INPUT_SIZE, HIDDEN_SIZE, 23)  # type: ignore[attr-defined]
    g = rng(23)
    x = float32(g.normal(0.0, 1.0, (BATCH, LENGTH, INPUT_SIZE)))
    try:
        _, state = native.forward(float32(g.normal(0.0, 1.0, (BATCH, 5, INPUT_SIZE))))  # a state of its own form
    except Exception as exc:
        return Outcome(float("inf"), False, f"the {native.framework} module itself raised {gist(exc)} on a good input")
    errors = {"changed": 0.0, "reused": 0.0, "layout": 0.0}
    failures: list[str] = []
    changed: dict[str, list[str]] = {}
    reused: list[str] = []
    notes: list[str] = []
    runs: dict[str, NativeCall] = {}
    cases = (("forward", "contiguous", False), ("forward and backward", "contiguous", True),
             ("strided", "strided", False), ("transposed", "transposed", False))  # fmt: skip
    for label, layout, backward in cases:
        try:
            runs[label] = native.call(x, state, layout=layout, backward=backward, repeats=2, seed=24)
        except Exception as exc:
            if layout != "contiguous":  # refusing a layout it cannot read is a clear answer, not a wrong result
                notes.append(f"the {label} call ({native.layouts[layout]}) raised {gist(exc)}: a contiguous x needed")
                continue
            errors["reused"] = float("inf")
            failures.append(f"the {label} call ({native.layouts[layout]}) raised {gist(exc)}")
            continue
        for name, change in runs[label].changed.items():
            errors["changed"] = max(errors["changed"], change)
            if change > 0:
                changed.setdefault(name, []).append(label)
        err, where = _differ(*runs[label].outputs[:2])
        errors["reused"] = max(errors["reused"], err)
        if err > TOL.same:
            reused.append(f"{label} {fmt(err)} ({where})")
    written = [f"{name} (in the {', '.join(labels)} calls)" for name, labels in changed.items()
               if name == "x" or "x" not in changed or "x is a view of" not in name]  # fmt: skip
    if written:
        failures.insert(0, f"the module changed the caller's {'; '.join(written)} in place: a module must not "
                        "write into the tensors it is handed")  # fmt: skip
    if reused:
        failures.append(f"the same input and state objects used twice give different results: {'; '.join(reused)}")
    base = runs.get("forward")
    for label in ("forward and backward", "strided", "transposed"):
        if base is None or label not in runs:
            continue
        err, where = _differ(runs[label].outputs[0], base.outputs[0])
        errors["layout"] = max(errors["layout"], err)
        if err > TOL.same:
            layout = "contiguous" if label == "forward and backward" else label
            failures.append(
                f"the {label} call ({native.layouts[layout]}) gives results {fmt(err)} away from the plain forward's "
                f"({where})" + ("" if layout == "contiguous" else ": does the module read x's memory as if contiguous?")
            )
    worst = max(errors.values())
    detail = (
        f"the {native.framework} module itself, each case called twice with the same objects: forward, forward "
        f"and backward (random upstream gradients on y and the final state), {native.layouts['strided']}, "
        f"{native.layouts['transposed']}; largest change of the caller's data {fmt(errors['changed'])} (must be "
        f"0), reuse {fmt(errors['reused'])}, non-contiguous vs contiguous {fmt(errors['layout'])}"
    )
    if native.immutable:
        detail += f" ({native.immutable})"
    if failures:
        detail += ". " + "; ".join(failures)
    if notes:
        detail += ". Note: " + "; ".join(notes)
    return Outcome(worst, not failures and errors["changed"] == 0 and worst <= TOL.same, detail, errors)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "caller_data", "max_abs_change_or_diff", SAME_COMPUTATION_ATOL, ("native_module",),
        "the module itself leaves its input and state unchanged (forward, and forward + backward), "
        "gives the same result for one state object used twice, and the same for a strided or "
        "transposed input as for a contiguous one",
        caller_data,
    ),
)  # fmt: skip
