"""A plain LSTM in Flax NNX, written as a `jax.lax.scan` over the time steps.

    i, f, g, o = split(x_t W + b + h U)       (gate blocks in PyTorch's order, W (input, 4 hidden))
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)        h' = σ(o) ⊙ tanh(c')

Batch first: x (batch, time, input_size) -> y (batch, time, hidden_size); the state is `(h, c)`,
each (batch, hidden) (`nnx.LSTMCell` carries `(c, h)`: the order is the module's own choice, the
suite hands back whatever it returned). Initialisation is `nn.LSTM`'s (uniform ±1/√hidden), drawn
from the `nnx.Rngs` the suite seeds from the cell's seed.

Two short additions open every conformance check to it: `export_weights()`/`import_weights()` in
the canonical layout (adapters/reference.py: `W_i`, `U_i`, `b_i`, ... per gate; 12 lines here, the
weight checks: parity with the float64 reference, gradients, transplants into torch and Keras) and
a `seq_lengths` keyword (the carry stops at each row's length, as `nnx.RNN` takes it: padded
batches, `variable_length`). A module built on one of Flax's own cells (`nnx.LSTMCell`,
`nnx.GRUCell`, ...) needs neither: the suite reads the cell's weights itself.

    pytest benchmarks --tier smoke --adapter jax:examples.jax_lstm:jax_lstm -k "jax_lstm-"
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

GATES = ("i", "f", "g", "o")  # the canonical gate names, in the order of the blocks below
State = tuple[jax.Array, jax.Array]


class JaxLSTM(nnx.Module):
    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / hidden_size**0.5

        def uniform(*shape: int) -> nnx.Param:
            return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))

        self.kernel = uniform(input_size, 4 * hidden_size)
        self.recurrent_kernel = uniform(hidden_size, 4 * hidden_size)
        self.bias = uniform(4 * hidden_size)

    def __call__(
        self, x: jax.Array, state: State | None = None, seq_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, State]:
        batch, _, features = x.shape
        if features != self.input_size:
            raise ValueError(f"input has {features} features per step; expected input_size {self.input_size}")
        expected = (batch, self.hidden_size)
        if state is None:
            h = c = jnp.zeros(expected, x.dtype)
        else:
            if len(state) != 2 or any(tuple(s.shape) != expected for s in state):
                raise ValueError(
                    f"state must be (h, c), each of shape {expected}; got {[tuple(s.shape) for s in state]}"
                )
            h, c = state
        u = self.recurrent_kernel[...]

        lengths = jnp.full((batch,), x.shape[1]) if seq_lengths is None else jnp.asarray(seq_lengths)

        def step(carry: State, inputs: tuple[jax.Array, jax.Array]) -> tuple[State, jax.Array]:
            h, c = carry
            xw, t = inputs
            i, f, g, o = jnp.split(xw + h @ u, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            valid = (t < lengths)[:, None]  # past its length a row keeps its state
            return (jnp.where(valid, h_new, h), jnp.where(valid, c_new, c)), h_new

        inputs = jnp.swapaxes(x @ self.kernel[...] + self.bias[...], 0, 1)  # (time, batch, 4 hidden)
        (h, c), ys = jax.lax.scan(step, (h, c), (inputs, jnp.arange(x.shape[1])))
        return jnp.swapaxes(ys, 0, 1), (h, c)

    def export_weights(self) -> dict[str, np.ndarray]:
        """The canonical layout: per gate W (input, hidden), U (hidden, hidden), b (hidden,)."""
        blocks = {"W": self.kernel[...], "U": self.recurrent_kernel[...], "b": self.bias[...]}
        return {f"{role}_{gate}": np.asarray(part) for role, whole in blocks.items()
                for gate, part in zip(GATES, jnp.split(whole, 4, axis=-1), strict=True)}  # fmt: skip

    def import_weights(self, weights: dict[str, np.ndarray]) -> None:
        """The canonical layout in; a recurrent bias bh_* (PyTorch's bias_hh) is folded into b."""
        given = {**weights, **{f"b_{g}": weights[f"b_{g}"] + weights.get(f"bh_{g}", 0.0) for g in GATES}}
        for role, param in (("W", self.kernel), ("U", self.recurrent_kernel), ("b", self.bias)):
            whole = np.concatenate([np.asarray(given[f"{role}_{g}"]) for g in GATES], axis=-1)
            param[...] = jnp.asarray(whole, param[...].dtype)  # in the parameter's own dtype (float16 too)


def jax_lstm(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> JaxLSTM:
    return JaxLSTM(input_size, hidden_size, rngs=rngs)
