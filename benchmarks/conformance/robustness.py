"""Conformance on bad input: any error, or the documented behaviour; never a bad input accepted
silently, a hang, or NaN swallowed or spread across rows. The error's wording is only a note."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import NoState
from rnn_behaviour.benchmarks.conformance.common import HANG_SECONDS, ConformanceCheck, Outcome, Subject, float32, rng
from rnn_behaviour.tasks.base import ModelSpec

_FEATURE_WORDS = ("feature", "input_size", "input size", "expect")
_STATE_WORDS = ("state", "hidden")
_EMPTY_WORDS = ("empty", "length", "zero", "time step")
_NAN_WORDS = ("nan", "finite")
_NOISE = re.compile(r"\x1b\[[0-9;]*m|\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$")


@dataclass(frozen=True)
class BadCase:
    """One bad input: `words` are what a clear message would name (`what`, for the note when it
    does not); `behaviour` judges a call that returns (None: it must raise)."""

    name: str
    call: Callable[[], Any]
    words: tuple[str, ...]
    what: str
    behaviour: Callable[[Any], str | None] | None = None


def gist(exc: BaseException) -> str:
    """`Type: message` on one line: the first line that says something (TensorFlow's "Exception
    encountered when calling ..." wrapper and node names dropped), at most 160 characters."""
    lines = [_NOISE.sub("", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Exception encountered", "Arguments received"))]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:160]


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


def _judge(case: BadCase) -> tuple[bool, str]:
    """Whether a bad input was handled (any error raised, or the documented behaviour), and what
    happened. An error's wording is a note, never a failure."""
    how, value = _within(HANG_SECONDS, case.call)
    if how == "hung":
        return False, f"{case.name}: no answer in {HANG_SECONDS:g} s"
    if how == "raised":
        message = gist(value)
        clear = any(w in message.lower() for w in case.words)
        note = "" if clear else f" (the message does not name {case.what}: consider a clearer one)"
        return True, f"{case.name}: raised {message}{note}"
    if case.behaviour is None:
        shape = np.shape(value[0]) if isinstance(value, tuple | list) and value else None
        return False, f"{case.name}: accepted silently (no error; it returned y of shape {shape})"
    problem = case.behaviour(value)
    if problem is None:
        return True, f"{case.name}: documented behaviour"
    return False, f"{case.name}: {problem}"


def _bad_cases(forward: Callable[..., Any], input_size: int) -> Iterator[BadCase]:
    g = rng(19)
    good = float32(g.normal(0.0, 1.0, (2, 5, input_size)))
    _, state_of_3 = forward(float32(g.normal(0.0, 1.0, (3, 5, input_size))))
    nan_x, t = good.copy(), 2
    nan_x[0, t, 0] = np.nan

    def nan_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        if not np.isfinite(y[1:]).all():
            return "NaN in row 0 spread to other rows"
        if not np.isfinite(y[0, :t]).all():
            return f"NaN at step {t} made earlier outputs non-finite"
        if np.isfinite(y[0, t:]).all():
            return f"NaN at step {t} was swallowed: the outputs from there on are finite (neither error nor NaN)"
        return None

    def empty_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        return None if y.ndim == 3 and y.shape[1] == 0 else f"an empty sequence gave an output of shape {y.shape}"

    wide = np.zeros((2, 5, input_size + 1), np.float32)
    yield BadCase(f"{input_size + 1} features instead of {input_size}", lambda: forward(wide), _FEATURE_WORDS,
                  "the feature size")  # fmt: skip
    if state_of_3 is not None and not isinstance(state_of_3, NoState):  # a module with no state is handed none
        yield BadCase("a batch-of-3 state with a batch of 2", lambda: forward(good, state_of_3), _STATE_WORDS,
                      "the state")  # fmt: skip
    yield BadCase(f"NaN at step {t}", lambda: forward(nan_x), _NAN_WORDS, "the NaN", nan_behaviour)
    empty = np.zeros((2, 0, input_size), np.float32)
    yield BadCase("an empty sequence", lambda: forward(empty), _EMPTY_WORDS, "the empty sequence", empty_behaviour)


def bad_input(subject: Subject) -> Outcome:
    spec = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)
    adapter = subject.adapter
    targets: dict[str, Callable[[], Callable[..., Any]]] = {"model": lambda: adapter.build(spec, 0).predict}
    if adapter.capabilities.weight_io:
        targets["bare layer"] = lambda: subject.layers().build_layer(3, 8, 0).forward
    if adapter.capabilities.native_module:
        targets["the module itself"] = lambda: adapter.native_module(3, 8, 0).forward  # type: ignore[attr-defined]
    failing: list[str] = []
    handled: list[str] = []
    for where, make in targets.items():
        try:  # building the target and one good call (the batch-of-3 state) must work to judge the rest
            cases = list(_bad_cases(make(), 3))
        except Exception as exc:
            failing.append(f"{where}: a good input (a batch of 3) raised {gist(exc)}, so no bad input can be judged")
            continue
        hung = False
        for case in cases:
            if hung:  # a hang leaves its thread running: do not start another on the same target
                failing.append(f"{where}, {case.name}: not run, the {where} hung on an earlier case")
                continue
            ok, note = _judge(case)
            hung = "no answer in" in note
            (handled if ok else failing).append(f"{where}, {note}")
    detail = (
        f"{len(failing)} of {len(failing) + len(handled)} bad inputs mishandled on the {', '.join(targets)} "
        "(any error is right; a bad input accepted silently, a hang, or NaN swallowed or spread across rows is not)"
    )
    detail += "".join(f"; FAIL {n}" for n in failing) + "".join(f"; ok {n}" for n in handled)
    return Outcome(float(len(failing)), not failing, detail)


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "bad_input", "cases_mishandled", 0.0, (),
        "wrong feature size, a wrong-batch state, NaN input and an empty sequence, on the model, the bare "
        "layer and the module itself (past the suite's validation): any error raised is right (its wording "
        "only a note); a bad input accepted silently, a hang, or NaN swallowed or spread across rows fails. "
        "Documented behaviours: NaN propagates forward in time in its own row; an empty sequence gives an "
        "empty output",
        bad_input,
    ),
)  # fmt: skip
