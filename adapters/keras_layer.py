"""Conformance's view of a Keras layer: a bare layer (NumPy in and out, canonical state) and whole-model
weights in the canonical layout of adapters/reference.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from adapters.base import (
    AdapterError,
    check_input,
)
from adapters.custom import (
    canonical_gradients,
)
from adapters.keras_probe import KERAS_GATES, Factory, LayerInfo
from adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    pack_state,
    to_stacked,
)

# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)


def _canonical(cell: str, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> Weights:
    """kernel/recurrent_kernel/bias -> canonical; a reset-after GRU's bias is (2, 3H): [input; recurrent]."""
    if cell == "gru":
        return from_stacked(cell, KERAS_GATES[cell], kernel, recurrent, bias[0], bias[1])
    return from_stacked(cell, KERAS_GATES[cell], kernel, recurrent, bias)


def _keras_arrays(cell: str, weights: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    kernel, recurrent, bias, recurrent_bias = to_stacked(cell, KERAS_GATES[cell], weights)
    if recurrent_bias is not None:
        bias = np.stack([bias, recurrent_bias])
    return [np.asarray(a, np.float32) for a in (kernel, recurrent, bias)]


def _cell_variables(layer: keras.layers.Layer) -> list[Any]:
    return [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]


def export_weights(layer: keras.layers.Layer, cell: str, access: str) -> Weights:
    """A layer's recurrent weights in the canonical layout (`access` from `probe_layer`)."""
    if access == "export":
        return {k: np.asarray(v) for k, v in layer.export_weights().items()}
    return _canonical(cell, *(np.asarray(v.numpy()) for v in _cell_variables(layer)))


def import_weights(layer: keras.layers.Layer, cell: str, access: str, weights: Mapping[str, np.ndarray]) -> None:
    if access == "export":
        layer.import_weights(dict(weights))
        return
    for variable, value in zip(_cell_variables(layer), _keras_arrays(cell, weights), strict=True):
        variable.assign(value)


class KerasLayer:
    """A bare layer from the factory (float32, CPU) behind the conformance `Layer` API; forward
    runs as one traced `tf.function`, as the models do."""

    def __init__(self, factory: Factory, info: LayerInfo, input_size: int, hidden_size: int, seed: int) -> None:
        assert info.cell is not None and info.access is not None
        keras.utils.set_random_seed(seed)
        self.cell, self.access = info.cell, info.access
        self.input_size, self.hidden_size, self.n_states = input_size, hidden_size, info.n_states
        self.layer = factory(hidden_size, return_sequences=True, return_state=True)
        self.layer.build((None, None, input_size))
        state_spec = [tf.TensorSpec((None, hidden_size), tf.float32)] * self.n_states
        self._forward = tf.function(
            self._call, input_signature=[tf.TensorSpec((None, None, input_size), tf.float32), state_spec]
        )
        self._forward_masked = tf.function(
            self._call_masked,
            input_signature=[
                tf.TensorSpec((None, None, input_size), tf.float32),
                state_spec,
                tf.TensorSpec((None,), tf.int32),
            ],
        )

    def _call(self, x: tf.Tensor, states: list[tf.Tensor]) -> list[tf.Tensor]:
        return self.layer(x, initial_state=states)

    def _call_masked(self, x: tf.Tensor, states: list[tf.Tensor], lengths: tf.Tensor) -> list[tf.Tensor]:
        return self.layer(x, initial_state=states, mask=tf.sequence_mask(lengths, tf.shape(x)[1]))

    def _inputs(self, x: np.ndarray, state: Any) -> tuple[tf.Tensor, list[tf.Tensor]]:
        x = check_input(x, self.input_size)
        arrays = check_state(self.cell, state, len(x), self.hidden_size)
        return tf.constant(x), [tf.constant(np.asarray(a, np.float32)) for a in arrays]

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """With `lengths`, row b is read up to lengths[b] steps (a right-padded `mask`; Keras carries
        the state past the masked steps) and its final state is the one after them."""
        if lengths is None:
            y, *final = self._forward(*self._inputs(x, state))
        else:
            n = np.asarray(lengths)
            t = np.shape(x)[1] if np.ndim(x) == 3 else 0
            if n.shape != (len(x),) or not np.issubdtype(n.dtype, np.integer) or n.min() < 1 or n.max() > t:
                raise AdapterError(f"lengths must be {len(x)} whole numbers in 1..{t}; got {n.tolist()}")
            y, *final = self._forward_masked(*self._inputs(x, state), tf.constant(n, tf.int32))
        return y.numpy(), pack_state(self.cell, [s.numpy() for s in final])

    def gradients(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Weights]:
        xt, states = self._inputs(x, state)
        variables = _cell_variables(self.layer) if self.access == "standard" else list(self.layer.trainable_variables)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total = tf.reduce_sum(self.layer(xt, initial_state=states)[0])
        dx, *dw = tape.gradient(total, [xt, *variables])
        if self.access == "standard":
            return dx.numpy(), _canonical(self.cell, *(g.numpy() for g in dw))
        grads = {
            str(k): np.zeros(tuple(v.shape)) if g is None else g.numpy()
            for k, (v, g) in enumerate(zip(variables, dw, strict=True))
        }
        read = lambda: {str(k): v.numpy() for k, v in enumerate(variables)}  # noqa: E731
        dw_canonical = canonical_gradients(
            self.cell, self.input_size, self.hidden_size, grads, self.import_weights, read, self.export_weights()
        )
        return dx.numpy(), dw_canonical

    def export_weights(self) -> Weights:
        return export_weights(self.layer, self.cell, self.access)

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights)
        import_weights(self.layer, self.cell, self.access, checked)
