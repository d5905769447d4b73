"""Keras 3 adapters (TensorFlow backend): any layer factory `factory(units, **layer_kwargs)` that
returns a recurrent layer taking `return_sequences`, `return_state` and `stateful` like
`keras.layers.LSTM`.

The built-ins `keras-lstm`, `keras-gru`, `keras-rnn` are the factories `keras.layers.LSTM`, `GRU`
and `SimpleRNN` themselves; `--adapter keras:pkg.module:factory` puts a user's layer (e.g. a custom
cell in `keras.layers.RNN`) through the same model, training loop and state handling. The factory
is called as `factory(hidden_size, return_sequences=..., return_state=..., name=...)` (and
`stateful=True` for stateful training); the number of state tensors is discovered at load.
The model is [per-step Dense] -> RNN(return_state=True) -> Dense head, built functionally with
the initial state as inputs, so `predict(x, state)` can continue a sequence. Training runs a
whole epoch of GradientTape steps inside one `tf.function` (measured here: ~0.10 s/epoch on the
seed 000 task against ~0.47 s for `model.fit`); the optimizer, losses and layers are Keras's own,
initialisation included. Predict is a traced `tf.function` too: Keras is never timed eager.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rnn_behaviour.adapters.base import (
    DEVICE_VARIABLE,
    AdapterError,
    Capabilities,
    FitLog,
    StopFn,
    check_input,
    check_stateful,
    device_request,
    epoch_batches,
    stream_chunks,
    threads,
    train_loop,
)
from rnn_behaviour.adapters.custom import (
    apply_declaration,
    import_target,
    with_length,
)
from rnn_behaviour.adapters.on_keras.layer import KerasLayer, export_weights, import_weights
from rnn_behaviour.adapters.on_keras.native import KerasNative
from rnn_behaviour.adapters.on_keras.probe import Factory, LayerInfo, probe_layer, probe_model, state_shapes
from rnn_behaviour.adapters.on_keras.stack import KerasStack
from rnn_behaviour.adapters.reference import (
    Weights,
    match_shapes,
    model_to_layout,
)
from rnn_behaviour.tasks.base import UNSCORED, Budget, ModelSpec, Split

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the keras adapters need KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}")

#: TensorFlow's intra- and inter-op threads, as for PyTorch (adapters/on_torch/model.py): one by default,
#: so that serial runs and pytest-xdist workers compute alike and workers do not fight for cores.
THREADS = threads()
try:
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    if os.environ.get(DEVICE_VARIABLE, "cpu") == "cpu":  # `--device cpu`: TensorFlow sees no GPU
        tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TensorFlow already ran something in this process: its settings stand
    pass
GPUS = tf.config.get_visible_devices("GPU")
if GPUS:
    tf.config.experimental.enable_tensor_float_32_execution(False)


def gru_reset_before(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """`keras.layers.GRU(reset_after=False)`, the Keras 2 / TF1 / ONNX-default form of the GRU:
    conformance holds it to the reference's reset-before variant (`--adapter
    keras:rnn_behaviour.adapters.on_keras.model:gru_reset_before`; not a built-in row)."""
    return keras.layers.GRU(units, reset_after=False, **layer_kwargs)


def check_device() -> str:
    """Where Keras runs ("cpu" or "gpu") for this run's `--device`; on a GPU, TF32 is off."""
    request = device_request()
    if request == "cuda" and not GPUS:
        raise AdapterError(
            "--device cuda, but TensorFlow sees no GPU (the lock installs tensorflow-cpu; a GPU needs "
            "tensorflow[and-cuda])"
        )
    return "gpu" if GPUS and request != "cpu" else "cpu"


HEAD_ACTIVATION = {"linear": None, "softmax": "softmax", "tanh": "tanh"}


def adam(budget: Budget) -> keras.optimizers.Adam:
    """Adam at the budget's rate, clipping the gradients to its global norm if it sets one."""
    return keras.optimizers.Adam(learning_rate=budget.learning_rate, global_clipnorm=budget.clip_norm)


def _loss(budget: Budget, unscored: bool = True) -> tuple[keras.losses.Loss, Any]:
    """The budget's loss and the dtype of the targets it takes. UNSCORED targets are left out of a
    cross-entropy, as torch's ignore_index does. `fit` sets Keras's `ignore_class` only when its
    targets hold one (`unscored`): it computes the loss another way, and a task without UNSCORED
    targets then trains exactly as before (alphabet_varlen's accuracy moved, 0.99 -> 0.978)."""
    if budget.loss == "crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(ignore_class=UNSCORED if unscored else None), np.int32
    return keras.losses.MeanSquaredError(), np.float32


class KerasModel:
    def __init__(self, spec: ModelSpec, factory: Factory, info: LayerInfo, seed: int) -> None:
        #: Each state's shape without the batch: (units,) for keras.layers.LSTM's (read first, since
        #: a layer built to read them draws from Keras's seeded generator).
        self.state_shapes = state_shapes(factory, info, spec.hidden_size, spec.input_projection or spec.input_size)
        keras.utils.set_random_seed(seed)
        self.spec = spec
        self.factory, self.n_states = factory, info.n_states
        self.proj = keras.layers.Dense(spec.input_projection, name="proj") if spec.input_projection else None
        self.rnn = self._rnn(spec.return_sequences, name="rnn", return_state=True)
        self.head = keras.layers.Dense(spec.output_size, activation=HEAD_ACTIVATION[spec.head], name="head")
        self.keras_model = self._model(self.rnn)
        self._last_model: keras.Model | None = None
        self.n_params = int(self.keras_model.count_params())
        self.rng = np.random.default_rng(seed)
        self._forward = tf.function(self._call, reduce_retracing=True)

    def _rnn(self, return_sequences: bool, name: str, **kwargs: Any) -> keras.layers.Layer:
        return self.factory(self.spec.hidden_size, return_sequences=return_sequences, name=name, **kwargs)

    def _model(self, rnn: keras.layers.Layer) -> keras.Model:
        """[proj] -> rnn -> head with the initial state as inputs and the final state as outputs."""
        x_in = keras.Input(shape=(None, self.spec.input_size), name="x")
        states_in = [keras.Input(shape=shape, name=f"state{i}") for i, shape in enumerate(self.state_shapes)]
        h = self.proj(x_in) if self.proj is not None else x_in
        seq, *states_out = rnn(h, initial_state=states_in)
        return keras.Model([x_in, *states_in], [self.head(seq), *states_out])

    def _zeros(self, x: tf.Tensor) -> list[tf.Tensor]:
        return [tf.zeros((tf.shape(x)[0], *shape)) for shape in self.state_shapes]

    def _call(self, x: tf.Tensor, states: list[tf.Tensor], last_only: bool = False) -> list[tf.Tensor]:
        model = self.keras_model
        if last_only:
            assert self._last_model is not None, "predict_last builds the many-to-one model first"
            model = self._last_model
        return model([x, *states], training=False)

    def make_train_step(self, budget: Budget) -> Callable[[np.ndarray, np.ndarray], float]:
        """One training step on one batch from the zero state, traced once (the speed
        benchmark's train step: Keras timed compiled, never eager)."""
        loss_fn, y_dtype = _loss(budget)
        model = self.keras_model
        optimizer = adam(budget)
        optimizer.build(model.trainable_variables)

        @tf.function(reduce_retracing=True)
        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model([x, *self._zeros(x)], training=True)[0])
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        return lambda x, y: float(step(tf.constant(x, tf.float32), tf.constant(np.asarray(y, y_dtype))))

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog:
        loss_fn, y_dtype = _loss(budget, unscored=bool(np.any(np.asarray(train.y) == UNSCORED)))
        y_all = np.asarray(train.y, y_dtype)
        x_all = np.asarray(train.x, np.float32)
        optimizer = adam(budget)
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
        expected = [(len(x), *shape) for shape in self.state_shapes]
        if state is None:
            states = [np.zeros(shape, np.float32) for shape in expected]
        else:
            states = [np.asarray(s, np.float32) for s in (state if isinstance(state, tuple) else (state,))]
            if [s.shape for s in states] != expected:
                got = [s.shape for s in states]
                raise AdapterError(f"state must be {self.n_states} array(s) of shape(s) {expected}; got {got}")
        y, *new_states = self._forward(tf.constant(x), [tf.constant(s) for s in states], last_only)
        out = tuple(s.numpy() for s in new_states)
        return y.numpy(), (out if self.n_states > 1 else out[0])


class KerasAdapter:
    """Wraps a layer factory: the built-ins pass `keras.layers:LSTM` (etc.), `--adapter
    keras:pkg.module:factory` a user's. The factory is probed at load (`probe_layer`)."""

    framework = "keras"

    def __init__(self, factory: str | Factory, name: str | None = None) -> None:
        if isinstance(factory, str):
            self.target = factory
            self.factory: Factory = import_target(factory, f"keras factory {factory}")
        else:
            self.target, self.factory = getattr(factory, "__qualname__", repr(factory)), factory
        if not callable(self.factory):
            raise AdapterError(f"{self.target} is a {type(self.factory).__name__}, not a callable factory")
        self.name = name or self.target
        self.device = check_device()
        self.info = probe_layer(self.factory, self.target)
        stateful = self.info.declared.get("stateful_training", True) is True
        probe_model(lambda spec: KerasModel(spec, self.factory, self.info, seed=0), self.target, stateful)
        self.cell, self.variant = self.info.cell, self.info.variant
        weight_io = self.info.access is not None
        masks = not self.info.mask_why_not
        self.capabilities = Capabilities(
            stateful_training=True, variable_length=masks, weight_io=weight_io, gpu=True, native_module=True
        )
        #: Why a capability is missing, for the skip reason of the checks that need it.
        self.capability_notes = {} if weight_io else {"weight_io": self.info.why_not}
        if not masks:
            self.capability_notes["variable_length"] = self.info.mask_why_not
        self.capabilities = apply_declaration(self.target, self.capabilities, self.capability_notes, self.info.declared)

    def build(self, spec: ModelSpec, seed: int) -> KerasModel:
        return KerasModel(spec, with_length(self.factory, spec.sequence_length), self.info, seed)

    def versions(self) -> dict[str, str]:
        return {"keras": keras.__version__, "tensorflow": tf.__version__}

    def compute_path(self) -> dict[str, str]:
        return {
            "device": self.device,
            "backend": keras.backend.backend(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
            "cudnn": str(self.device == "gpu"),
            "tf32": str(self.device == "gpu" and tf.config.experimental.tensor_float_32_execution_enabled()),
        } | ({"variant": self.variant} if self.variant else {})

    def _weights(self) -> tuple[str, str]:
        if self.cell is None or self.info.access is None:
            raise AdapterError(f"{self.name}: no weight import/export: {self.info.why_not}")
        return self.cell, self.info.access

    def build_layer(self, input_size: int, hidden_size: int, seed: int, *, dtype: str = "float32") -> KerasLayer:
        """A bare layer for conformance, weights in the canonical layout; `dtype` is its dtype policy."""
        self._weights()
        return KerasLayer(self.factory, self.info, input_size, hidden_size, seed, dtype=dtype)

    def build_stack(
        self, input_size: int, hidden_size: int, seed: int, *, num_layers: int = 1, bidirectional: bool = False
    ) -> KerasStack:
        """Layers from the factory stacked and/or wrapped in `Bidirectional` (adapters/on_keras/stack.py)."""
        self._weights()
        return KerasStack(
            self.factory, self.target, self.info, input_size, hidden_size, num_layers, bidirectional, seed
        )

    def native_module(self, input_size: int, hidden_size: int, seed: int) -> KerasNative:
        """The factory's layer itself, for the checks that call it eagerly on the caller's values (no
        weight access needed)."""
        keras.utils.set_random_seed(seed)
        make = lambda dtype: self.factory(hidden_size, return_sequences=True, return_state=True, dtype=dtype)  # noqa: E731
        return KerasNative(self.factory(hidden_size, return_sequences=True, return_state=True), input_size, make)

    def export_model(self, model: KerasModel) -> Weights:
        """[proj] -> rnn -> head of a `KerasModel` in the canonical layout (kernels as (in, out))."""
        cell, access = self._weights()
        out = {}
        for name, layer in (("proj", model.proj), ("head", model.head)):
            if layer is not None:
                kernel, bias = layer.get_weights()
                out[f"{name}.kernel"], out[f"{name}.bias"] = kernel, bias
        out.update({f"rnn.{k}": v for k, v in export_weights(model.rnn, cell, access).items()})
        return out

    def import_model(self, model: KerasModel, weights: Mapping[str, np.ndarray]) -> None:
        cell, access = self._weights()
        shapes = {k: v.shape for k, v in self.export_model(model).items()}
        weights = model_to_layout(cell, weights, self.info.recurrent_bias, self.info.variant)
        weights = match_shapes(shapes, weights, "model weights")
        rnn_weights = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
        import_weights(model.rnn, cell, access, rnn_weights, self.info)
        for name, layer in (("proj", model.proj), ("head", model.head)):
            if layer is not None:
                layer.set_weights([np.asarray(weights[f"{name}.{part}"], np.float32) for part in ("kernel", "bias")])
