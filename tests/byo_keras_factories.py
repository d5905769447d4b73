"""Keras factories broken in one way each, for the bring-your-own-RNN tests (imports keras)."""

from __future__ import annotations

from typing import Any

import keras


def units_only(units: int) -> keras.layers.Layer:
    """Takes no layer keyword arguments: the model cannot ask for states or sequences."""
    return keras.layers.LSTM(units)


def drops_return_state(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """Swallows return_state: the layer hands back no state."""
    layer_kwargs.pop("return_state", None)
    return keras.layers.GRU(units, **layer_kwargs)


def reset_before_gru(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """A fine layer in the GRU's reset-before variant: weight checks run against that variant."""
    return keras.layers.GRU(units, reset_after=False, **layer_kwargs)


class _EagerOnly(keras.layers.LSTM):
    """Reads its input's values in Python (`.numpy()`): fine on a concrete array, an error on the
    suite's symbolic `keras.Input` and inside a `tf.function`."""

    def call(self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False) -> Any:
        if float(sequences.numpy().std()) == 0.0:
            sequences = sequences + 0.0
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)


def eager_only(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    return _EagerOnly(units, **layer_kwargs)


class _StaticLength(keras.layers.LSTM):
    """Needs a static length (`int(x.shape[1])`): an error on `keras.Input(shape=(None, F))`."""

    def call(self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False) -> Any:
        steps = int(sequences.shape[1])
        return super().call(sequences[:, :steps], initial_state=initial_state, mask=mask, training=training)


def static_length(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    return _StaticLength(units, **layer_kwargs)


class _GrowsWhenStateful(keras.layers.LSTM):
    """Adds a weight of its own when `stateful=True`: the stateful twin cannot take the layer's weights."""

    def build(self, sequences_shape: Any) -> None:
        super().build(sequences_shape)
        if self.stateful:
            self.extra = self.add_weight(shape=(self.units,), initializer="zeros", name="extra")


def grows_when_stateful(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    return _GrowsWhenStateful(units, **layer_kwargs)


def declares_no_stateful(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """A factory that declares no stateful training (and so is not asked for a stateful twin)."""
    return _GrowsWhenStateful(units, **layer_kwargs)


declares_no_stateful.rnn_behaviour_capabilities = {"stateful_training": "no stateful form"}  # type: ignore[attr-defined]


class _MemoryCell(keras.layers.Layer):
    """An LMU-like cell: a hidden state of `units` and a memory of MEMORY values (not units), so its
    `state_size` is [units, MEMORY]: the suite's model reads each state's shape from the layer."""

    MEMORY = 3

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, self.MEMORY]
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        features = input_shape[-1]
        self.kernel = self.add_weight(shape=(features + self.MEMORY, self.units), name="kernel")
        self.recurrent = self.add_weight(shape=(self.units, self.units), name="recurrent", initializer="orthogonal")
        self.encoder = self.add_weight(shape=(features, self.MEMORY), name="encoder")

    def call(self, x: Any, states: Any) -> Any:
        h, m = states
        m = 0.9 * m + keras.ops.matmul(x, self.encoder)
        h = keras.ops.tanh(
            keras.ops.matmul(keras.ops.concatenate([x, m], -1), self.kernel) + keras.ops.matmul(h, self.recurrent)
        )
        return h, [h, m]


def memory_state(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """Passes: a layer whose second state is (batch, 3), whatever its units."""
    return keras.layers.RNN(_MemoryCell(units), **layer_kwargs)
