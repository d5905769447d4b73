"""Conformance's view of stacks for a Keras factory: layers from the factory stacked (layer k+1
reads layer k's sequence) and/or each wrapped in `keras.layers.Bidirectional(merge_mode="concat")`,
NumPy in and out, the state mapped to PyTorch's layout of adapters/reference_stack.py.

Keras's Bidirectional with `return_state=True` returns [y, h_fwd, (c_fwd), h_bwd, (c_bwd)] and
takes its `initial_state` in the same order; row `layer * num_directions + direction` of the
stacked state is one direction's (h, c). A layer that Bidirectional cannot wrap (it clones the
layer with `go_backwards=True` from its config) is a skip with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rnn_behaviour.adapters.base import check_input
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.on_keras.layer import import_weights
from rnn_behaviour.adapters.on_keras.probe import Factory, LayerInfo
from rnn_behaviour.adapters.reference_stack import NotStackable, check_stack_weights, suffix, units


class KerasStack:
    """`num_layers` layers from the factory, each bidirectional when asked, behind
    adapters/reference_stack.StackLayer."""

    def __init__(self, factory: Factory, target: str, info: LayerInfo, input_size: int, hidden_size: int,
                 num_layers: int, bidirectional: bool, seed: int) -> None:  # fmt: skip
        assert info.cell is not None and info.access is not None
        keras.utils.set_random_seed(seed)
        self.cell, self.access, self.n_states, self.info = info.cell, info.access, info.n_states, info
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.layers: list[keras.layers.Layer] = []
        self.directions: dict[str, keras.layers.Layer] = {}
        width = input_size
        for layer in range(num_layers):
            base = factory(hidden_size, return_sequences=True, return_state=True)
            wrapped = base
            if bidirectional:
                try:
                    wrapped = keras.layers.Bidirectional(base, merge_mode="concat")
                    wrapped.build((None, None, width))
                except Exception as exc:
                    raise NotStackable(
                        f"keras.layers.Bidirectional cannot wrap {target}'s layer: {first_line(exc)}"
                    ) from None
                self.directions[suffix(layer, 0)] = wrapped.forward_layer
                self.directions[suffix(layer, 1)] = wrapped.backward_layer
            else:
                base.build((None, None, width))
                self.directions[suffix(layer, 0)] = base
            self.layers.append(wrapped)
            width = (2 if bidirectional else 1) * hidden_size

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        inputs = tf.constant(check_input(x, self.input_size))
        rows = self.num_layers * (2 if self.bidirectional else 1)
        shape = (rows, len(x), self.hidden_size)
        if state is None:
            arrays = [np.zeros(shape, np.float32)] * self.n_states
        else:
            arrays = [np.asarray(s, np.float32) for s in (state if isinstance(state, tuple | list) else (state,))]
        finals: dict[int, list[np.ndarray]] = {}
        n = 2 if self.bidirectional else 1
        for layer, wrapped in enumerate(self.layers):
            initial = [tf.constant(a[layer * n + d]) for d in range(n) for a in arrays]
            y, *states = wrapped(inputs, initial_state=initial)
            for d in range(n):
                finals[layer * n + d] = [s.numpy() for s in states[d * self.n_states : (d + 1) * self.n_states]]
            inputs = y
        out = [np.stack([finals[r][k] for r in range(rows)]) for k in range(self.n_states)]
        return inputs.numpy(), (out[0], out[1]) if self.cell == "lstm" else out[0]

    def import_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        checked = check_stack_weights(
            self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, weights
        )
        for layer, direction, _ in units(self.num_layers, self.bidirectional):
            name = suffix(layer, direction)
            import_weights(self.directions[name], self.cell, self.access, checked[name], self.info)
