"""The JAX built-ins `flax-lstm`, `flax-gru`, `flax-rnn`: `nnx.RNN` over Flax's own cells
(`nnx.LSTMCell`, `nnx.GRUCell`, `nnx.SimpleCell`, their default initialisation) in the suite's
`module(x, state=None, seq_lengths=None) -> (y, state)` convention, batch first.

With `num_layers`/`bidirectional` (the keywords nn.LSTM takes; conformance's `stacked` and
`bidirectional`), each layer is an `nnx.RNN`, or an `nnx.Bidirectional` of two, and the state is
the list of each layer's and direction's carry in PyTorch's order (l0, l0_reverse, l1, ...); the
cells are in `cells`, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

Cell = Callable[[int, int, nnx.Rngs], nnx.Module]


def _zeros(cell: nnx.Module, x: jax.Array) -> Any:
    """The cell's zero carry in x's dtype (a fresh Rngs: the cell's own cannot move under a trace)."""
    carry = cell.initialize_carry((x.shape[0], x.shape[-1]), rngs=nnx.Rngs(0))
    return jax.tree.map(lambda a: a.astype(x.dtype), carry)


class FlaxRNN(nnx.Module):
    """One `nnx.RNN` over a Flax cell; the state is the cell's own carry (LSTM: `(c, h)`, Flax's order)."""

    def __init__(self, cell: nnx.Module) -> None:
        self.cell = cell
        self.rnn = nnx.RNN(cell, return_carry=True)

    def __call__(self, x: jax.Array, state: Any = None, seq_lengths: Any = None) -> tuple[jax.Array, Any]:
        """With `seq_lengths`, row b is read up to seq_lengths[b] >= 1 steps and its state is the one
        after them (nnx.RNN's masking; its outputs past the length are not zeroed)."""
        carry, y = self.rnn(x, initial_carry=_zeros(self.cell, x) if state is None else state, seq_lengths=seq_lengths)
        return y, carry


class FlaxStack(nnx.Module):
    """`num_layers` layers of `nnx.RNN` (each an `nnx.Bidirectional` when `bidirectional`), the
    outputs of one the inputs of the next; the state is a list of carries in PyTorch's order."""

    def __init__(self, make: Cell, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                 rngs: nnx.Rngs) -> None:  # fmt: skip
        directions = 2 if bidirectional else 1
        cells, layers = [], []
        for layer in range(num_layers):
            width = input_size if layer == 0 else directions * hidden_size
            pair = [make(width, hidden_size, rngs) for _ in range(directions)]
            cells += pair
            rnns = [nnx.RNN(c, return_carry=True) for c in pair]
            layers.append(nnx.Bidirectional(*rnns, return_carry=True) if bidirectional else rnns[0])
        self.cells, self.layers, self.directions = nnx.List(cells), nnx.List(layers), directions

    def __call__(self, x: jax.Array, state: Any = None, seq_lengths: Any = None) -> tuple[jax.Array, list[Any]]:
        finals: list[Any] = []
        for k, layer in enumerate(self.layers):
            cells = self.cells[k * self.directions : (k + 1) * self.directions]
            given = (
                [_zeros(c, x) for c in cells] if state is None else list(state[len(finals) : len(finals) + len(cells)])
            )
            carry, x = layer(
                x, initial_carry=tuple(given) if self.directions == 2 else given[0], seq_lengths=seq_lengths
            )
            finals += list(carry) if self.directions == 2 else [carry]
        return x, finals


def _factory(make: Cell, name: str, doc: str) -> Callable[..., nnx.Module]:
    def factory(input_size: int, hidden_size: int, *, rngs: nnx.Rngs, num_layers: int = 1,
                bidirectional: bool = False) -> nnx.Module:  # fmt: skip
        if num_layers == 1 and not bidirectional:
            return FlaxRNN(make(input_size, hidden_size, rngs))
        return FlaxStack(make, input_size, hidden_size, num_layers, bidirectional, rngs)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


flax_lstm = _factory(
    lambda i, h, rngs: nnx.LSTMCell(i, h, rngs=rngs), "flax_lstm", "`nnx.RNN(nnx.LSTMCell)`: state `(c, h)`."
)
flax_gru = _factory(
    lambda i, h, rngs: nnx.GRUCell(i, h, rngs=rngs), "flax_gru", "`nnx.RNN(nnx.GRUCell)` (no bh_n): state h."
)
flax_rnn = _factory(
    lambda i, h, rngs: nnx.SimpleCell(i, h, rngs=rngs), "flax_rnn", "`nnx.RNN(nnx.SimpleCell)` (tanh): state h."
)

#: The built-ins' factories (named directly or as `jax:...builtins:flax_lstm`): their predictions run
#: padded (`network.bucket`), exact for `nnx.RNN`; a factory that wraps one is called unpadded.
BUILTIN_FACTORIES = (flax_lstm, flax_gru, flax_rnn)
