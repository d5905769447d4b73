"""Keras 3 adapters (TensorFlow backend): `keras.layers.LSTM`, `GRU` and `SimpleRNN`.

The model is [per-step Dense] -> RNN(return_state=True) -> Dense head, built functionally with
the initial state as inputs, so `predict(x, state)` can continue a sequence. Training runs a
whole epoch of GradientTape steps inside one `tf.function` (measured here: ~0.10 s/epoch on the
seed 000 task against ~0.47 s for `model.fit`); the optimizer, losses and layers are Keras's own,
initialisation included. Predict is a traced `tf.function` too: Keras is never timed eager.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from adapters.base import (
    AdapterError,
    Capabilities,
    FitLog,
    StopFn,
    check_input,
    check_stateful,
    epoch_batches,
    stream_chunks,
    train_loop,
)
from adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    match_shapes,
    pack_state,
    to_stacked,
)
from tasks.base import Budget, ModelSpec, Split

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the keras adapters need KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}")

CELLS: dict[str, tuple[type[keras.layers.Layer], int]] = {
    "lstm": (keras.layers.LSTM, 2),
    "gru": (keras.layers.GRU, 1),
    "rnn": (keras.layers.SimpleRNN, 1),
}
HEAD_ACTIVATION = {"linear": None, "softmax": "softmax", "tanh": "tanh"}


class KerasModel:
    def __init__(self, spec: ModelSpec, cell: str, seed: int) -> None:
        keras.utils.set_random_seed(seed)
        self.spec = spec
        self.layer_cls, self.n_states = CELLS[cell]
        self.proj = keras.layers.Dense(spec.input_projection, name="proj") if spec.input_projection else None
        self.rnn = self._rnn(spec.return_sequences, name="rnn", return_state=True)
        self.head = keras.layers.Dense(spec.output_size, activation=HEAD_ACTIVATION[spec.head], name="head")
        self.keras_model = self._model(self.rnn)
        self._last_model: keras.Model | None = None
        self.n_params = int(self.keras_model.count_params())
        self.rng = np.random.default_rng(seed)
        self._forward = tf.function(self._call, reduce_retracing=True)

    def _rnn(self, return_sequences: bool, name: str, **kwargs: Any) -> keras.layers.Layer:
        return self.layer_cls(self.spec.hidden_size, return_sequences=return_sequences, name=name, **kwargs)

    def _model(self, rnn: keras.layers.Layer) -> keras.Model:
        """[proj] -> rnn -> head with the initial state as inputs and the final state as outputs."""
        x_in = keras.Input(shape=(None, self.spec.input_size), name="x")
        states_in = [keras.Input(shape=(self.spec.hidden_size,), name=f"state{i}") for i in range(self.n_states)]
        h = self.proj(x_in) if self.proj is not None else x_in
        seq, *states_out = rnn(h, initial_state=states_in)
        return keras.Model([x_in, *states_in], [self.head(seq), *states_out])

    def _zeros(self, x: tf.Tensor) -> list[tf.Tensor]:
        return [tf.zeros((tf.shape(x)[0], self.spec.hidden_size)) for _ in range(self.n_states)]

    def _call(self, x: tf.Tensor, states: list[tf.Tensor], last_only: bool = False) -> list[tf.Tensor]:
        model = self.keras_model
        if last_only:
            assert self._last_model is not None, "predict_last builds the many-to-one model first"
            model = self._last_model
        return model([x, *states], training=False)

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog:
        if budget.loss == "crossentropy":
            loss_fn: keras.losses.Loss = keras.losses.SparseCategoricalCrossentropy()
            y_all = np.asarray(train.y, np.int32)
        else:
            loss_fn = keras.losses.MeanSquaredError()
            y_all = np.asarray(train.y, np.float32)
        x_all = np.asarray(train.x, np.float32)
        optimizer = keras.optimizers.Adam(learning_rate=budget.learning_rate)
        if self.spec.stateful:
            return self._fit_stateful(train, budget, stop, x_all, y_all, loss_fn, optimizer)
        model = self.keras_model
        optimizer.build(model.trainable_variables)

        @tf.function(reduce_retracing=True)
        def epoch(xs: tf.Tensor, ys: tf.Tensor) -> tf.Tensor:
            total = tf.constant(0.0)
            for i in tf.range(tf.shape(xs)[0]):
                with tf.GradientTape() as tape:
                    pred = model([xs[i], *self._zeros(xs[i])], training=True)[0]
                    loss = loss_fn(ys[i], pred)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)
                total += loss
            return total / tf.cast(tf.shape(xs)[0], tf.float32)

        def run_epoch() -> float:
            order = np.stack(list(epoch_batches(len(train), budget.batch_size, budget.shuffle, self.rng)))
            return float(epoch(tf.constant(x_all[order]), tf.constant(y_all[order])))

        return train_loop(self, train, budget, stop, run_epoch)

    def _fit_stateful(
        self,
        train: Split,
        budget: Budget,
        stop: StopFn,
        x_all: np.ndarray,
        y_all: np.ndarray,
        loss_fn: keras.losses.Loss,
        optimizer: keras.optimizers.Optimizer,
    ) -> FitLog:
        """Keras's own stateful recipe: a twin model with `stateful=True` on a fixed
        `batch_shape`, fed consecutive chunks without shuffling, `reset_state()` every epoch. Its
        weights are copied into the predict model after each epoch."""
        window = check_stateful(self.spec, train, budget)
        chunks = stream_chunks(x_all.shape[1], window)
        x_in = keras.Input(batch_shape=(len(x_all), window, self.spec.input_size))
        stateful_rnn = self._rnn(self.spec.return_sequences, name="rnn_stateful", stateful=True)
        h = self.proj(x_in) if self.proj is not None else x_in
        train_model = keras.Model(x_in, self.head(stateful_rnn(h)))
        stateful_rnn.set_weights(self.rnn.get_weights())
        optimizer.build(train_model.trainable_variables)
        xs = tf.constant(np.stack([x_all[:, c] for c in chunks]))
        ys = tf.constant(np.stack([y_all[:, c] for c in chunks]))

        @tf.function
        def epoch() -> tf.Tensor:
            total = tf.constant(0.0)
            for i in tf.range(len(chunks)):
                with tf.GradientTape() as tape:
                    loss = loss_fn(ys[i], train_model(xs[i], training=True))
                grads = tape.gradient(loss, train_model.trainable_variables)
                optimizer.apply(grads, train_model.trainable_variables)
                total += loss
            return total / len(chunks)

        def run_epoch() -> float:
            stateful_rnn.reset_state()
            loss = float(epoch())
            self.rnn.set_weights(stateful_rnn.get_weights())
            return loss

        return train_loop(self, train, budget, stop, run_epoch)

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self._predict(x, state, last_only=False)

    def predict_last(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """The many-to-one path: a twin layer with `return_sequences=False`, same weights."""
        if self._last_model is None:
            self._last_rnn = self._rnn(False, name="rnn_last", return_state=True)
            self._last_model = self._model(self._last_rnn)
        self._last_rnn.set_weights(self.rnn.get_weights())
        return self._predict(x, state, last_only=True)

    def _predict(self, x: np.ndarray, state: Any, last_only: bool) -> tuple[np.ndarray, Any]:
        x = check_input(x, self.spec.input_size)
        if state is None:
            states = [np.zeros((len(x), self.spec.hidden_size), np.float32) for _ in range(self.n_states)]
        else:
            states = [np.asarray(s, np.float32) for s in (state if isinstance(state, tuple) else (state,))]
            expected = (len(x), self.spec.hidden_size)
            if len(states) != self.n_states or any(s.shape != expected for s in states):
                got = [s.shape for s in states]
                raise AdapterError(f"state must be {self.n_states} array(s) of shape {expected}; got {got}")
        y, *new_states = self._forward(tf.constant(x), [tf.constant(s) for s in states], last_only)
        out = tuple(s.numpy() for s in new_states)
        return y.numpy(), (out if self.n_states > 1 else out[0])


# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)

#: Keras's gate blocks, named canonically: LSTM i,f,c,o (c is g); GRU z,r,h (h is n).
KERAS_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n"), "rnn": ("h",)}


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


def _rnn_cell(layer: keras.layers.Layer) -> str:
    cell = next(c for c, (cls, _) in CELLS.items() if type(layer) is cls)
    if cell == "gru" and not layer.cell.reset_after:
        raise AdapterError("a Keras GRU with reset_after=False has no canonical layout (it is the reset-before form)")
    return cell


class KerasLayer:
    """A bare `keras.layers.LSTM`/`GRU`/`SimpleRNN` (float32, CPU) behind the conformance `Layer`
    API; forward runs as one traced `tf.function`, as the models do."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, seed: int) -> None:
        keras.utils.set_random_seed(seed)
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        layer_cls, self.n_states = CELLS[cell]
        self.layer = layer_cls(hidden_size, return_sequences=True, return_state=True)
        self.layer.build((None, None, input_size))
        state_spec = [tf.TensorSpec((None, hidden_size), tf.float32)] * self.n_states
        self._forward = tf.function(
            self._call, input_signature=[tf.TensorSpec((None, None, input_size), tf.float32), state_spec]
        )

    def _call(self, x: tf.Tensor, states: list[tf.Tensor]) -> list[tf.Tensor]:
        return self.layer(x, initial_state=states)

    def _inputs(self, x: np.ndarray, state: Any) -> tuple[tf.Tensor, list[tf.Tensor]]:
        x = check_input(x, self.input_size)
        arrays = check_state(self.cell, state, len(x), self.hidden_size)
        return tf.constant(x), [tf.constant(np.asarray(a, np.float32)) for a in arrays]

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        y, *final = self._forward(*self._inputs(x, state))
        return y.numpy(), pack_state(self.cell, [s.numpy() for s in final])

    def gradients(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Weights]:
        xt, states = self._inputs(x, state)
        variables = [self.layer.cell.kernel, self.layer.cell.recurrent_kernel, self.layer.cell.bias]
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total = tf.reduce_sum(self.layer(xt, initial_state=states)[0])
        dx, *dw = tape.gradient(total, [xt, *variables])
        return dx.numpy(), _canonical(self.cell, *(g.numpy() for g in dw))

    def export_weights(self) -> Weights:
        return _canonical(self.cell, *self.layer.get_weights())

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights)
        self.layer.set_weights(_keras_arrays(self.cell, checked))


def export_model_weights(model: KerasModel) -> Weights:
    """[proj] -> rnn -> head of a `KerasModel` in the canonical layout (kernels as (in, out))."""
    layers = {layer.name: layer for layer in model.keras_model.layers}
    out = {}
    for name in ("proj", "head"):
        if name in layers:
            kernel, bias = layers[name].get_weights()
            out[f"{name}.kernel"], out[f"{name}.bias"] = kernel, bias
    cell = _rnn_cell(layers["rnn"])
    out.update({f"rnn.{k}": v for k, v in _canonical(cell, *layers["rnn"].get_weights()).items()})
    return out


def import_model_weights(model: KerasModel, weights: Mapping[str, np.ndarray]) -> None:
    shapes = {k: v.shape for k, v in export_model_weights(model).items()}
    weights = match_shapes(shapes, weights, "model weights")
    layers = {layer.name: layer for layer in model.keras_model.layers}
    cell = _rnn_cell(layers["rnn"])
    rnn = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
    layers["rnn"].set_weights(_keras_arrays(cell, rnn))
    for name in ("proj", "head"):
        if name in layers:
            layers[name].set_weights([np.asarray(weights[f"{name}.{part}"], np.float32) for part in ("kernel", "bias")])


class KerasAdapter:
    framework = "keras"
    capabilities = Capabilities(stateful_training=True, variable_length=False, weight_io=True, gpu=False)

    def __init__(self, cell: str) -> None:
        self.cell = cell
        self.name = f"keras-{cell}"

    def build(self, spec: ModelSpec, seed: int) -> KerasModel:
        return KerasModel(spec, self.cell, seed)

    def versions(self) -> dict[str, str]:
        return {"keras": keras.__version__, "tensorflow": tf.__version__}

    def compute_path(self) -> dict[str, str]:
        return {
            "device": "cpu",
            "backend": keras.backend.backend(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "cudnn": "False",
        }

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> KerasLayer:
        """A bare layer of this cell for conformance, weights in the canonical layout."""
        return KerasLayer(self.cell, input_size, hidden_size, seed)

    def export_model(self, model: KerasModel) -> Weights:
        return export_model_weights(model)

    def import_model(self, model: KerasModel, weights: Mapping[str, np.ndarray]) -> None:
        import_model_weights(model, weights)
