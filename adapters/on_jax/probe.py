"""The load-time probe of a Flax NNX module: a bad factory, forward or state is a usage error
(`AdapterError`, one line) before anything trains; what it learns (the state's nest, what the
factory declares) drives the adapter's capabilities.

A factory is `factory(input_size, hidden_size, *, rngs)`: NNX modules draw their initial weights
from the `nnx.Rngs` they are built with, so the adapter hands it one seeded from the cell's seed.
"""

from __future__ import annotations

import inspect
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
    export_access,
    first_line,
    has_export,
    read_declaration,
)
from rnn_behaviour.adapters.reference import N_STATES

Factory = Callable[..., nnx.Module]
SIGNATURE = "factory(input_size, hidden_size, *, rngs) -> nnx.Module"


#: Flax's own cells and the cell each computes (with their default gate and activation functions).
FLAX_CELLS: dict[type, str] = {
    nnx.LSTMCell: "lstm", nnx.OptimizedLSTMCell: "lstm", nnx.GRUCell: "gru", nnx.SimpleCell: "rnn",
}  # fmt: skip
#: The variant of a Flax cell's form (adapters/layout.py `VARIANTS`): nnx.GRUCell has no bh_n.
FLAX_VARIANTS: dict[type, str] = {nnx.GRUCell: "no_bhn"}
#: The keyword by which a module takes each row's length (Flax's nnx.RNN's own name).
LENGTHS = "seq_lengths"


@dataclass(frozen=True)
class ModuleInfo:
    """What the load-time probe learned: the state's tree structure and leaf shapes at the
    probe's sizes, what the factory or its module declares (`rnn_behaviour_capabilities`), how
    weight conformance reaches its weights (`access` "flax": one of Flax's cells, at `cell_path`,
    holding all of them; "export": `export_weights()`/`import_weights()`; None and `why_not`), its
    cell, whether its canonical layout has bh_* and its `variant`, the canonical state's order in
    the module's nest (`carry_first`: Flax's LSTM carry is (c, h)), and why it cannot run padded
    batches ("" when it takes `seq_lengths`)."""

    state_tree: Any
    state_shapes: tuple[tuple[int, ...], ...]
    declared: dict[str, bool | str] = field(default_factory=dict)
    cell: str | None = None
    access: str | None = None
    why_not: str = "it declares no state, and the weight checks hand one in"
    cell_path: tuple[Any, ...] = ()
    recurrent_bias: bool = False
    variant: str = ""
    carry_first: bool = False
    lengths_why_not: str = "it declares no state"


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
    access, cell, why_not, path, recurrent_bias, variant = weight_access(module, state, i, h, b)
    return ModuleInfo(
        tree, tuple(tuple(s.shape) for s in jax.tree.leaves(state)), declared, cell, access, why_not, path,
        recurrent_bias, variant, access == "flax" and cell == "lstm", _lengths_support(module, made, x, state),
    )  # fmt: skip


def flax_cell(module: nnx.Module, path: tuple[Any, ...]) -> nnx.Module:
    """The node at `path` in the module's graph (the Flax cell weight conformance reads)."""
    node: Any = module
    for key in path:
        node = node[key] if isinstance(node, list | tuple | dict) else getattr(node, key)
    return node


def _size(module: Any) -> int:
    return int(sum(np.size(p) for p in jax.tree.leaves(nnx.state(module, nnx.Param))))


def _plain(cell: nnx.Module) -> str:
    """Why a Flax cell does not compute the reference's equations ("" when it does)."""
    name = type(cell).__name__
    if getattr(cell, "gate_fn", nnx.sigmoid) is not nnx.sigmoid:
        return f"its {name} has gate_fn {getattr(cell.gate_fn, '__name__', cell.gate_fn)}, not sigmoid"
    if getattr(cell, "activation_fn", nnx.tanh) is not nnx.tanh:
        return f"its {name} has activation_fn {getattr(cell.activation_fn, '__name__', cell.activation_fn)}, not tanh"
    if getattr(cell, "residual", False):
        return f"its {name} is residual (h' = h + tanh(...)), which the reference's tanh RNN is not"
    return ""


def weight_access(
    module: nnx.Module, state: Any, input_size: int, hidden_size: int, batch: int
) -> tuple[str | None, str | None, str, tuple[Any, ...], bool, str]:
    """(access, cell, why not, the Flax cell's path, recurrent bias, variant): one of Flax's cells
    (`FLAX_CELLS`) holding every parameter, with the cell's carry as the state; else a canonical
    `export_weights()`/`import_weights()` with the state as (h, c) or h; else why not."""
    leaves = jax.tree.leaves(state)
    cells = [(path, node) for path, node in nnx.iter_graph(module) if type(node) in FLAX_CELLS]
    if len(cells) == 1:
        path, node = cells[0]
        cell, name = FLAX_CELLS[type(node)], type(node).__name__
        why = _plain(node)
        if not why and _size(node) != _size(module):
            why = f"it has parameters outside its {name} ({_size(module)} in all, {_size(node)} in the cell)"
        if not why and (len(leaves) != N_STATES[cell] or any(tuple(s.shape) != (batch, hidden_size) for s in leaves)):
            why = f"its state ({_describe(state)}) is not the {name}'s carry"
        if why:
            return None, None, f"{why}: the reference's equations do not apply", (), False, ""
        return "flax", cell, "", tuple(path), False, FLAX_VARIANTS.get(type(node), "")
    if has_export(module):
        access, cell, why, recurrent_bias, variant = export_access(module, input_size, hidden_size)
        if cell is not None and (
            len(leaves) != N_STATES[cell] or any(tuple(s.shape) != (batch, hidden_size) for s in leaves)
        ):
            form = "(h, c), each" if N_STATES[cell] == 2 else "h"
            return None, None, f"its state ({_describe(state)}) is not {form} (batch, hidden)", (), False, ""
        return access, cell, why, (), recurrent_bias, variant
    found = f"{len(cells)} of Flax's cells" if cells else "none of Flax's cells"
    return None, None, (
        f"its module has {found} ({', '.join(c.__name__ for c in FLAX_CELLS)}) where weight conformance needs "
        "exactly one holding all its parameters, and no export_weights()/import_weights() in the canonical layout "
        "of adapters/reference.py"
    ), (), False, ""  # fmt: skip


def takes_lengths(module: nnx.Module) -> bool:
    try:
        return LENGTHS in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return False


def _lengths_support(module: nnx.Module, made: str, x: jax.Array, state: Any) -> str:
    """'' when the module runs a right-padded batch with `seq_lengths` (as nnx.RNN takes them) and
    hands back y and a state of the usual form; else why not, in words."""
    if not takes_lengths(module):
        return f"its module's __call__ takes no {LENGTHS} keyword (nnx.RNN's), so no padded batch can be handed in"
    b, t = x.shape[0], x.shape[1]
    lengths = [1 + (k * (t - 1)) // max(b - 1, 1) for k in range(b)]
    call = f"{made}(x, state, {LENGTHS}={lengths})"
    try:
        _, final = check_forward(module(x, state, **{LENGTHS: jnp.asarray(lengths)}), call, b, t)
    except AdapterError as exc:
        return str(exc)
    except Exception as exc:
        return f"{call} raised {first_line(exc)}"
    if jax.tree.structure(final) != jax.tree.structure(state):
        return f"{call} returned a state of {_describe(final)}, not {_describe(state)} as without lengths"
    return ""


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
