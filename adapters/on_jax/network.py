"""The JAX adapter's model as it is trained and called: `Net` ([per-step nnx.Linear] -> the
module -> nnx.Linear head), the budget's loss, and the jitted programs (`forward_of`, one optimizer
step `step_of`, one epoch of steps as a `jax.lax.scan` `epoch_of`), cached by the model's graph and
the budget. `bucket` is the length a built-in's prediction runs at (`model.JaxModel._predict`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from rnn_behaviour.adapters.on_jax.probe import Factory
from rnn_behaviour.tasks.base import UNSCORED, ModelSpec


class Net(nnx.Module):
    """[per-step nnx.Linear] -> the factory's module -> nnx.Linear head."""

    def __init__(self, spec: ModelSpec, factory: Factory, rngs: nnx.Rngs) -> None:
        width = spec.input_size
        projection = nnx.Linear(width, spec.input_projection, rngs=rngs) if spec.input_projection else None
        self.proj = nnx.data(projection)
        width = spec.input_projection or width
        self.rnn = factory(width, spec.hidden_size, rngs=rngs)
        self.head = nnx.Linear(spec.hidden_size, spec.output_size, rngs=rngs)
        self.return_sequences, self.tanh = spec.return_sequences, spec.head == "tanh"

    def __call__(
        self, x: jax.Array, state: Any = None, last_only: bool | None = None, lengths: jax.Array | None = None
    ) -> tuple[jax.Array, Any]:
        """`lengths` (a built-in's padded prediction, `bucket`): row b's real steps, its state the one after them."""
        if self.proj is not None:
            x = self.proj(x)
        y, state = self.rnn(x, state) if lengths is None else self.rnn(x, state, seq_lengths=lengths)
        if not self.return_sequences if last_only is None else last_only:
            y = y[:, -1] if lengths is None else y[jnp.arange(y.shape[0]), lengths - 1]
        out = self.head(y)
        return (jnp.tanh(out) if self.tanh else out), state


def loss_function(loss: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The budget's loss as torch computes it: cross-entropy on logits averaged over the scored
    targets (`nn.CrossEntropyLoss`'s `ignore_index=-100` is tasks.base.UNSCORED), else the mean
    squared error over every element."""
    if loss != "crossentropy":
        return lambda out, y: jnp.mean((out - y) ** 2)

    def crossentropy(out: jax.Array, y: jax.Array) -> jax.Array:
        logits, labels = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        scored = labels != UNSCORED
        each = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(scored, labels, 0))
        return jnp.sum(jnp.where(scored, each, 0.0)) / jnp.sum(scored)

    return crossentropy


# The jitted functions are cached by the model's graph (its structure, not its weights) and the
# budget: jax.jit reuses a compilation for the same function and shapes, so the models of other
# seeds, restarts and tasks of the same shapes compile once (about 1-2 s per step function here).


@functools.lru_cache(maxsize=64)
def forward_of(graphdef: Any, softmax: bool) -> Callable[..., Any]:
    @functools.partial(jax.jit, static_argnums=4)
    def forward(
        params: Any, rest: Any, x: jax.Array, state: Any, last_only: bool | None, lengths: Any = None
    ) -> tuple[jax.Array, Any]:
        out, final = nnx.merge(graphdef, params, rest)(x, state, last_only, lengths)
        return (jax.nn.softmax(out, axis=-1) if softmax else out), final

    return forward


def bucket(length: int) -> int:
    """The length a built-in's prediction of `length` steps runs at: the next power of two."""
    return 1 << (length - 1).bit_length()


@functools.lru_cache(maxsize=64)
def step_of(
    graphdef: Any, loss_name: str, learning_rate: float, clip_norm: float | None
) -> tuple[Callable[..., Any], Any, Callable[..., Any]]:
    """One jitted optimizer step (Adam at the budget's rate, the gradients clipped to the budget's
    global norm if it sets one), the optax transformation (for its initial state), and the step
    before `jax.jit` (for `epoch_of`'s loop)."""
    adam = optax.adam(learning_rate)
    tx = adam if clip_norm is None else optax.chain(optax.clip_by_global_norm(clip_norm), adam)
    loss_of = loss_function(loss_name)

    def step(params: Any, rest: Any, opt_state: Any, x: jax.Array, y: jax.Array, state: Any) -> tuple[Any, ...]:
        def loss(p: Any) -> tuple[jax.Array, tuple[Any, Any]]:
            net = nnx.merge(graphdef, p, rest)
            out, final = net(x, state)
            return loss_of(out, y), (final, nnx.state(net, nnx.Not(nnx.Param)))

        (value, (final, rest2)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest2, opt_state, value, final

    return jax.jit(step), tx, step


@functools.lru_cache(maxsize=64)
def epoch_of(graphdef: Any, loss_name: str, learning_rate: float, clip_norm: float | None) -> Callable[..., Any]:
    """One epoch of `step_of`'s steps from the zero state as one compiled loop (`jax.lax.scan` over the
    epoch's minibatch index arrays, in their order): the same updates as calling the jitted step
    once per batch, without a dispatch, two gathers and a host round trip per step (issue 27: the
    Flax rows trained 2x slower per step than torch on the suite's small models)."""
    step = step_of(graphdef, loss_name, learning_rate, clip_norm)[2]

    @jax.jit
    def epoch(params: Any, rest: Any, opt_state: Any, x: jax.Array, y: jax.Array, order: jax.Array) -> tuple[Any, ...]:
        def one(carry: tuple[Any, Any, Any], idx: jax.Array) -> tuple[tuple[Any, Any, Any], jax.Array]:
            params, rest, opt_state, value, _ = step(*carry, x[idx], y[idx], None)
            return (params, rest, opt_state), value

        (params, rest, opt_state), losses = jax.lax.scan(one, (params, rest, opt_state), order)
        return params, rest, opt_state, jnp.mean(losses)

    return epoch
