"""A Keras layer as a differentiable function of NumPy arrays, in float32 or as its float64 twin
(the factory's layer under the "float64" dtype policy, the float32 layer's weights copied in):
what conformance's `self_gradients` and `state_precision` (benchmarks/conformance/selfgrad.py)
hold its `GradientTape` to, without any reference weights (adapters/native.py `Differentiable`).
Calls run in `tf.function`s traced once per input shape (eagerly a 64-step LSTM takes 0.2 s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _parts(state: Any) -> list[Any]:
    return [] if state is None else list(state) if isinstance(state, tuple | list) else [state]


class KerasDifferentiable:
    """`make(dtype)` builds the factory's layer (return_sequences, return_state) in that dtype
    policy; `source` is the float32 layer whose weights the float64 twin takes."""

    def __init__(self, make: Callable[[str], keras.layers.Layer], source: keras.layers.Layer, input_size: int,
                 dtype: str) -> None:  # fmt: skip
        self.dtype, self.tf_dtype = dtype, tf.as_dtype(dtype)
        if dtype == "float32":
            self.layer = source
        else:
            self.layer = make(dtype)
            self.layer.build((None, None, input_size))
            self.layer.set_weights([np.asarray(w, np.float64) for w in source.get_weights()])
        self.params = list(self.layer.trainable_variables)
        kept = sorted({str(v.dtype) for v in self.params} - {dtype})
        if kept:  # e.g. a cell built without the RNN's dtype: it computes in float32 inside
            raise ValueError(f"its variables stay in {', '.join(kept)} under the {dtype} dtype policy")
        self.names = [str(getattr(v, "path", None) or v.name) for v in self.params]
        self.shapes = [tuple(v.shape) for v in self.params]
        self._forward = tf.function(self._call)
        self._grads = tf.function(self._tape)

    def _tensor(self, a: Any) -> tf.Tensor:
        return tf.constant(np.asarray(a, np.float64), self.tf_dtype)

    def _call(self, x: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        out = self.layer(x, initial_state=states) if states else self.layer(x)
        return out[0], list(out[1:])

    def _loss(self, y: tf.Tensor, final: list[tf.Tensor], dy: tf.Tensor, dfinal: list[tf.Tensor]) -> tf.Tensor:
        loss = tf.reduce_sum(tf.cast(y, self.tf_dtype) * dy)
        for s, d in zip(final, dfinal, strict=False):
            loss += tf.reduce_sum(tf.cast(s, self.tf_dtype) * d)
        return loss

    def _tape(self, x: tf.Tensor, states: list[tf.Tensor], dy: tf.Tensor, dfinal: list[tf.Tensor]) -> list[Any]:
        with tf.GradientTape() as tape:
            tape.watch([x, *states])
            y, final = self._call(x, states)
            loss = self._loss(y, final, dy, dfinal)
        return tape.gradient(loss, [x, *states, *self.params])

    def run(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, str, Any]:
        """y and the final state as NumPy, and the dtypes they come out in, as names (eagerly: a
        call or two on a short x, where tracing would cost more than it saves)."""
        y, final = self._call(self._tensor(x), [self._tensor(s) for s in _parts(state)])
        arrays = tuple(np.asarray(tf.cast(s, tf.float32) if s.dtype in (tf.float16, tf.bfloat16) else s) for s in final)
        names = tuple(s.dtype.name for s in final)
        single = len(arrays) == 1
        return np.asarray(y), arrays[0] if single else arrays, y.dtype.name, names[0] if single else names

    def loss(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any, shift: list[Any] | None = None) -> float:
        """The loss, the variables moved by `shift` (one array or None per variable) meanwhile."""
        saved = [v.numpy() for v in self.params]
        try:
            for v, s in zip(self.params, shift or [], strict=False):
                if s is not None:
                    v.assign(np.asarray(v.numpy(), np.float64) + s)
            y, final = self._forward(self._tensor(x), [self._tensor(s) for s in _parts(state)])
            return float(self._loss(y, final, self._tensor(dy), [self._tensor(d) for d in _parts(dfinal)]))
        finally:
            for v, old in zip(self.params, saved, strict=True):
                v.assign(old)

    def gradients(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any) -> tuple[np.ndarray, Any, list[Any]]:
        """The tape's d loss / dx, / d state (zeros where none flows) and / d each variable."""
        states = [self._tensor(s) for s in _parts(state)]
        grads = self._grads(self._tensor(x), states, self._tensor(dy), [self._tensor(d) for d in _parts(dfinal)])
        wrt = [x, *_parts(state), *self.shapes]
        out = [
            np.zeros(np.shape(w) if not isinstance(w, tuple) else w) if g is None else np.asarray(g)
            for w, g in zip(wrt, grads, strict=True)
        ]
        ds = out[1 : 1 + len(states)]
        dstate = None if state is None else (tuple(ds) if isinstance(state, tuple | list) else ds[0])
        return out[0], dstate, out[1 + len(states) :]
