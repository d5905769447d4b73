"""A Flax NNX module itself behind `adapters.native.NativeModule`: called eagerly on the caller's
values (JAX arrays, or NumPy views for the non-contiguous layouts), no validation by the suite
(conformance's caller_data, bad_input)."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.native import NativeCall, max_change, numpy_layout


def to_numpy(nest: Any) -> Any:
    return jax.tree.map(lambda s: np.array(s) if isinstance(s, jax.Array) else s, nest)


def arrays(nest: Any) -> list[jax.Array]:
    """The arrays of a state nest (a module may keep other leaves in it, e.g. a step count)."""
    return [s for s in jax.tree.leaves(nest) if isinstance(s, jax.Array)]


class JaxNative:
    """The factory's module, called as `module(x, state) -> (y, state)` on JAX arrays."""

    framework = "jax"
    immutable = (
        "JAX arrays cannot be changed in place: checked are the NumPy arrays handed in and the state's nest "
        "(the same structure and the same arrays, after the calls)"
    )
    layouts: ClassVar[dict[str, str]] = {
        "contiguous": "a jax.Array (batch, time, features)",
        "strided": "a NumPy view x[:, ::2] of a (batch, 2 time, features) array",
        "transposed": "a NumPy view .transpose(1, 0, 2) of a (time, batch, features) array",
    }

    def __init__(self, module: nnx.Module) -> None:
        self.module = module

    def _state(self, state: Any) -> Any:
        if state is None:
            return None
        return jax.tree.map(lambda a: jnp.asarray(np.array(a, np.float32)) if isinstance(a, np.ndarray) else a, state)

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y, final = self.module(jnp.asarray(np.array(x, np.float32)), self._state(state))
        return np.array(y), to_numpy(final)

    def differentiable(self, dtype: str = "float32") -> Any:
        """The module as a differentiable function in `dtype` ("float64": its parameters converted,
        computed under `jax.enable_x64`), for the checks that hold its `jax.vjp` to its own forward
        (adapters/on_jax/selfgrad.py)."""
        from rnn_behaviour.adapters.on_jax.selfgrad import JaxDifferentiable

        return JaxDifferentiable(self.module, dtype)

    def _layout(self, x: np.ndarray, layout: str) -> tuple[Any, np.ndarray]:
        """The input in `layout`, and the NumPy array the caller owns behind it."""
        view, owned = numpy_layout(x, layout)
        return (jnp.asarray(view) if layout == "contiguous" else view), owned

    def call(self, x: np.ndarray, state: Any, layout: str = "contiguous", backward: bool = False,
             repeats: int = 1, seed: int = 0) -> NativeCall:  # fmt: skip
        if backward and layout != "contiguous":
            raise ValueError("backward runs on the contiguous layout only")
        xt, owned = self._layout(x, layout)
        st = self._state(state)
        handed, tree = jax.tree.leaves(st), jax.tree.structure(st)
        before = owned.copy()
        graphdef, params, rest = nnx.split(self.module, nnx.Param, ...)
        generator = np.random.default_rng(seed)
        outputs = []
        for _ in range(repeats):
            if not backward:
                y, final = self.module(xt, st)
            else:

                def run(x: jax.Array, s: Any, p: Any) -> tuple[jax.Array, Any]:
                    return nnx.merge(graphdef, p, rest)(x, s)

                (y, final), pull = jax.vjp(run, xt, st, params)
                pull(jax.tree.map(lambda t: jnp.asarray(generator.normal(0.0, 1.0, np.shape(t)), t.dtype), (y, final)))
            outputs.append((np.array(y), [np.array(s) for s in arrays(final)]))
        kept = jax.tree.structure(st) == tree and all(a is b for a, b in zip(jax.tree.leaves(st), handed, strict=False))
        changed = {"x": max_change(before, owned), "the state's nest": 0.0 if kept else float("inf")}
        return NativeCall(outputs, changed)
