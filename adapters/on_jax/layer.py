"""Conformance's view of a Flax NNX module: a bare layer (NumPy in and out, canonical state) and
whole-model weights in the canonical layout of adapters/reference.py.

A module is reached one of two ways (`probe.weight_access`): one of Flax's own cells holding all
its parameters ("flax": read and written here, block by block), or the module's own
`export_weights()`/`import_weights()` ("export"). Flax's cells keep their bias on one side only
(the LSTM's and the tanh RNN's on the hidden or input Linear, the GRU's on the input one), so
their layout has no bh_*: import folds b + bh, and nnx.GRUCell (the "no_bhn" variant) cannot hold
a bh_n that is not 0 (`layout.CannotHold`, google/flax#5594). The LSTM's carry is (c, h).
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.base import check_input, check_lengths
from rnn_behaviour.adapters.custom import canonical_gradients
from rnn_behaviour.adapters.on_jax.probe import LENGTHS, Factory, ModuleInfo, build, flax_cell
from rnn_behaviour.adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    pack_state,
    to_layout,
    to_stacked,
)

#: The order of the gate blocks in Flax's stacked kernels (nnx.GRUCell: r, z, n).
FLAX_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}
#: nnx.LSTMCell's per-gate Linears: the input side (no bias), then the hidden side (with the bias).
_LSTM_INPUT, _LSTM_HIDDEN = ("ii", "if_", "ig", "io"), ("hi", "hf", "hg", "ho")


def _get(param: Any) -> np.ndarray:
    """A parameter's value as float32 NumPy (exact from float16 and bfloat16), float64 kept."""
    value = np.asarray(param.get_value())
    return value if value.dtype == np.float64 else value.astype(np.float32)


def _set(param: Any, value: np.ndarray) -> None:
    """Write `value` into a parameter in the parameter's own dtype."""
    current = param.get_value()
    param.set_value(jnp.asarray(np.asarray(value, np.float64), current.dtype))


def _blocks(cell: nnx.Module) -> list[tuple[Any, Any, Any]]:
    """(kernel, recurrent kernel, bias) parameters of a Flax cell, one triple per stacked block:
    nnx.LSTMCell's four gates each, or the one stacked block of the others."""
    if isinstance(cell, nnx.LSTMCell) and not isinstance(cell, nnx.OptimizedLSTMCell):
        return [(getattr(cell, i).kernel, getattr(cell, h).kernel, getattr(cell, h).bias)
                for i, h in zip(_LSTM_INPUT, _LSTM_HIDDEN, strict=True)]  # fmt: skip
    bias = cell.dense_h.bias if isinstance(cell, nnx.OptimizedLSTMCell) else cell.dense_i.bias
    return [(cell.dense_i.kernel, cell.dense_h.kernel, bias)]


def read_cell(name: str, cell: nnx.Module) -> Weights:
    """A Flax cell's weights (or gradients, read from a module merged with them) as canonical,
    without bh_*."""
    kernel, recurrent, bias = (np.concatenate([_get(b[k]) for b in _blocks(cell)], axis=-1) for k in range(3))
    return from_stacked(name, FLAX_GATES[name], kernel, recurrent, bias)


def write_cell(name: str, cell: nnx.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Canonical weights without bh_* into a Flax cell's parameters, block by block."""
    stacked = to_stacked(name, FLAX_GATES[name], weights)[:3]
    blocks = _blocks(cell)
    for k, whole in enumerate(stacked):
        for param, part in zip((b[k] for b in blocks), np.split(whole, len(blocks), axis=-1), strict=True):
            _set(param, part)


@functools.lru_cache(maxsize=64)
def _runner(graphdef: Any, with_lengths: bool) -> Callable[..., Any]:
    """The module's forward, jitted once per graph: (params, rest, x, state[, lengths])."""

    def run(params: Any, rest: Any, x: jax.Array, state: Any, lengths: Any = None) -> tuple[jax.Array, Any]:
        module = nnx.merge(graphdef, params, rest)
        return module(x, state, **{LENGTHS: lengths}) if with_lengths else module(x, state)

    return jax.jit(run)


@functools.lru_cache(maxsize=64)
def _gradient(graphdef: Any) -> Callable[..., Any]:
    """d/d (x, state, params) of Σ upstream ⊙ y + Σ given ⊙ final state (given None: no state
    term), jitted once per graph: (x, state, params, rest, upstream, given). Taken eagerly, each
    call re-traced and re-compiled the module's scan (about 0.8 s for a 9-step LSTM on the CPU)."""

    def loss(x: jax.Array, s: Any, p: Any, rest: Any, upstream: jax.Array, given: Any) -> jax.Array:
        y, final = nnx.merge(graphdef, p, rest)(x, s)
        total = jnp.sum(y * upstream)
        if given is not None:
            total += sum(jnp.sum(a * d) for a, d in zip(jax.tree.leaves(final), jax.tree.leaves(given), strict=True))
        return total

    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))


class JaxLayer:
    """A bare module from the factory behind the conformance `Layer` API: numpy in and out,
    canonical state `(h, c)`/`h` converted to and from the module's nest; forward under `jax.jit`.
    `dtype` ("float32", "float16", "bfloat16", "float64") is its parameters', inputs' and state's;
    outputs come back as float32 (float64 for the float64 twin, computed under `jax.enable_x64`)."""

    def __init__(self, factory: Factory, target: str, info: ModuleInfo, input_size: int, hidden_size: int,
                 seed: int, *, dtype: str = "float32") -> None:  # fmt: skip
        assert info.cell is not None and info.access is not None
        self.factory, self.target, self.info, self.seed = factory, target, info, seed
        self.cell, self.access, self.variant = info.cell, info.access, info.variant
        self.input_size, self.hidden_size, self.dtype = input_size, hidden_size, dtype
        with self._precision():
            self.module = build(factory, f"{target}({input_size}, {hidden_size})", input_size, hidden_size, seed)
            if dtype != "float32":
                to_dtype(self.module, dtype)

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        with jax.enable_x64(True) if self.dtype == "float64" else contextlib.nullcontext():
            yield

    def _cell(self, module: nnx.Module | None = None) -> nnx.Module:
        return flax_cell(self.module if module is None else module, self.info.cell_path)

    def _state(self, state: Any, batch: int) -> Any:
        """The canonical state (None: zeros) as the module's nest, in the layer's dtype."""
        arrays = [jnp.asarray(np.asarray(a, np.float64), self.dtype)
                  for a in check_state(self.cell, state, batch, self.hidden_size)]  # fmt: skip
        if self.info.carry_first:
            arrays = arrays[::-1]
        return jax.tree.unflatten(self.info.state_tree, arrays)

    def _canonical(self, final: Any) -> Any:
        leaves = [self._out(s) for s in jax.tree.leaves(final)]
        return pack_state(self.cell, leaves[::-1] if self.info.carry_first else leaves)

    def _out(self, a: jax.Array) -> np.ndarray:
        return np.asarray(a, np.float64 if self.dtype == "float64" else np.float32)

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """With `lengths`, row b is read up to lengths[b] steps (`seq_lengths`, as nnx.RNN takes
        them) and its final state is the one after them."""
        x = check_input(x, self.input_size)
        with self._precision():
            xt, st = jnp.asarray(np.asarray(x, np.float64), self.dtype), self._state(state, len(x))
            graphdef, params, rest = nnx.split(self.module, nnx.Param, ...)
            if lengths is None:
                y, final = _runner(graphdef, False)(params, rest, xt, st)
            else:
                n = check_lengths(lengths, len(x), x.shape[1])
                y, final = _runner(graphdef, True)(params, rest, xt, st, jnp.asarray(n, jnp.int32))
            return self._out(y), self._canonical(final)

    def float64_twin(self) -> JaxLayer:
        """The same layer (the same weights) computing in float64 under `jax.enable_x64`: the "same
        computation" checks' second opinion on a float32 gap (benchmarks/README.md)."""
        twin = copy.copy(self)
        twin.module, twin.dtype = float64_copy(self.module), "float64"
        return twin

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        """(dx, dW, dstate) of Σ dy ⊙ y + Σ dfinal ⊙ final state by `jax.vjp` (`Layer.gradients`)."""
        x = check_input(x, self.input_size)
        with self._precision():
            xt, st = jnp.asarray(x, self.dtype), self._state(state, len(x))
            graphdef, params, rest = nnx.split(self.module, nnx.Param, ...)
            upstream = jnp.ones((*x.shape[:2], self.hidden_size)) if dy is None else jnp.asarray(dy, jnp.float32)
            given = None if dfinal is None else self._state(dfinal, len(x))
            dx, ds, dp = _gradient(graphdef)(xt, st, params, rest, upstream, given)
            dstate = self._canonical(ds)
            if self.access == "flax":
                return self._out(dx), read_cell(self.cell, self._cell(nnx.merge(graphdef, dp, rest))), dstate
            flat = lambda tree: {jax.tree_util.keystr(k): np.asarray(v, np.float64)  # noqa: E731
                                 for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}  # fmt: skip
            read = lambda: flat(nnx.state(self.module, nnx.Param))  # noqa: E731
            dw = canonical_gradients(
                self.cell, self.input_size, self.hidden_size, flat(dp), self.import_weights, read, self.export_weights()
            )
            return self._out(dx), dw, dstate

    def export_weights(self) -> Weights:
        return export_weights(self.module, self.info)

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights, self.variant)
        with self._precision():
            import_weights(self.module, self.info, checked)


def export_weights(module: nnx.Module, info: ModuleInfo) -> Weights:
    """A module's recurrent weights in the canonical layout (`info` from the probe)."""
    assert info.cell is not None
    if info.access == "export":
        return {k: np.asarray(v) for k, v in module.export_weights().items()}  # type: ignore[operator]
    return read_cell(info.cell, flax_cell(module, info.cell_path))


def import_weights(module: nnx.Module, info: ModuleInfo, weights: Mapping[str, np.ndarray]) -> None:
    """Canonical weights (either layout) into the module, folded into its own layout; a form that
    cannot hold them (a no_bhn GRU and bh_n != 0) raises `layout.CannotHold` saying so."""
    assert info.cell is not None
    folded = to_layout(info.cell, weights, info.recurrent_bias, info.variant)
    if info.access == "export":
        module.import_weights(folded)  # type: ignore[operator]
    else:
        write_cell(info.cell, flax_cell(module, info.cell_path), folded)


def float64_copy(module: nnx.Module) -> nnx.Module:
    """A copy of the module (the same weights) that computes in float64 (`to_dtype`), made under
    `jax.enable_x64`; call it there too. The float64 twins and `self_gradients`' copy. A deep copy
    (`nnx.clone`): `nnx.merge(*nnx.split(module))` shares the Variables, so converting it would
    turn the original's parameters to float64 too."""
    with jax.enable_x64(True):
        twin = nnx.clone(module)
        to_dtype(twin, "float64")
    return twin


def to_dtype(module: nnx.Module, dtype: str) -> None:
    """The module's parameters converted to `dtype`, and every part that fixes its computation's
    dtype (Flax's `dtype=`: nnx.SimpleCell's default is float32, where the other cells' is None,
    the inputs') switched to it: the module as built with `dtype=` and `param_dtype=`."""
    params = nnx.state(module, nnx.Param)
    nnx.update(module, jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64), dtype), params))
    for _, node in nnx.iter_graph(module):
        if isinstance(node, nnx.Module) and getattr(node, "dtype", None) is not None:
            node.dtype = jnp.dtype(dtype)
