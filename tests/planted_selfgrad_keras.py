"""A Keras LSTM cell (examples/keras_cell.py) whose forward is exact but whose backward is wrong: the
cell state passes through a `tf.custom_gradient` identity that hands back the upstream gradient
sign-flipped. The reference checks (`gradients`) and `self_gradients` both fail it; the checks that
ran on any module before issue 24 pass it (tests/test_conformance_selfgrad.py).

    pytest benchmarks/test_conformance.py --adapter keras:tests.planted_selfgrad_keras:flipped_cell -k flipped
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from typing import Any

import keras
import tensorflow as tf

from examples.keras_cell import LSTMCell


@tf.custom_gradient
def _flipped(c: tf.Tensor) -> Any:
    return tf.identity(c), lambda upstream: -upstream


class FlippedCell(LSTMCell):
    def call(self, inputs: Any, states: list[Any], training: bool = False) -> tuple[Any, list[Any]]:
        h, [h, c] = super().call(inputs, states, training)
        return h, [h, _flipped(c)]


def flipped_cell(units: int, **layer_kwargs: Any) -> keras.layers.RNN:
    return keras.layers.RNN(FlippedCell(units), **layer_kwargs)
