"""Conformance on bad input: a clear error or the documented behaviour, never a hang."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from benchmarks.conformance.common import HANG_SECONDS, ConformanceCheck, Outcome, Subject, float32, rng
from tasks.base import ModelSpec

_FEATURE_WORDS = ("feature", "input_size", "input size", "expect")
_STATE_WORDS = ("state", "hidden")
_EMPTY_WORDS = ("empty", "length", "zero", "time step")
_NAN_WORDS = ("nan", "finite")


def _within(seconds: float, call: Callable[[], Any]) -> tuple[str, Any]:
    """("returned", value) / ("raised", exception) / ("hung", None), in a daemon thread."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["returned"] = call()
        except Exception as exc:
            box["raised"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return "hung", None
    return next(iter(box.items()))


def _judge(name: str, call: Callable[[], Any], words: tuple[str, ...],
           behaviour: Callable[[Any], str | None] | None) -> tuple[bool, str]:  # fmt: skip
    """Whether a bad input was handled clearly, and what happened."""
    how, value = _within(HANG_SECONDS, call)
    if how == "hung":
        return False, f"{name}: no answer in {HANG_SECONDS:g} s"
    if how == "raised":
        message = f"{type(value).__name__}: {value}".splitlines()[0][:160]
        if any(w in str(value).lower() for w in words):
            return True, f"{name}: {message}"
        return False, f"{name}: the error does not name the problem ({message})"
    if behaviour is None:
        return False, f"{name}: accepted silently (no error)"
    problem = behaviour(value)
    if problem is None:
        return True, f"{name}: documented behaviour"
    return False, f"{name}: {problem}"


def _bad_cases(forward: Callable[..., Any], input_size: int) -> Iterator[tuple[str, Callable[[], Any], tuple[str, ...], Callable[[Any], str | None] | None]]:  # fmt: skip  # noqa: E501
    g = rng(19)
    good = float32(g.normal(0.0, 1.0, (2, 5, input_size)))
    _, state_of_3 = forward(float32(g.normal(0.0, 1.0, (3, 5, input_size))))
    nan_x, t = good.copy(), 2
    nan_x[0, t, 0] = np.nan

    def nan_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        if not np.isfinite(y[1:]).all():
            return "NaN in row 0 leaked into other rows"
        if not np.isfinite(y[0, :t]).all():
            return f"NaN at step {t} made earlier outputs non-finite"
        if np.isfinite(y[0, t:]).all():
            return f"NaN at step {t} was swallowed: the outputs from there on are finite (neither error nor NaN)"
        return None

    def empty_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        return None if y.ndim == 3 and y.shape[1] == 0 else f"an empty sequence gave an output of shape {y.shape}"

    yield (f"{input_size + 1} features instead of {input_size}",
           lambda: forward(np.zeros((2, 5, input_size + 1), np.float32)), _FEATURE_WORDS, None)  # fmt: skip
    yield "a batch-of-3 state with a batch of 2", lambda: forward(good, state_of_3), _STATE_WORDS, None
    yield f"NaN at step {t}", lambda: forward(nan_x), _NAN_WORDS, nan_behaviour
    yield "an empty sequence", lambda: forward(np.zeros((2, 0, input_size), np.float32)), _EMPTY_WORDS, empty_behaviour


def bad_input(subject: Subject) -> Outcome:
    spec = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)
    targets: dict[str, Callable[..., Any]] = {"model": subject.adapter.build(spec, 0).predict}
    if subject.adapter.capabilities.weight_io:
        targets["bare layer"] = subject.layers().build_layer(3, 8, 0).forward
    failing: list[str] = []
    handled: list[str] = []
    for where, forward in targets.items():
        for name, call, words, behaviour in _bad_cases(forward, 3):
            ok, note = _judge(name, call, words, behaviour)
            (handled if ok else failing).append(f"{where}, {note}")
    detail = f"{len(failing)} of {len(failing) + len(handled)} bad inputs without a clear error"
    detail += "".join(f"; FAIL {n}" for n in failing) + "".join(f"; ok {n}" for n in handled)
    return Outcome(float(len(failing)), not failing, detail)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "bad_input", "cases_without_clear_error", 0.0, (),
        "wrong feature size, wrong state shape, NaN input and an empty sequence each give an error "
        "naming the problem, or the documented behaviour (NaN propagates forward in time only; an "
        "empty sequence gives an empty output); never a hang",
        bad_input,
    ),
)  # fmt: skip
