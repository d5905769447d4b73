"""Conformance's view of a Keras layer: a bare layer (NumPy in and out, canonical state) and whole-model
weights in the canonical layout of adapters/reference.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rnn_behaviour.adapters.base import check_input, check_lengths
from rnn_behaviour.adapters.custom import (
    canonical_gradients,
    first_line,
)
from rnn_behaviour.adapters.on_keras.probe import KERAS_GATES, Factory, LayerInfo
from rnn_behaviour.adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    pack_state,
    to_layout,
    to_stacked,
)

# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)


def _canonical(cell: str, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> Weights:
    """kernel/recurrent_kernel/bias -> canonical; a reset-after GRU's bias is (2, 3H): [input; recurrent],
    every other bias (3H or 4H or H,) is b alone (the layout without bh)."""
    if bias.ndim == 2:
        return from_stacked(cell, KERAS_GATES[cell], kernel, recurrent, bias[0], bias[1])
    return from_stacked(cell, KERAS_GATES[cell], kernel, recurrent, bias)


def _keras_arrays(cell: str, weights: Mapping[str, np.ndarray], info: LayerInfo) -> list[np.ndarray]:
    """The cell's kernel, recurrent kernel and bias from canonical weights (either layout, folded)."""
    kernel, recurrent, bias, recurrent_bias = to_stacked(
        cell, KERAS_GATES[cell], to_layout(cell, weights, info.recurrent_bias, info.variant)
    )
    if recurrent_bias is not None:
        bias = np.stack([bias, recurrent_bias])
    return [np.asarray(a, np.float32) for a in (kernel, recurrent, bias)]


def _float32(t: Any) -> np.ndarray:
    """A tensor or variable's values as float32 NumPy (exact from float16 and bfloat16)."""
    return np.asarray(tf.cast(t, tf.float32).numpy())


def _cell_variables(layer: keras.layers.Layer) -> list[Any]:
    return [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]


def export_weights(layer: keras.layers.Layer, cell: str, access: str) -> Weights:
    """A layer's recurrent weights in the canonical layout (`access` from `probe_layer`)."""
    if access == "export":
        return {k: np.asarray(v) for k, v in layer.export_weights().items()}
    return _canonical(cell, *(_float32(v) for v in _cell_variables(layer)))


def import_weights(
    layer: keras.layers.Layer, cell: str, access: str, weights: Mapping[str, np.ndarray], info: LayerInfo
) -> None:
    """Canonical weights (either layout) into the layer, folded into its own layout (`info`)."""
    if access == "export":
        layer.import_weights(to_layout(cell, weights, info.recurrent_bias, info.variant))
        return
    for variable, value in zip(_cell_variables(layer), _keras_arrays(cell, weights, info), strict=True):
        variable.assign(value)


class KerasLayer:
    """A bare layer from the factory (CPU) behind the conformance `Layer` API; forward runs as one
    traced `tf.function`, as the models do. `dtype` ("float32", "float16", "bfloat16") is the
    layer's dtype policy and its inputs' and state's; outputs come back as float32. Where the
    `dtype` policy cannot build the layer (TensorFlow's CPU QR, which Keras's orthogonal recurrent
    initializer calls, has no bfloat16 kernel), Keras's mixed policy `mixed_<dtype>` runs instead:
    float32 variables cast to `dtype` at each call, the same computation on weights that `dtype`
    holds exactly. `policy` says which ran, and why."""

    def __init__(
        self, factory: Factory, info: LayerInfo, input_size: int, hidden_size: int, seed: int, *, dtype: str = "float32"
    ) -> None:
        assert info.cell is not None and info.access is not None
        keras.utils.set_random_seed(seed)
        self.cell, self.access, self.info, self.variant = info.cell, info.access, info, info.variant
        self.input_size, self.hidden_size, self.n_states = input_size, hidden_size, info.n_states
        self.dtype, self.policy, self.factory = tf.as_dtype(dtype), dtype, factory
        self.layer = self._build(factory, dtype)
        state_spec = [tf.TensorSpec((None, hidden_size), self.dtype)] * self.n_states
        self._forward = tf.function(
            self._call, input_signature=[tf.TensorSpec((None, None, input_size), self.dtype), state_spec]
        )
        self._forward_masked = tf.function(
            self._call_masked,
            input_signature=[
                tf.TensorSpec((None, None, input_size), self.dtype),
                state_spec,
                tf.TensorSpec((None,), tf.int32),
            ],
        )

    def _build(self, factory: Factory, dtype: str) -> keras.layers.Layer:
        def make(**policy: str) -> keras.layers.Layer:
            layer = factory(self.hidden_size, return_sequences=True, return_state=True, **policy)
            layer.build((None, None, self.input_size))
            return layer

        if dtype == "float32":
            return make()
        try:
            return make(dtype=dtype)
        except Exception as exc:
            self.policy = f"mixed_{dtype} (the {dtype} policy could not build the layer: {first_line(exc)})"
            return make(dtype=f"mixed_{dtype}")

    def _call(self, x: tf.Tensor, states: list[tf.Tensor]) -> list[tf.Tensor]:
        return self.layer(x, initial_state=states)

    def _call_masked(self, x: tf.Tensor, states: list[tf.Tensor], lengths: tf.Tensor) -> list[tf.Tensor]:
        return self.layer(x, initial_state=states, mask=tf.sequence_mask(lengths, tf.shape(x)[1]))

    def _inputs(self, x: np.ndarray, state: Any) -> tuple[tf.Tensor, list[tf.Tensor]]:
        x = check_input(x, self.input_size)
        arrays = check_state(self.cell, state, len(x), self.hidden_size)
        cast = lambda a: tf.cast(tf.constant(np.asarray(a, np.float32)), self.dtype)  # noqa: E731
        return cast(x), [cast(a) for a in arrays]

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """With `lengths`, row b is read up to lengths[b] steps (a right-padded `mask`; Keras carries
        the state past the masked steps) and its final state is the one after them."""
        if lengths is None:
            y, *final = self._forward(*self._inputs(x, state))
        else:
            n = check_lengths(lengths, len(x), np.shape(x)[1] if np.ndim(x) == 3 else 0)
            y, *final = self._forward_masked(*self._inputs(x, state), tf.constant(n, tf.int32))
        out = _float32 if self.dtype != tf.float64 else lambda t: np.asarray(t.numpy())
        return out(y), pack_state(self.cell, [out(s) for s in final])

    def float64_twin(self) -> KerasLayer:
        """The same layer (the same weights) under the float64 dtype policy, outputs in float64:
        the "same computation" checks' second opinion on a float32 gap (benchmarks/README.md,
        "Rounding"); the caller's float32 inputs and state are widened exactly."""
        twin = KerasLayer(self.factory, self.info, self.input_size, self.hidden_size, 0, dtype="float64")
        twin.layer.set_weights([np.asarray(w, np.float64) for w in self.layer.get_weights()])
        return twin

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        """(dx, dW, dstate) of Σ dy ⊙ y + Σ dfinal ⊙ final state by GradientTape (`Layer.gradients`)."""
        xt, states = self._inputs(x, state)
        upstream = tf.ones((*x.shape[:2], self.hidden_size)) if dy is None else tf.constant(np.asarray(dy, np.float32))
        given = [] if dfinal is None else check_state(self.cell, dfinal, len(x), self.hidden_size)
        variables = _cell_variables(self.layer) if self.access == "standard" else list(self.layer.trainable_variables)
        with tf.GradientTape() as tape:
            tape.watch([xt, *states])
            y, *final = self.layer(xt, initial_state=states)
            loss = tf.reduce_sum(y * upstream)
            for s, d in zip(final, given, strict=False):
                loss += tf.reduce_sum(s * tf.constant(np.asarray(d, np.float32)))
        dx, *rest = tape.gradient(loss, [xt, *states, *variables])
        dstate = pack_state(
            self.cell,
            [np.zeros((len(x), self.hidden_size), np.float32) if g is None else g.numpy() for g in rest[: len(states)]],
        )
        dw = rest[len(states) :]
        if self.access == "standard":
            return dx.numpy(), _canonical(self.cell, *(g.numpy() for g in dw)), dstate
        grads = {
            str(k): np.zeros(tuple(v.shape)) if g is None else g.numpy()
            for k, (v, g) in enumerate(zip(variables, dw, strict=True))
        }
        read = lambda: {str(k): v.numpy() for k, v in enumerate(variables)}  # noqa: E731
        dw_canonical = canonical_gradients(
            self.cell, self.input_size, self.hidden_size, grads, self.import_weights, read, self.export_weights()
        )
        return dx.numpy(), dw_canonical, dstate

    def export_weights(self) -> Weights:
        return export_weights(self.layer, self.cell, self.access)

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights, self.variant)
        import_weights(self.layer, self.cell, self.access, checked, self.info)
