"""A state in its own nest (tuple, named tuple, list, dict of arrays), for the checks that judge a
module against itself from states it reached (selfconsistency.py): map over it, find each array's
batch axis, take rows, and the scale the gates are relative to. This module imports no framework."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.conformance.common import arrays


def nest_map(fn: Callable[..., Any], *nests: Any) -> Any:
    """`fn` on the arrays of nests of one structure (tuple, named tuple, list, dict), same nest out."""
    first = nests[0]
    if isinstance(first, dict):
        return {key: nest_map(fn, *(n[key] for n in nests)) for key in first}
    if isinstance(first, tuple | list):
        parts = [nest_map(fn, *items) for items in zip(*nests, strict=True)]
        return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)
    return fn(*nests)


def batch_axes(state: Any, batch: int, single: Any) -> Any:
    """The batch axis of each array of a state for `batch` rows, read from the same module's state
    for one row (`single`): the first axis of size `batch` there and 1 here; None for an array
    without one (e.g. a step counter), which every row shares."""

    def axis(a: Any, b: Any) -> int | None:
        a, b = np.asarray(a), np.asarray(b)
        found = [k for k in range(a.ndim) if a.shape[k] == batch and b.ndim == a.ndim and b.shape[k] == 1]
        return found[0] if found else None

    return nest_map(axis, state, single)


def state_rows(state: Any, axes: Any, index: Any) -> Any:
    """Rows `index` (a slice or an index array) of a state, along each array's batch axis."""
    if state is None:
        return None

    def take(a: Any, ax: int | None) -> Any:
        a = np.asarray(a)
        return a if ax is None else np.ascontiguousarray(a[(slice(None),) * ax + (index,)])

    return nest_map(take, state, axes)


def scale_of(*nests: Any) -> float:
    """max(1, the largest |value|) over the nests: the gates are relative to the output's scale."""
    tops = [float(np.nanmax(np.abs(a))) for n in nests for a in arrays(n) if a.size and np.isfinite(a).any()]
    return max([1.0, *tops])
