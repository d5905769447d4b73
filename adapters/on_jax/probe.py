"""The load-time probe of a Flax NNX module: a bad factory, forward or state is a usage error
(`AdapterError`, one line) before anything trains; what it learns (the state's nest, what the
factory declares) drives the adapter's capabilities.

A factory is `factory(input_size, hidden_size, *, rngs)`: NNX modules draw their initial weights
from the `nnx.Rngs` they are built with, so the adapter hands it one seeded from the cell's seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.custom import (
    PROBE_BATCH,
    PROBE_HIDDEN,
    PROBE_INPUT,
    PROBE_TIME,
    declared_stateless,
    first_line,
    read_declaration,
)

Factory = Callable[..., nnx.Module]
SIGNATURE = "factory(input_size, hidden_size, *, rngs) -> nnx.Module"


@dataclass(frozen=True)
class ModuleInfo:
    """What the load-time probe learned: the state's tree structure and leaf shapes at the
    probe's sizes, and what the factory or its module declares (`rnn_behaviour_capabilities`)."""

    state_tree: Any
    state_shapes: tuple[tuple[int, ...], ...]
    declared: dict[str, bool | str] = field(default_factory=dict)


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return str(tuple(shape)) if shape is not None else f"a {type(value).__name__}"


def _describe(state: Any) -> str:
    leaves = jax.tree.leaves(state)
    return f"{type(state).__name__} of {len(leaves)} array(s) of shape(s) {[tuple(np.shape(s)) for s in leaves]}"


def check_forward(out: Any, call: str, batch: int, time: int) -> tuple[jax.Array, Any]:
    """(y, state) from what `call` returned, or an AdapterError saying what is wrong with it."""
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = "a jax.Array alone" if isinstance(out, jax.Array) else f"a {type(out).__name__}"
        got += f" of {len(out)}" if isinstance(out, tuple | list) else ""
        raise AdapterError(f"{call} returned {got}; the module must return (y, state)")
    y, state = out
    expected = (batch, time, PROBE_HIDDEN)
    if not isinstance(y, jax.Array) or tuple(y.shape) != expected:
        raise AdapterError(
            f"{call} returned y of shape {_shape(y)}; expected {expected} = (batch, time, hidden_size), batch first"
        )
    leaves = jax.tree.leaves(state)
    if state is None or not leaves or not all(isinstance(s, jax.Array) for s in leaves):
        kinds = ", ".join(sorted({type(s).__name__ for s in leaves}))
        raise AdapterError(
            f"{call} returned a state of {kinds or 'nothing'}; it must be an array or a pytree of arrays"
        )
    if any(batch not in tuple(s.shape) for s in leaves):
        raise AdapterError(
            f"{call} returned a state of shape(s) {[tuple(s.shape) for s in leaves]}, without the batch size {batch}: "
            "is x read as (time, batch, features)? the module must be batch first"
        )
    return y, state


def build(factory: Factory, made: str, input_size: int, hidden_size: int, seed: int) -> nnx.Module:
    """The factory's module, each failure an AdapterError naming the call."""
    try:
        module = factory(input_size, hidden_size, rngs=nnx.Rngs(seed))
    except TypeError as exc:
        raise AdapterError(f"calling {made} raised {first_line(exc)}; a jax factory is {SIGNATURE}") from None
    except Exception as exc:
        raise AdapterError(f"calling {made} raised {first_line(exc)}") from None
    if not isinstance(module, nnx.Module):
        raise AdapterError(f"{made} returned {type(module).__name__}, not a flax.nnx.Module")
    return module


def probe_module(factory: Factory, target: str) -> ModuleInfo:
    """Build the module once at the probe's sizes and run it: the factory's signature, the
    forward's output shape, the state handed back, and a traced (jitted) gradient step through
    `nnx.split`/`nnx.merge` as training takes it are checked here, each failure one AdapterError."""
    i, h, b, t = PROBE_INPUT, PROBE_HIDDEN, PROBE_BATCH, PROBE_TIME
    made = f"{target}({i}, {h}, rngs=nnx.Rngs(0))"
    module = build(factory, made, i, h, 0)
    declared = read_declaration(target, factory, module)
    if not jax.tree.leaves(nnx.state(module, nnx.Param)):
        raise AdapterError(f"{made} has no trainable parameters (no nnx.Param)")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(b, t, i)), jnp.float32)
    x_text = f"x of shape {(b, t, i)}"
    if (reason := declared_stateless(declared)) is not None:
        call = f"{made}({x_text})"
        try:
            y = stateless_output(module(x))
        except Exception as exc:
            raise AdapterError(
                f"{call} raised {first_line(exc)} (it declares no state, so it is called with x alone)"
            ) from None
        if not isinstance(y, jax.Array) or tuple(y.shape) != (b, t, h):
            raise AdapterError(
                f"{call} returned y of shape {_shape(y)}; expected {(b, t, h)} = (batch, time, hidden_size)"
            )
        _traced(Stateless(module, reason), made, x)
        return ModuleInfo(None, (), declared)
    state: Any = None
    for call, run in ((f"{made}({x_text})", lambda: module(x)), (f"{made}({x_text}, None)", lambda: module(x, None))):
        try:
            out = run()
        except Exception as exc:
            hint = "; the module is called module(x, state=None)" if isinstance(exc, TypeError) else ""
            raise AdapterError(f"{call} raised {first_line(exc)}{hint}") from None
        _, state = check_forward(out, call, b, t)
    call = f"{made}(x of shape {(b, 1, i)}, state) with the state module(x) returned"
    try:
        out = module(x[:, :1], state)
    except Exception as exc:
        raise AdapterError(f"the state is not accepted back: {call} raised {first_line(exc)}") from None
    _, again = check_forward(out, call, b, 1)
    tree = jax.tree.structure(state)
    if jax.tree.structure(again) != tree or [s.shape for s in jax.tree.leaves(again)] != [
        s.shape for s in jax.tree.leaves(state)
    ]:
        raise AdapterError(
            f"{call} returned a state of another structure or shape ({_describe(again)}) than the one given "
            f"({_describe(state)}); the state must keep its form from call to call"
        )
    _traced(module, made, x, state)
    return ModuleInfo(tree, tuple(tuple(s.shape) for s in jax.tree.leaves(state)), declared)


def _traced(module: nnx.Module, made: str, x: jax.Array, state: Any = None) -> None:
    """The gradient of the module's outputs under `jax.jit`, as training takes it: a module that
    only runs eagerly (Python control flow on array values, NumPy calls on tracers) is refused."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    def total(p: Any) -> jax.Array:
        y, final = nnx.merge(graphdef, p, rest)(x, state)
        return jnp.sum(y) + sum(jnp.sum(s) for s in jax.tree.leaves(final))

    try:
        grads = jax.jit(jax.grad(total))(params)
    except Exception as exc:
        raise AdapterError(
            f"{made} does not run under jax.jit and jax.grad as training takes it (nnx.split/merge, a traced "
            f"forward from {'the state it returned' if state is not None else 'no state'}): {first_line(exc)}"
        ) from None
    if not all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)):
        raise AdapterError(f"{made}: the gradient of its outputs under jax.jit is not finite")


def stateless_output(out: Any) -> Any:
    """y from what a module that declares no state returns: y alone, or (y, anything)."""
    return out[0] if isinstance(out, tuple | list) and out else out


class Stateless(nnx.Module):
    """A module that declares no state, behind the `module(x, state=None) -> (y, None)` the suite
    calls: it is handed x alone, and a state handed in is refused."""

    def __init__(self, inner: nnx.Module, reason: str) -> None:
        self.inner, self.reason = inner, reason

    def __call__(self, x: Any, state: Any = None) -> tuple[Any, None]:
        if state is not None:
            raise ValueError(f"this module declares no state ({self.reason}); none can be handed in")
        return stateless_output(self.inner(x)), None


def stateless_factory(factory: Factory, reason: str) -> Factory:
    """`factory` with each module it makes wrapped in `Stateless`."""
    return lambda input_size, hidden_size, **kwargs: Stateless(factory(input_size, hidden_size, **kwargs), reason)
