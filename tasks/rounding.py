"""Rounding or a different result? The judgement behind the "same computation" gates
(conformance `streaming`, `batch_independence`; the behaviour check `streams.online_equals_offline`).

Two paths of one computation (a sequence whole and in chunks with the carried state; a row alone
and in its batch) may run different algorithms for the same mathematics: minGRU-pytorch, LRU- and
Mamba-style models compute a sequence by a log-space parallel scan and a step by the recurrence.
Their float32 results then differ by rounding, by more than an absolute gate made for LSTMs
allows. Where the model runs in float64 (its `float64_twin()`: the same weights, computing in
float64), a gap over the absolute gate is rounding when

- the twin's two paths agree to `FLOAT64_RTOL` of max(1, |output|): the mathematics is the same
  (a state bug, even one off by 1e-4, differs in float64 as much as in float32), and
- the float32 gap is at most `ROUNDING_K` times the model's own float32 error on the first path
  (the whole sequence, the batch) against the twin: it is the size of the rounding the model
  makes anyway.

A model without a twin (Keras) keeps the absolute gate. Calibration: benchmarks/README.md,
"Rounding". This module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: float64 has ~16 digits; the log-space scan's two paths agree to 1.2e-14 there. A state bug of
#: 1e-4 differs by ~1e-5.
FLOAT64_RTOL = 1e-9
#: The float32 gap over the first path's own float32 error: measured at most 3.1 (the planted
#: log-space scan, 600 chunk plans) and 2.2 (the torch built-ins), so 10 leaves a margin of 3; a
#: path that rounds 10x worse than the other in float32 alone is no longer rounding but a
#: float32-only defect (e.g. a state carried in half precision). benchmarks/README.md, "Rounding".
ROUNDING_K = 10.0


def arrays(nest: Any) -> list[np.ndarray]:
    """The arrays of a state or output in a fixed order: a tuple/list nest in order, a dict by its
    sorted keys (a module's state may be any such nest, README), an array as itself."""
    if isinstance(nest, dict):
        return [a for key in sorted(nest, key=str) for a in arrays(nest[key])]
    if isinstance(nest, tuple | list):
        return [a for s in nest for a in arrays(s)]
    return [np.asarray(nest)]


def max_abs(a: Any, b: Any) -> float:
    """Largest |a - b| over arrays or nests of them; inf on a shape mismatch or NaN."""
    pairs = list(zip(arrays(a), arrays(b), strict=False))
    if len(arrays(a)) != len(arrays(b)) or any(x.shape != y.shape for x, y in pairs):
        return float("inf")
    worst = 0.0
    for x, y in pairs:
        if x.size:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            worst = max(worst, float("inf") if np.isnan(diff).any() else float(diff.max()))
    return worst


@dataclass(frozen=True)
class Rounding:
    """One case's second opinion: `gap64`, the float64 paths' gap over max(1, |first path|);
    `own32`, the float32 first path's error against its float64 run; `why_not`, why no float64
    run was possible (then nothing is explained)."""

    gap64: float = float("inf")
    own32: float = 0.0
    why_not: str = ""

    def explains(self, gap32: float) -> bool:
        return not self.why_not and self.gap64 <= FLOAT64_RTOL and gap32 <= ROUNDING_K * self.own32

    def gate(self, threshold: float) -> float:
        """The gate a gap explained as rounding was held to: the check's, or the model's own float32
        error times ROUNDING_K where that is larger."""
        return max(threshold, ROUNDING_K * self.own32)

    def describe(self, gap32: float) -> str:
        """What the float64 run says of a float32 gap, in words."""
        if self.why_not:
            return f"no float64 run to tell rounding from a different result ({self.why_not})"
        figures = f"float64 gap {self.gap64:.2g} of the output's scale, its own float32 error {self.own32:.2g}"
        if self.explains(gap32):
            return f"float32 rounding: the float64 run agrees ({figures})"
        if self.gap64 > FLOAT64_RTOL:
            return f"not rounding: the float64 run differs too ({figures})"
        return f"not rounding: over {ROUNDING_K:g}x the model's own float32 error ({figures})"


def second_opinion(first32: Any, first64: Any, second64: Any) -> Rounding:
    """The judgement from the first path in float32 and both paths in float64 (nests of arrays);
    outputs that do not come back in float64 are no float64 run."""
    if any(a.dtype != np.float64 for a in arrays(first64) + arrays(second64)):
        return Rounding(why_not="the float64 twin does not compute in float64")
    scale = max(1.0, *(float(np.abs(a).max()) for a in arrays(first64) if a.size))
    return Rounding(max_abs(second64, first64) / scale, max_abs(first32, first64))


def float64_twin(owner: Any) -> Any:
    """`owner.float64_twin()` (the same layer or model computing in float64), or a string that
    says why there is none."""
    make = getattr(owner, "float64_twin", None)
    if make is None:
        return "it has no float64 twin (torch models have one; Keras keeps the absolute gate)"
    try:
        return make()
    except Exception as exc:  # a module that cannot be copied or converted to float64
        return f"it does not run in float64 ({type(exc).__name__})"
