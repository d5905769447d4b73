"""The module itself, run with its framework's own tensors: what conformance's `caller_data` and
`bad_input` reach past the suite's NumPy boundary.

The `Layer` API (adapters/reference.py) and `Model.predict` copy every array and validate it
before the module sees it, so a module that writes into its input, needs a contiguous one, or
handles a bad input badly goes unseen there. An adapter with `Capabilities(native_module=True)`
hands over `native_module(input_size, hidden_size, seed)`: the factory's module, built afresh
(weight access not needed), called directly. This module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: The input layouts `NativeModule.call` builds: the same values, laid out differently in memory.
LAYOUTS = ("contiguous", "strided", "transposed")


@dataclass
class NativeCall:
    """What `call` saw: per call, y and the final state's tensors (as NumPy, in the nest's leaf
    order); and, per value the caller owns (the input, each state tensor...), the largest change
    of its elements from before the first call to after the last one (0.0 when untouched, inf
    when its shape changed)."""

    outputs: list[tuple[np.ndarray, list[np.ndarray]]]
    changed: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class NativeModule(Protocol):
    """`framework`; `layouts`: how each layout in LAYOUTS is built, in words (for the report);
    `immutable`: None, or why the framework's tensors cannot be changed in place (Keras)."""

    framework: str
    layouts: dict[str, str]
    immutable: str | None

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """The module on `x` and `state` (a nest of arrays as a previous `forward` returned it)
        converted to its own tensors, with no validation by the suite: whatever the module
        raises comes out. Returns y and the final state as a nest of arrays."""
        ...

    def call(self, x: np.ndarray, state: Any, layout: str = "contiguous", backward: bool = False,
             repeats: int = 1, seed: int = 0) -> NativeCall:  # fmt: skip
        """Convert `x` (in `layout`) and `state` to the framework's tensors once, then call the
        module `repeats` times with those same objects, each time followed by a backward pass of
        random upstream gradients on y and the final state when `backward`."""
        ...


class Differentiable(Protocol):
    """Optional: `NativeModule.differentiable(dtype)` ("float32", or "float64": the module's float64
    copy) returns the module as a differentiable function of NumPy arrays, for the checks that
    judge its backward and its state against itself (conformance `self_gradients`,
    `state_precision`; adapters/on_torch/selfgrad.py, on_keras/selfgrad.py). `dtype` is what it computes
    in; `names`/`shapes` its trainable parameters. The loss is Σ dy ⊙ y + Σ dfinal ⊙ final state
    (dfinal a nest like the state). A native module without it gets those checks skipped."""

    dtype: str
    names: list[str]
    shapes: list[tuple[int, ...]]

    def run(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, str, Any]:
        """y, the final state (NumPy), y's dtype name and the state's dtype names (a nest)."""
        ...

    def loss(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any, shift: list[Any] | None = None) -> float:
        """The loss with each parameter moved by `shift[i]` (None: unmoved) for this call only."""
        ...

    def gradients(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any) -> tuple[np.ndarray, Any, list[Any]]:
        """The framework's own d loss / dx, / d state (a nest like it), / d each parameter."""
        ...


def numpy_layout(x: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """The input (float32) in `layout` as NumPy, and the array the caller owns behind it: a copy
    for "contiguous" (the framework makes its own tensor of it), a strided view of a twice-as-long
    buffer, a transposed view of a time-first buffer."""
    x = np.asarray(x, np.float32)
    if layout == "contiguous":
        return x, x.copy()
    if layout == "strided":
        base = np.zeros((x.shape[0], 2 * x.shape[1], x.shape[2]), np.float32)
        base[:, ::2] = x
        return base[:, ::2], base
    if layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        return base.transpose(1, 0, 2), base
    raise ValueError(f"unknown layout {layout!r}")


def max_change(before: np.ndarray, after: np.ndarray) -> float:
    """Largest |after - before| over elements; NaN-aware (a NaN that appeared counts as inf)."""
    if before.shape != after.shape:
        return float("inf")
    if before.size == 0:
        return 0.0
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    if same.all():
        return 0.0
    diff = np.abs(before.astype(np.float64) - after.astype(np.float64))
    return float(np.nanmax(np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))))
