"""Equinox's own cells (`eqx.nn.LSTMCell`, `eqx.nn.GRUCell`) behind the suite's Flax NNX module
(`module(x, state=None, seq_lengths=None) -> (y, state)`, batch first), through a short glue.

An Equinox cell is one time step of one example; `EqxRNN` holds it and adds what the suite calls.
The cell's arrays (`eqx.partition`) are one `nnx.Param`, so training, the float64 and
low-precision copies and `nnx.split`/`nnx.merge` reach them; its static half (sizes, `use_bias`)
stays a plain attribute; `eqx.combine` rebuilds the cell, `jax.vmap` runs it over the batch and
`jax.lax.scan` over time. The state is the cell's own: `(h, c)` for the LSTM, `h` for the GRU, each
(batch, hidden). `seq_lengths` (as `nnx.RNN` takes it: row b stops at its length) opens padded
batches. Initialisation is Equinox's (uniform ±1/√hidden, as `nn.LSTM`), its key drawn from the
`nnx.Rngs` the suite seeds from the cell's seed.

Equinox stores its weights as PyTorch does, `weight_ih` (gates·hidden, input) and `weight_hh` in
blocks i,f,g,o (LSTM) or r,z,n (GRU), but with one `bias` (gates·hidden) where PyTorch has bias_ih
and bias_hh, plus, in the GRU, `bias_n`: the candidate's recurrent bias inside the reset,
n = tanh(x W_n + b_n + r ⊙ (h U_n + bias_n)). So its LSTM is the canonical one without bh_*, and its
GRU is the reset-after GRU (the suite's default form, PyTorch's) with bh_r and bh_z folded into b.
`export_weights()`/`import_weights()` map this onto the canonical layout (adapters/layout.py) and
open the weight checks (parity with the float64 reference, gradients, transplants to torch and Keras).

Glue size (code lines, without docstrings, comments and imports): 19 for the module and its
forward (3 of them `seq_lengths`), 20 for the canonical export and import (`BLOCKS` included),
2 per factory.

What the suite says (equinox 0.13.8, jax 0.10.2, seed 0, 2-core CPU): `equinox_lstm` passes every
conformance check it runs (21 passed; stacked, bidirectional, device_parity skip; forward parity
1.7e-07, gradients 2.7e-07, transplant 1.2e-07, variable_length 1.5e-07) and its smoke behaviour row
(34 passed, 3 xfailed: count_steps.longer, count_last.lengths,
moving_average_stateful.stateless_window1; 225 s of training). `equinox_gru` passes the same
conformance checks but `round_trip`: Equinox's GRU has no place for bh_r and bh_z apart from b_r and
b_z, so random canonical weights imported then exported come back with b_r + bh_r in b_r and
bh_r = 0 (re-exported weights change by 0.75 = max |bh_z| drawn; the outputs are the same: 0 apart
after the import). The suite's layouts have a GRU without bh_n (`no_bhn`, Flax's) but none with
bh_n alone.

    pytest benchmarks --tier smoke --adapter jax:examples.equinox_lstm:equinox_lstm -k "equinox_lstm-"
    pytest benchmarks --tier smoke --adapter jax:examples.equinox_lstm:equinox_gru -k "equinox_gru-"

Equinox is not in the suite's lock: `pip install equinox` beside it (it brings jaxtyping and
wadler_lindig, and keeps jax and jaxlib at the lock's 0.10.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

#: The gate blocks in Equinox's stacked weights (PyTorch's order), by the canonical gates' names.
BLOCKS: dict[type, tuple[str, ...]] = {eqx.nn.LSTMCell: ("i", "f", "g", "o"), eqx.nn.GRUCell: ("r", "z", "n")}


class EqxRNN(nnx.Module):
    def __init__(self, cell: eqx.Module) -> None:
        arrays, self.static = eqx.partition(cell, eqx.is_inexact_array)
        self.params = nnx.Param(arrays)

    def cell(self) -> Any:
        return eqx.combine(self.params.get_value(), self.static)

    def __call__(self, x: jax.Array, state: Any = None, seq_lengths: jax.Array | None = None) -> tuple[jax.Array, Any]:
        cell, (batch, time, _) = self.cell(), x.shape
        if state is None:
            zeros = jnp.zeros((batch, cell.hidden_size), x.dtype)
            state = (zeros, zeros) if isinstance(cell, eqx.nn.LSTMCell) else zeros
        lengths = jnp.full((batch,), time) if seq_lengths is None else jnp.asarray(seq_lengths)

        def step(carry: Any, inputs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            x_t, t = inputs
            new = jax.vmap(cell)(x_t, carry)  # the cell is one example's step: vmap it over the batch
            valid = (t < lengths)[:, None]  # past its length a row keeps its state
            return jax.tree.map(lambda n, o: jnp.where(valid, n, o), new, carry), jax.tree.leaves(new)[0]  # y is h

        state, ys = jax.lax.scan(step, state, (jnp.swapaxes(x, 0, 1), jnp.arange(time)))
        return jnp.swapaxes(ys, 0, 1), state

    def export_weights(self) -> dict[str, np.ndarray]:
        """The canonical layout: per gate W (input, hidden), U (hidden, hidden), b (hidden,); the
        GRU's bh (its bias_n as bh_n, 0 for bh_r and bh_z, which Equinox folds into b)."""
        cell = self.cell()
        gates = BLOCKS[type(cell)]
        out = {f"{role}_{gate}": np.asarray(block.T)
               for role, whole in (("W", cell.weight_ih), ("U", cell.weight_hh), ("b", cell.bias))
               for gate, block in zip(gates, jnp.split(whole, len(gates)), strict=True)}  # fmt: skip
        if isinstance(cell, eqx.nn.GRUCell):  # bh_r, bh_z have no place of their own: 0 here, folded into b
            out |= {f"bh_{g}": np.zeros_like(out[f"b_{g}"]) for g in "rz"} | {"bh_n": np.asarray(cell.bias_n)}
        return out

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """The canonical layout in; each recurrent bias bh_* but a GRU's bh_n is folded into b."""
        arrays, gates, gru = self.params.get_value(), BLOCKS[type(self.static)], isinstance(self.static, eqx.nn.GRUCell)

        def stack(role: str, bh: bool = False) -> np.ndarray:
            fold = lambda g: np.asarray(weights.get(f"bh_{g}", 0.0)) if bh and not (gru and g == "n") else 0.0  # noqa: E731
            return np.concatenate([(np.asarray(weights[f"{role}_{g}"]) + fold(g)).T for g in gates])

        new = [stack("W"), stack("U"), stack("b", bh=True)]
        new += [np.asarray(weights.get("bh_n", np.zeros(arrays.bias_n.shape)))] if gru else []
        fields = lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n) if gru else (c.weight_ih, c.weight_hh, c.bias)  # noqa: E731
        cast = [jnp.asarray(n, o.dtype) for n, o in zip(new, fields(arrays), strict=True)]
        self.params.set_value(eqx.tree_at(fields, arrays, cast))


def equinox_lstm(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> EqxRNN:
    return EqxRNN(eqx.nn.LSTMCell(input_size, hidden_size, key=rngs.params()))


def equinox_gru(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> EqxRNN:
    return EqxRNN(eqx.nn.GRUCell(input_size, hidden_size, key=rngs.params()))
