"""A Flax NNX module as a differentiable function of NumPy arrays, in float32 or as its float64
copy (the parameters converted, computed under `jax.enable_x64`): what conformance's
`self_gradients` and `state_precision` hold the module's own `jax.vjp` to (adapters/native.py
`Differentiable`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.on_jax.layer import float64_copy


class JaxDifferentiable:
    """The module (split into its graph, parameters and the rest) with the loss
    Σ dy ⊙ y + Σ dfinal ⊙ final state; its parameters by their paths."""

    def __init__(self, module: nnx.Module, dtype: str) -> None:
        self.dtype = dtype
        if dtype == "float64":  # a copy whose parts that fix their dtype (nnx.SimpleCell's float32) compute in float64
            module = float64_copy(module)
        self.graphdef, params, self.rest = nnx.split(module, nnx.Param, ...)
        paths, self.treedef = jax.tree_util.tree_flatten_with_path(params)
        self.names = [jax.tree_util.keystr(path) for path, _ in paths]
        self.params = [np.array(p) for _, p in paths]
        self.shapes = [tuple(p.shape) for p in self.params]
        graphdef, treedef, rest = self.graphdef, self.treedef, self.rest

        def call(params: list[Any], x: Any, state: Any) -> tuple[jax.Array, Any]:
            return nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, params), rest)(x, state)

        # Jitted, as training runs it (the probe's traced step closes over `rest` the same way): called
        # eagerly, a module's scan is traced and compiled anew on every one of the check's hundreds of
        # forwards (a fresh closure each time), about 0.5 s each for a 64-step LSTM on the CPU.
        self._jitted = jax.jit(call)

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        with jax.enable_x64(True) if self.dtype == "float64" else contextlib.nullcontext():
            yield

    def _array(self, a: Any) -> Any:
        a = np.asarray(a)
        return jnp.asarray(a.astype(self.dtype) if np.issubdtype(a.dtype, np.floating) else a)

    def _state(self, state: Any) -> Any:
        return (
            None if state is None else jax.tree.map(lambda a: self._array(a) if isinstance(a, np.ndarray) else a, state)
        )

    def _call(self, params: list[Any], x: Any, state: Any) -> tuple[jax.Array, Any]:
        return self._jitted(list(params), x, state)  # type: ignore[no-any-return]

    def run(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, str, Any]:
        """y and the final state as NumPy, and the dtypes they come out in, as names."""
        with self._precision():
            y, final = self._call([self._array(p) for p in self.params], self._array(x), self._state(state))
            leaves = lambda f: jax.tree.map(lambda t: f(t) if isinstance(t, jax.Array) else t, final)  # noqa: E731
            return np.array(y), leaves(np.array), str(y.dtype), leaves(lambda t: str(t.dtype))

    def _loss(self, y: jax.Array, final: Any, dy: np.ndarray, dfinal: Any) -> jax.Array:
        loss = jnp.sum(y * self._array(dy))
        if dfinal is not None:
            for s, d in zip(jax.tree.leaves(final), jax.tree.leaves(dfinal), strict=False):
                if isinstance(s, jax.Array) and jnp.issubdtype(s.dtype, jnp.floating):
                    loss = loss + jnp.sum(s * self._array(d))
        return loss

    def loss(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any, shift: list[Any] | None = None) -> float:
        """The loss with each parameter moved by `shift[i]` (None: unmoved) for this call only."""
        shifts = list(shift or []) + [None] * (len(self.params) - len(shift or []))
        with self._precision():
            moved = [
                self._array(p if s is None else np.asarray(p, np.float64) + s)
                for p, s in zip(self.params, shifts, strict=True)
            ]
            y, final = self._call(moved, self._array(x), self._state(state))
            return float(self._loss(y, final, dy, dfinal))

    def gradients(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any) -> tuple[np.ndarray, Any, list[Any]]:
        """`jax.vjp`'s d loss / dx, / d state (the state's nest; zeros for a leaf that is not
        floating) and / d each parameter."""
        with self._precision():
            st = self._state(state)
            leaves, tree = jax.tree.flatten(st)
            floating = [
                i for i, a in enumerate(leaves) if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)
            ]

            def total(x: jax.Array, moving: list[jax.Array], params: list[jax.Array]) -> jax.Array:
                full = list(leaves)
                for i, a in zip(floating, moving, strict=True):
                    full[i] = a
                y, final = self._call(params, x, None if st is None else jax.tree.unflatten(tree, full))
                return self._loss(y, final, dy, dfinal)

            value, pull = jax.vjp(
                total, self._array(x), [leaves[i] for i in floating], [self._array(p) for p in self.params]
            )
            dx, dmoving, dparams = pull(jnp.ones_like(value))
            out = [np.zeros(np.shape(a)) if isinstance(a, jax.Array) else a for a in leaves]
            for i, g in zip(floating, dmoving, strict=True):
                out[i] = np.array(g)
            dstate = None if st is None else jax.tree.unflatten(tree, out)
            return np.array(dx), dstate, [np.array(g) for g in dparams]
