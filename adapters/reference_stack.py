"""Stacks and directions on top of the float64 reference (adapters/reference.py): a multi-layer
and/or bidirectional layer composed layer by layer, in PyTorch's layout.

    layer 0 reads x; layer k > 0 reads layer k-1's output (both directions concatenated);
    the forward direction is `reference.forward`; the backward one is `reference.forward` on the
    time-reversed input, its outputs reversed back, so that y_t of both directions is about step t;
    the output is [forward | backward] on the feature axis (PyTorch's `nn.LSTM(bidirectional=True)`,
    Keras's `Bidirectional(merge_mode="concat")`);
    the state is (h, c) (LSTM) or h, each (num_layers * num_directions, batch, hidden), row
    `layer * num_directions + direction` (direction 0 forward, 1 backward), as `nn.LSTM`'s.

Weights are a dict of canonical weights (adapters/reference.py) per layer and direction, keyed by
PyTorch's parameter suffix: `l0`, `l0_reverse`, `l1`, ... (`weight_ih_l1_reverse` is layer 1's
backward input kernel). Layer 0's input size is the stack's; the others' is num_directions * hidden.
This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.base import AdapterError

StackWeights = dict[str, ref.Weights]


class NotStackable(AdapterError):
    """The adapter or its factory cannot build this stack (no `num_layers`/`bidirectional`
    keyword, a layer that cannot be wrapped); the message is the skip reason."""


@runtime_checkable
class StackLayer(Protocol):
    """A stack as conformance sees it: `forward(x, state=None) -> (y, state)` with y (batch, time,
    num_directions * hidden) and the state in the layout above; `import_weights` takes
    `StackWeights`."""

    cell: str
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]: ...

    def import_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None: ...


def stack_keywords(factory: Any, target: str, input_size: int, hidden_size: int, num_layers: int,
                   bidirectional: bool) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The keywords a stack of `num_layers` / `bidirectional` passes to a factory (only those
    that differ from one forward layer, as nn.LSTM takes them) and the call in words;
    NotStackable when the factory takes one of them not."""
    from rnn_behaviour.adapters.custom import takes_keyword

    keywords: dict[str, Any] = {}
    if num_layers != 1:
        keywords["num_layers"] = num_layers
    if bidirectional:
        keywords["bidirectional"] = True
    call = f"{target}({input_size}, {hidden_size}, {', '.join(f'{k}={v!r}' for k, v in keywords.items())})"
    for keyword in keywords:
        if not takes_keyword(factory, keyword):
            raise NotStackable(f"{target} takes no {keyword} keyword (nn.LSTM's); nothing to stack")
    return keywords, call


def suffix(layer: int, direction: int) -> str:
    """PyTorch's parameter suffix: `l1`, `l0_reverse`."""
    return f"l{layer}" + ("_reverse" if direction else "")


def units(num_layers: int, bidirectional: bool) -> Iterator[tuple[int, int, int]]:
    """(layer, direction, row of the state) in PyTorch's order."""
    n = 2 if bidirectional else 1
    for layer in range(num_layers):
        for direction in range(n):
            yield layer, direction, layer * n + direction


def random_stack_weights(
    cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, rng: np.random.Generator
) -> StackWeights:
    """`reference.random_weights` for every layer and direction (its own draw each)."""
    n = 2 if bidirectional else 1
    return {
        suffix(layer, direction): ref.random_weights(
            cell, input_size if layer == 0 else n * hidden_size, hidden_size, rng
        )
        for layer, direction, _ in units(num_layers, bidirectional)
    }


def random_stack_state(
    cell: str, batch: int, hidden_size: int, num_layers: int, bidirectional: bool, rng: np.random.Generator
) -> Any:
    """A float32 state in the stacked layout: h in (-1, 1), c of either sign and beyond 1."""
    rows = num_layers * (2 if bidirectional else 1)
    h = np.tanh(rng.normal(0.0, 1.0, (rows, batch, hidden_size))).astype(np.float32)
    if cell == "lstm":
        return h, rng.normal(0.0, 1.0, (rows, batch, hidden_size)).astype(np.float32)
    return h


def parts(cell: str, state: Any, row: int) -> Any:
    """One layer-direction's canonical state (`reference.forward`'s) out of the stacked one."""
    if state is None:
        return None
    arrays = list(state) if isinstance(state, tuple | list) else [state]
    return ref.pack_state(cell, [np.asarray(a)[row] for a in arrays])


def direction_forward(cell: str, x: np.ndarray, weights: Mapping[str, np.ndarray], state: Any,
                      reverse: bool, variant: str = "") -> tuple[np.ndarray, Any]:  # fmt: skip
    """One direction of one layer: the backward one reads x time-reversed and its outputs are
    reversed back."""
    if not reverse:
        return ref.forward(cell, x, weights, state, variant=variant)
    y, final = ref.forward(cell, np.asarray(x)[:, ::-1], weights, state, variant=variant)
    return y[:, ::-1], final


def forward(cell: str, x: np.ndarray, weights: Mapping[str, Mapping[str, np.ndarray]], state: Any,
            num_layers: int, bidirectional: bool, variant: str = "") -> tuple[np.ndarray, Any]:  # fmt: skip
    """The stack in float64: y (batch, time, num_directions * hidden) of the last layer and the
    final state in the stacked layout (None = zeros)."""
    inputs = np.asarray(x, np.float64)
    n = 2 if bidirectional else 1
    finals: list[Any] = []
    for layer in range(num_layers):
        outputs = []
        for direction in range(n):
            row = layer * n + direction
            y, final = direction_forward(cell, inputs, weights[suffix(layer, direction)], parts(cell, state, row),
                                         reverse=bool(direction), variant=variant)  # fmt: skip
            outputs.append(y)
            finals.append(final)
        inputs = np.concatenate(outputs, axis=-1)
    return inputs, stack_state(cell, finals)


def stack_state(cell: str, finals: list[Any]) -> Any:
    """Per layer-direction canonical states (in row order) -> the stacked layout."""
    if cell == "lstm":
        return np.stack([f[0] for f in finals]), np.stack([f[1] for f in finals])
    return np.stack(finals)


def check_stack_weights(cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                        weights: Mapping[str, Mapping[str, Any]]) -> StackWeights:  # fmt: skip
    """The weights as arrays per suffix, or an AdapterError naming a missing or extra suffix (and,
    through `reference.check_weights`, a missing or misshapen key)."""
    n = 2 if bidirectional else 1
    expected = [suffix(layer, direction) for layer, direction, _ in units(num_layers, bidirectional)]
    problems = [f"missing {s}" for s in expected if s not in weights] + [
        f"unexpected {s}" for s in weights if s not in expected
    ]
    if problems:
        raise AdapterError(f"stack weights ({num_layers} layer(s), {n} direction(s)): {'; '.join(problems)}")
    return {
        s: ref.check_weights(cell, input_size if s.startswith("l0") else n * hidden_size, hidden_size, weights[s])
        for s in expected
    }
