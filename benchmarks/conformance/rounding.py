"""The float64 second opinion of the "same computation" checks (`streaming`, `batch_independence`):
a gap over the absolute gate is float32 rounding when the module's float64 twin says so
(tasks/rounding.py). This module imports no framework."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.conformance.common import TOL, Runner, fmt
from rnn_behaviour.tasks.rounding import ROUNDING_K, Rounding, second_opinion

Forward = Callable[..., tuple[np.ndarray, Any]]


class RoundingLedger:
    """The float64 second opinion on the gaps over the absolute gate (tasks/rounding.py): asked
    only for such a gap, so a module within the gate never runs its float64 twin. It keeps the
    worst figures of the gaps it explained, for the record and the detail line."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.explained, self.gap64, self.own32, self.gate = runner, 0, 0.0, 0.0, 0.0

    def ask(self, gap32: float, first32: Any, paths: Callable[[Forward], tuple[Any, Any]]) -> Rounding:
        """`paths(forward)` runs both paths with `forward`; the twin runs them in float64."""
        twin = self.runner.float64_twin()
        if isinstance(twin, str):
            return Rounding(why_not=f"the {self.runner.kind}: {twin}")
        try:
            opinion = second_opinion(first32, *paths(twin))
        except Exception as exc:  # the twin failed where the float32 module ran
            return Rounding(why_not=f"its float64 run raised {type(exc).__name__}")
        if opinion.explains(gap32):
            self.explained += 1
            self.gap64, self.own32 = max(self.gap64, opinion.gap64), max(self.own32, opinion.own32)
            self.gate = max(self.gate, ROUNDING_K * opinion.own32)
        return opinion

    def extras(self) -> dict[str, float]:
        return {"rounding_gap_float64": self.gap64, "rounding_own_float32": self.own32} if self.explained else {}

    def note(self) -> str:
        if not self.explained:
            return ""
        return (
            f"; {self.explained} gap(s) over {fmt(TOL.same)} are float32 rounding: in float64 the two paths agree "
            f"(to {fmt(self.gap64)} of the output's scale) and the float32 gap is within {ROUNDING_K:g}x the "
            f"model's own float32 error (up to {fmt(self.own32)})"
        )

    def threshold(self) -> float | None:
        """The gate that applied, when a gap was judged by its rounding."""
        return max(TOL.same, self.gate) if self.explained else None
