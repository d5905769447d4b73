"""Flax NNX modules for the JAX adapter's tests: a correct hand-written LSTM (a `jax.lax.scan` loop,
no validation of its own), planted defects (one bug each), and factories that are wrong in one way
each, for the load-time probe's one-line errors. `factory(input_size, hidden_size, *, rngs)`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.reference import to_layout


def _uniform(rngs: nnx.Rngs, shape: tuple[int, ...], hidden_size: int) -> nnx.Param:
    bound = 1.0 / hidden_size**0.5  # nn.LSTM's initialisation
    return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))


class LSTM(nnx.Module):
    """i, f, g, o = split(x W + h U + b); c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c'). State (h, c).

    Its weights in the canonical layout (adapters/reference.py) by `export_weights()` and
    `import_weights()`: one bias, so no bh_* (import folds b + bh). With `seq_lengths`, row b's
    state is updated only for its first seq_lengths[b] steps (outputs past them are not zeroed)."""

    #: The planted defects below override these.
    drop_state = False
    stop_carry_gradient = False
    gate_order = "ifgo"
    mask_padding = True

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.hidden_size = hidden_size
        self.w = _uniform(rngs, (input_size, 4 * hidden_size), hidden_size)
        self.u = _uniform(rngs, (hidden_size, 4 * hidden_size), hidden_size)
        self.b = _uniform(rngs, (4 * hidden_size,), hidden_size)

    def __call__(
        self, x: jax.Array, state: Any = None, seq_lengths: Any = None
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        if state is None or self.drop_state:
            h = c = jnp.zeros((x.shape[0], self.hidden_size), x.dtype)
        else:
            h, c = state
        u = self.u[...]

        def step(carry: tuple[jax.Array, jax.Array], inputs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            xw, t = inputs
            h, c = jax.lax.stop_gradient(carry) if self.stop_carry_gradient else carry
            gates = dict(zip(self.gate_order, jnp.split(xw + h @ u, 4, axis=-1), strict=True))
            c_new = jax.nn.sigmoid(gates["f"]) * c + jax.nn.sigmoid(gates["i"]) * jnp.tanh(gates["g"])
            h_new = jax.nn.sigmoid(gates["o"]) * jnp.tanh(c_new)
            if seq_lengths is not None and self.mask_padding:
                valid = t < seq_lengths[:, None]
                h_new, c_new = jnp.where(valid, h_new, h), jnp.where(valid, c_new, c)
            return (h_new, c_new), h_new

        xw = jnp.swapaxes(x @ self.w[...] + self.b[...], 0, 1)
        (h, c), ys = jax.lax.scan(step, (h, c), (xw, jnp.arange(x.shape[1])))
        return jnp.swapaxes(ys, 0, 1), (h, c)

    def export_weights(self) -> dict[str, np.ndarray]:
        out = {}
        for role, param in (("W", self.w), ("U", self.u), ("b", self.b)):
            for gate, block in zip("ifgo", np.split(np.asarray(param[...]), 4, axis=-1), strict=True):
                out[f"{role}_{gate}"] = block
        return out

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        weights = to_layout("lstm", weights, False)
        for role, param in (("W", self.w), ("U", self.u), ("b", self.b)):
            stacked = np.concatenate([np.asarray(weights[f"{role}_{gate}"]) for gate in "ifgo"], axis=-1)
            param.set_value(jnp.asarray(stacked, param[...].dtype))


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


class SwappedGates(LSTM):
    """The step reads the first block as f and the second as i: the input and forget gates swapped
    (its export and import keep the canonical order, so the weights say i where it computes f)."""

    gate_order = "figo"


class PaddedSteps(LSTM):
    """Takes seq_lengths but lets the padded steps update the state: a row's final state is the one
    after all T steps, padding included."""

    mask_padding = False


def dropped_state(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return DroppedState(input_size, hidden_size, rngs=rngs)


def stopped_carry(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return StoppedCarry(input_size, hidden_size, rngs=rngs)


def swapped_gates(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return SwappedGates(input_size, hidden_size, rngs=rngs)


def padded_steps(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> LSTM:
    return PaddedSteps(input_size, hidden_size, rngs=rngs)


# --- modules the probe accepts with a capability off, each for its one-line reason ---------------


class TwoCells(nnx.Module):
    """Two nnx.RNN(nnx.LSTMCell) layers, one after the other, and no export: weight conformance
    cannot tell which cell is the layer. State: the list of both carries."""

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.cells = nnx.List([nnx.LSTMCell(input_size, hidden_size, rngs=rngs),
                               nnx.LSTMCell(hidden_size, hidden_size, rngs=rngs)])  # fmt: skip
        self.rnns = nnx.List([nnx.RNN(cell, return_carry=True) for cell in self.cells])

    def __call__(self, x: jax.Array, state: Any = None, seq_lengths: Any = None) -> tuple[jax.Array, list[Any]]:
        finals = []
        for k, (cell, rnn) in enumerate(zip(self.cells, self.rnns, strict=True)):
            carry = cell.initialize_carry((x.shape[0], x.shape[-1]), rngs=nnx.Rngs(0)) if state is None else state[k]
            carry, x = rnn(x, initial_carry=carry, seq_lengths=seq_lengths)
            finals.append(carry)
        return x, finals


class ExtraScale(nnx.Module):
    """nnx.RNN(nnx.LSTMCell) with a trainable scale on its input: a parameter outside the cell."""

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.scale = nnx.Param(jnp.ones((input_size,)))
        self.cell = nnx.LSTMCell(input_size, hidden_size, rngs=rngs)
        self.rnn = nnx.RNN(self.cell, return_carry=True)

    def __call__(self, x: jax.Array, state: Any = None, seq_lengths: Any = None) -> tuple[jax.Array, Any]:
        carry = self.cell.initialize_carry((x.shape[0], x.shape[-1]), rngs=nnx.Rngs(0)) if state is None else state
        carry, y = self.rnn(x * self.scale[...], initial_carry=carry, seq_lengths=seq_lengths)
        return y, carry


class NoLengths(nnx.Module):
    """nnx.RNN(nnx.LSTMCell) whose __call__ takes no seq_lengths: weights yes, padded batches no."""

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> None:
        self.cell = nnx.LSTMCell(input_size, hidden_size, rngs=rngs)
        self.rnn = nnx.RNN(self.cell, return_carry=True)

    def __call__(self, x: jax.Array, state: Any = None) -> tuple[jax.Array, Any]:
        carry = self.cell.initialize_carry((x.shape[0], x.shape[-1]), rngs=nnx.Rngs(0)) if state is None else state
        carry, y = self.rnn(x, initial_carry=carry)
        return y, carry


def two_cells(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> TwoCells:
    return TwoCells(input_size, hidden_size, rngs=rngs)


def extra_scale(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> ExtraScale:
    return ExtraScale(input_size, hidden_size, rngs=rngs)


def no_lengths(input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> NoLengths:
    return NoLengths(input_size, hidden_size, rngs=rngs)


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
