"""A Keras layer itself behind `adapters.native.NativeModule`: called eagerly on the caller's values
(TensorFlow tensors, or NumPy views for the non-contiguous layouts), no validation by the suite."""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from rnn_behaviour.adapters.native import NativeCall, max_change, numpy_layout


class KerasNative:
    """The factory's layer (return_sequences, return_state), built for the input size."""

    framework = "keras"
    immutable = (
        "TensorFlow tensors cannot be changed in place: checked are the NumPy arrays handed in and "
        "the initial_state list (same tensors, same length, after the calls)"
    )
    layouts: ClassVar[dict[str, str]] = {
        "contiguous": "a tf.Tensor (batch, time, features)",
        "strided": "a NumPy view x[:, ::2] of a (batch, 2 time, features) array",
        "transposed": "a NumPy view .transpose(1, 0, 2) of a (time, batch, features) array",
    }

    def __init__(self, layer: keras.layers.Layer, input_size: int, make: Any = None) -> None:
        self.layer, self.input_size, self.make = layer, input_size, make
        self.layer.build((None, None, input_size))

    def differentiable(self, dtype: str = "float32") -> Any:
        """The layer as a differentiable function in `dtype` ("float64": `make("float64")`, the
        factory's layer in that dtype policy, with this layer's weights), for the checks that hold
        its GradientTape to its own forward (adapters/on_keras/selfgrad.py)."""
        from rnn_behaviour.adapters.on_keras.selfgrad import KerasDifferentiable

        if dtype != "float32" and self.make is None:
            raise ValueError("no factory to build the layer in another dtype policy")
        return KerasDifferentiable(self.make, self.layer, self.input_size, dtype)

    def _call(self, x: Any, states: list[Any] | None) -> tuple[Any, list[Any]]:
        out = self.layer(x) if states is None else self.layer(x, initial_state=states)
        return out[0], list(out[1:])

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        states = None
        if state is not None:
            states = [
                tf.constant(np.asarray(s, np.float32)) for s in (state if isinstance(state, tuple | list) else [state])
            ]
        y, final = self._call(tf.constant(np.asarray(x, np.float32)), states)
        arrays = tuple(np.asarray(s) for s in final)
        return np.asarray(y), arrays if len(arrays) > 1 else arrays[0]

    def _layout(self, x: np.ndarray, layout: str) -> tuple[Any, np.ndarray]:
        """The input in `layout`, and the NumPy array the caller owns behind it."""
        view, owned = numpy_layout(x, layout)
        return (tf.constant(view) if layout == "contiguous" else view), owned

    def call(self, x: np.ndarray, state: Any, layout: str = "contiguous", backward: bool = False,
             repeats: int = 1, seed: int = 0) -> NativeCall:  # fmt: skip
        if backward and layout != "contiguous":
            raise ValueError("backward runs on the contiguous layout only")
        xt, owned = self._layout(x, layout)
        parts = [np.array(s, np.float32) for s in (state if isinstance(state, tuple | list) else [state])]
        states = [tf.constant(p) for p in parts]
        handed = list(states)
        before = owned.copy()
        generator = np.random.default_rng(seed)
        outputs = []
        for _ in range(repeats):
            if not backward:
                y, final = self._call(xt, states)
            else:
                xt = tf.convert_to_tensor(xt)
                with tf.GradientTape() as tape:
                    tape.watch([xt, *states])
                    y, final = self._call(xt, states)
                    loss = tf.add_n([
                        tf.reduce_sum(t * tf.constant(generator.normal(0.0, 1.0, tuple(t.shape)), t.dtype))
                        for t in (y, *final)
                    ])  # fmt: skip
                tape.gradient(loss, [xt, *states, *self.layer.trainable_variables])
            outputs.append((np.asarray(y), [np.asarray(s) for s in final]))
        kept = len(states) == len(handed) and all(a is b for a, b in zip(states, handed, strict=False))
        changed = {"x": max_change(before, owned), "the initial_state list": 0.0 if kept else float("inf")}
        return NativeCall(outputs, changed)
