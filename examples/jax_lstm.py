"""A plain LSTM in Flax NNX, written as a `jax.lax.scan` over the time steps.

    i, f, g, o = split(x_t W + b + h U)       (gate blocks in PyTorch's order, W (input, 4 hidden))
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)        h' = σ(o) ⊙ tanh(c')

Batch first: x (batch, time, input_size) -> y (batch, time, hidden_size); the state is `(h, c)`,
each (batch, hidden) (`nnx.LSTMCell` carries `(c, h)`: the order is the module's own choice, the
suite hands back whatever it returned). Initialisation is `nn.LSTM`'s (uniform ±1/√hidden), drawn
from the `nnx.Rngs` the suite seeds from the cell's seed. The suite reads no JAX weights yet, so
the weight checks skip with the reason; its own gradient is checked (`self_gradients`).

    pytest benchmarks --tier smoke --adapter jax:examples.jax_lstm:jax_lstm -k "jax_lstm-"
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

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

    def __call__(self, x: jax.Array, state: State | None = None) -> tuple[jax.Array, State]:
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

        def step(carry: State, xw: jax.Array) -> tuple[State, jax.Array]:
            h, c = carry
            i, f, g, o = jnp.split(xw + h @ u, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        inputs = jnp.swapaxes(x @ self.kernel[...] + self.bias[...], 0, 1)  # (time, batch, 4 hidden)
        (h, c), ys = jax.lax.scan(step, (h, c), inputs)
        return jnp.swapaxes(ys, 0, 1), (h, c)


def jax_lstm(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> JaxLSTM:
    return JaxLSTM(input_size, hidden_size, rngs=rngs)
