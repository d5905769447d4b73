"""Flax NNX modules for the JAX adapter's tests: a correct hand-written LSTM (a `jax.lax.scan` loop,
no validation of its own), planted defects (one bug each), and factories that are wrong in one way
each, for the load-time probe's one-line errors. `factory(input_size, hidden_size, *, rngs)`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def _uniform(rngs: nnx.Rngs, shape: tuple[int, ...], hidden_size: int) -> nnx.Param:
    bound = 1.0 / hidden_size**0.5  # nn.LSTM's initialisation
    return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))


class LSTM(nnx.Module):
    """i, f, g, o = split(x W + h U + b); c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c'). State (h, c)."""

    #: The planted defects below override these.
    drop_state = False
    stop_carry_gradient = False

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.hidden_size = hidden_size
        self.w = _uniform(rngs, (input_size, 4 * hidden_size), hidden_size)
        self.u = _uniform(rngs, (hidden_size, 4 * hidden_size), hidden_size)
        self.b = _uniform(rngs, (4 * hidden_size,), hidden_size)

    def __call__(self, x: jax.Array, state: Any = None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        if state is None or self.drop_state:
            h = c = jnp.zeros((x.shape[0], self.hidden_size), x.dtype)
        else:
            h, c = state
        u = self.u[...]

        def step(carry: tuple[jax.Array, jax.Array], xw: jax.Array) -> tuple[Any, jax.Array]:
            h, c = jax.lax.stop_gradient(carry) if self.stop_carry_gradient else carry
            i, f, g, o = jnp.split(xw + h @ u, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        xw = jnp.swapaxes(x @ self.w[...] + self.b[...], 0, 1)
        (h, c), ys = jax.lax.scan(step, (h, c), xw)
        return jnp.swapaxes(ys, 0, 1), (h, c)


def lstm(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return LSTM(input_size, hidden_size, rngs=rngs)


# --- planted defects: each one bug ---------------------------------------------------------------


class DroppedState(LSTM):
    """The state passed in is ignored: every call starts from zeros."""

    drop_state = True


class StoppedCarry(LSTM):
    """jax.lax.stop_gradient on the carry between steps: the forward is right, the backward stops at
    each step (no gradient through time, none to the initial state)."""

    stop_carry_gradient = True


def dropped_state(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return DroppedState(input_size, hidden_size, rngs=rngs)


def stopped_carry(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return StoppedCarry(input_size, hidden_size, rngs=rngs)


# --- factories the load-time probe refuses, one way each -----------------------------------------

NOT_CALLABLE = 3


def no_arguments() -> LSTM:
    return LSTM(5, 8, rngs=nnx.Rngs(0))


def no_rngs(input_size: int, hidden_size: int) -> LSTM:
    return LSTM(input_size, hidden_size, rngs=nnx.Rngs(0))


def not_a_module(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> str:
    return "lstm"


def doubles_hidden(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return LSTM(input_size, 2 * hidden_size, rngs=rngs)


class OnlyY(LSTM):
    def __call__(self, x: jax.Array, state: Any = None) -> Any:  # type: ignore[override]
        return super().__call__(x, state)[0]


def only_y(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return OnlyY(input_size, hidden_size, rngs=rngs)


class NoStateArgument(LSTM):
    def __call__(self, x: jax.Array) -> Any:  # type: ignore[override]
        return super().__call__(x)


def no_state_argument(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return NoStateArgument(input_size, hidden_size, rngs=rngs)


class RejectsState(LSTM):
    def __call__(self, x: jax.Array, state: Any = None) -> Any:
        if state is not None:
            raise ValueError("this module takes no initial state")
        return super().__call__(x)


def rejects_state(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return RejectsState(input_size, hidden_size, rngs=rngs)


class ReshapesState(LSTM):
    """Hands back (h, c) stacked into one array: another form than the one it was given."""

    def __call__(self, x: jax.Array, state: Any = None) -> Any:
        if state is not None and not isinstance(state, tuple):
            state = (state[0], state[1])
        y, (h, c) = super().__call__(x, state)
        return y, jnp.stack([h, c]) if state is None else (h, c)


def reshapes_state(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return ReshapesState(input_size, hidden_size, rngs=rngs)


class TimeFirst(LSTM):
    """Reads x as (time, batch, features): its state has the probe's time (7) as its batch."""

    def __call__(self, x: jax.Array, state: Any = None) -> Any:
        y, final = super().__call__(jnp.swapaxes(x, 0, 1), state)
        return jnp.swapaxes(y, 0, 1), final


def time_first(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return TimeFirst(input_size, hidden_size, rngs=rngs)


class EagerOnly(LSTM):
    """Python control flow on an array's value: runs eagerly, not under jax.jit."""

    def __call__(self, x: jax.Array, state: Any = None) -> Any:
        if float(jnp.max(jnp.abs(x))) > 1e6:
            x = x / 1e6
        return super().__call__(x, state)


def eager_only(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return EagerOnly(input_size, hidden_size, rngs=rngs)
