"""A custom Keras LSTM cell written from the equations, wrapped in `keras.layers.RNN`.

    z = x_t K + h R + b,  [i | f | c̃ | o] = split(z)  (Keras's gate order)
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(c̃)        h' = σ(o) ⊙ tanh(c')

The cell's weights are called `kernel`, `recurrent_kernel` and `bias`, as in Keras's own cells,
so the suite holds it to the float64 reference too. The factory is called like
`keras.layers.LSTM`: `keras_cell(units, return_sequences=..., return_state=..., stateful=...,
name=...)`; `keras.layers.RNN` takes those and works out the state (h, c) from `state_size`.
Initialisation follows `keras.layers.LSTM` (Glorot kernel, orthogonal recurrent kernel, forget
bias 1).

    pytest benchmarks --adapter keras:examples.keras_cell:keras_cell -k "keras_cell-"
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from typing import Any

import keras
from keras import ops


class LSTMCell(keras.layers.Layer):
    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        n = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * n), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(n, 4 * n), initializer="orthogonal", name="recurrent_kernel")
        forget_bias_one = ops.concatenate([ops.zeros((n,)), ops.ones((n,)), ops.zeros((2 * n,))])
        self.bias = self.add_weight(shape=(4 * n,), initializer=lambda shape, dtype=None: forget_bias_one, name="bias")

    def call(self, inputs: Any, states: list[Any], training: bool = False) -> tuple[Any, list[Any]]:
        h, c = states
        i, f, g, o = ops.split(ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias, 4, 1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def keras_cell(units: int, **layer_kwargs: Any) -> keras.layers.RNN:
    return keras.layers.RNN(LSTMCell(units), **layer_kwargs)
