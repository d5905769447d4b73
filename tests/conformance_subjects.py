"""A conformance check run on an adapter by its spec, the adapter loaded once per test process:
what the gradient tests (reference and self) share."""

from __future__ import annotations

from typing import Any

from rnn_behaviour.adapters import resolve
from rnn_behaviour.benchmarks.conformance import Outcome, Subject, run

_loaded: dict[str, Any] = {}


def adapter(spec: str) -> Any:
    if spec not in _loaded:
        _loaded[spec] = resolve(spec).load()
    return _loaded[spec]


def check(spec: str, name: str) -> Outcome:
    return run(name, Subject(spec.rsplit(":", 1)[-1], adapter(spec)))
