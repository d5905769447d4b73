"""JAX adapter (Flax NNX): any module `factory(input_size, hidden_size, *, rngs) -> nnx.Module`
called `module(x, state=None) -> (y, state)`, batch first, float32.

`--adapter jax:pkg.module:factory` puts a user's module through the same model shape as the
torch adapter ([per-step nnx.Linear] -> module -> nnx.Linear head; softmax heads train on logits
with cross-entropy, UNSCORED targets left out as torch's `ignore_index=-100`, and return
probabilities), trained with optax Adam (clipped to the budget's global norm when it sets one),
each epoch's steps over the minibatches of `base.epoch_batches` compiled as one `jax.lax.scan`
(the stateful tasks' chunks one jitted step each), epochs and stopping by
`base.train_loop`. The state is whatever the module returns (any pytree of arrays): predict hands
it out as the same nest of NumPy arrays and back. Initialisation is the module's own, drawn from
`nnx.Rngs(seed)`.

The built-ins `flax-lstm`, `flax-gru`, `flax-rnn` are this adapter over the factories of
`on_jax/builtins.py` (`nnx.RNN` over Flax's own cells). Their predictions run at the next power of
two of the length asked for (`network.bucket`), zero-padded after the last step, with `nnx.RNN`'s
`seq_lengths` for the state after the real last step, and the padded steps' outputs cut off. The
recurrence computes the same outputs and state either way (the head's product at the padded shape
may round an output one float32 ulp apart), and jax.jit compiles one program per shape: the tasks'
chunk plans (lengths 1-120) then compile far fewer (a flax-lstm smoke row without a compilation
cache: 309 forward compilations, 105 bucketed). A module of yours is called at the lengths the
checks ask for, never padded. `network` holds the model around the module and its jitted programs.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.base import (
    AdapterError,
    Capabilities,
    DeviceUnavailable,
    FitLog,
    NoState,
    StopFn,
    check_input,
    check_stateful,
    device_request,
    epoch_batches,
    refuse_state,
    stream_chunks,
    threads,
    train_loop,
)
from rnn_behaviour.adapters.custom import apply_declaration, declared_stateless, import_target, with_length
from rnn_behaviour.adapters.on_jax.builtins import BUILTIN_FACTORIES
from rnn_behaviour.adapters.on_jax.layer import JaxLayer, export_weights, float64_copy, import_weights
from rnn_behaviour.adapters.on_jax.mappings import release_if_crowded
from rnn_behaviour.adapters.on_jax.native import JaxNative
from rnn_behaviour.adapters.on_jax.network import Net, bucket, epoch_of, forward_of, step_of
from rnn_behaviour.adapters.on_jax.probe import Factory, build, probe_module, stateless_factory
from rnn_behaviour.adapters.on_jax.stack import JaxStack
from rnn_behaviour.adapters.reference import Weights, match_shapes, model_to_layout
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split


def select_device() -> jax.Device:
    """Where models train and predict for this run's `--device`: a GPU when `cuda` (or `auto` and
    jax sees one), else the CPU; `cuda` where jax sees no GPU is an AdapterError."""
    request = device_request()
    gpus = [] if request == "cpu" else _gpus()
    if request == "cuda" and not gpus:
        raise DeviceUnavailable(
            f"--device cuda, but jax {jax.__version__} sees no GPU (jax.devices() is {jax.devices()}): install a "
            "CUDA jaxlib (pip install 'jax[cuda12]') for its rows on the GPU"
        )
    device = gpus[0] if gpus else jax.devices("cpu")[0]
    jax.config.update("jax_default_device", device)
    return device


#: Where JAX keeps compiled programs between runs (`RNN_BEHAVIOUR_JAX_CACHE`; "off" turns it off).
JAX_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnn-behaviour" / "jax"


def compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache, unless the user set one (JAX_COMPILATION_CACHE_DIR)
    or `RNN_BEHAVIOUR_JAX_CACHE=off`: about 5 s of each Flax model's training at the smoke tier is
    XLA compiling its programs, once per shape and process; a run after the first loads them (the
    same executables, so the same results). Returns the directory in use."""
    if jax.config.jax_compilation_cache_dir:
        return str(jax.config.jax_compilation_cache_dir)
    where = os.environ.get("RNN_BEHAVIOUR_JAX_CACHE", str(JAX_CACHE))
    if where.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the suite's programs are small
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return where


def _gpus() -> list[jax.Device]:
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib, or no device
        return []


def _to_jax_state(state: Any, device: jax.Device) -> Any:
    if state is None:
        return None
    return jax.tree.map(lambda a: jax.device_put(a, device) if isinstance(a, np.ndarray) else a, state)


def _float64(a: Any) -> Any:
    return a.astype(np.float64) if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) else a


def _to_numpy_state(state: Any) -> Any:
    return jax.tree.map(lambda s: np.array(s) if isinstance(s, jax.Array) else s, state)


class JaxModel:
    def __init__(self, spec: ModelSpec, factory: Factory, seed: int, device: jax.Device,
                 no_state: str | None = None, padded: bool = False) -> None:  # fmt: skip
        self.spec, self.device, self.no_state = spec, device, no_state
        #: Whether predictions run padded to `bucket`'s length (the built-ins only).
        self.padded = padded
        #: Whether predict computes in float64 (in `float64_twin`'s copy only).
        self.x64 = False
        self.net = Net(spec, factory, nnx.Rngs(seed))
        self.graphdef, self.params, self.rest = nnx.split(self.net, nnx.Param, ...)
        self.rng = np.random.default_rng(seed)
        self.n_params = int(sum(np.size(p) for p in jax.tree.leaves(self.params)))
        self._forward = forward_of(self.graphdef, spec.head == "softmax")

    def float64_twin(self) -> JaxModel:
        """The same model (the same weights, as float64) computing in float64 under
        `jax.enable_x64`, for the "same computation" checks (benchmarks/README.md, "Rounding")."""
        twin = copy.copy(self)
        with jax.enable_x64(True):
            net = float64_copy(nnx.merge(self.graphdef, self.params, self.rest))  # nnx.SimpleCell's float32 too
            twin.graphdef, twin.params, twin.rest = nnx.split(net, nnx.Param, ...)
            twin._forward = forward_of(twin.graphdef, self.spec.head == "softmax")
        twin.x64 = True
        twin.predict(np.zeros((1, 2, self.spec.input_size), np.float32))  # one that cannot raises here
        return twin

    def _stepper(self, budget: Budget) -> tuple[Callable[..., Any], Any]:
        """The jitted optimizer step for this budget (`network.step_of`) and its initial optimizer state."""
        step, tx, _ = step_of(self.graphdef, budget.loss, budget.learning_rate, budget.clip_norm)
        return step, tx.init(self.params)

    def _targets(self, y: np.ndarray, budget: Budget) -> jax.Array:
        return jax.device_put(np.asarray(y, np.int32 if budget.loss == "crossentropy" else np.float32), self.device)

    def make_train_step(self, budget: Budget) -> Callable[[np.ndarray, np.ndarray], float]:
        """One training step on one batch from the zero state (the speed benchmark's train step)."""
        step, opt = self._stepper(budget)
        box = {"opt": opt}

        def train_step(x: np.ndarray, y: np.ndarray) -> float:
            xb = jax.device_put(np.asarray(x, np.float32), self.device)
            self.params, self.rest, box["opt"], loss, _ = step(
                self.params, self.rest, box["opt"], xb, self._targets(y, budget), None
            )
            return float(loss)

        return train_step

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog:
        step, opt = self._stepper(budget)
        box = {"opt": opt}
        x = jax.device_put(np.asarray(train.x, np.float32), self.device)
        y = self._targets(train.y, budget)

        def take(xb: jax.Array, yb: jax.Array, state: Any) -> tuple[jax.Array, Any]:
            self.params, self.rest, box["opt"], loss, state = step(self.params, self.rest, box["opt"], xb, yb, state)
            return loss, state

        epoch = epoch_of(self.graphdef, budget.loss, budget.learning_rate, budget.clip_norm)

        def run_epoch() -> float:
            order = np.stack(list(epoch_batches(len(train), budget.batch_size, budget.shuffle, self.rng)))
            self.params, self.rest, box["opt"], loss = epoch(self.params, self.rest, box["opt"], x, y, order)
            return float(loss)

        def run_stateful_epoch() -> float:
            losses, state = [], None
            for chunk in stream_chunks(x.shape[1], window):
                loss, state = take(x[:, chunk], y[:, chunk], state)
                losses.append(loss)
            return float(jnp.mean(jnp.stack(losses)))

        try:
            if self.spec.stateful:
                window = check_stateful(self.spec, train, budget)
                return train_loop(self, train, budget, stop, run_stateful_epoch)
            return train_loop(self, train, budget, stop, run_epoch)
        finally:
            nnx.update(self.net, self.params, self.rest)

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self._predict(x, state, None)

    def predict_last(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """The many-to-one path: output at the last step only, whatever the spec says."""
        return self._predict(x, state, True)

    def _predict(self, x: np.ndarray, state: Any, last_only: bool | None) -> tuple[np.ndarray, Any]:
        refuse_state(state, self.no_state)
        x = check_input(x, self.spec.input_size)
        with jax.enable_x64(True) if self.x64 else contextlib.nullcontext():
            if self.x64:
                x, state = x.astype(np.float64), jax.tree.map(_float64, state)
            length, lengths = x.shape[1], None
            # lengths even at a power of two, so each bucket is one program; 1 and 2 are alone in
            # theirs and run as asked (a stream's one-step calls, without seq_lengths' extra work)
            if self.padded and length > 2:
                x = np.pad(x, ((0, 0), (0, bucket(length) - length), (0, 0)))
                lengths = jax.device_put(np.full(x.shape[0], length, np.int32), self.device)
            xb = jax.device_put(x, self.device)
            out, final = self._forward(
                self.params, self.rest, xb, _to_jax_state(state, self.device), last_only, lengths
            )
            y, final = np.array(out), _to_numpy_state(final)
            if lengths is not None and y.ndim == 3:
                y = y[:, :length]  # the padded steps' outputs
        return y, (NoState(self.no_state) if self.no_state is not None else final)


class JaxAdapter:
    """Wraps a Flax NNX module factory (`--adapter jax:pkg.module:factory`); probed at load."""

    framework = "jax"

    def __init__(self, factory: str | Factory, name: str | None = None) -> None:
        if isinstance(factory, str):
            self.target = factory
            self.factory: Factory = import_target(factory, f"jax factory {factory}")
        else:
            self.target, self.factory = getattr(factory, "__qualname__", repr(factory)), factory
        if not callable(self.factory):
            raise AdapterError(f"{self.target} is a {type(self.factory).__name__}, not a callable factory")
        self.name = name or self.target
        self.device = select_device()
        self.cache = compilation_cache()
        self.info = probe_module(self.factory, self.target)
        self.no_state = declared_stateless(self.info.declared)
        self.user_factory = self.factory
        if self.no_state is not None:
            self.factory = stateless_factory(self.factory, self.no_state)
        self.cell, self.variant = self.info.cell, self.info.variant
        weight_io = self.info.access is not None
        padded = weight_io and not self.info.lengths_why_not
        self.capabilities = Capabilities(
            stateful_training=True, variable_length=padded, weight_io=weight_io, gpu=True, native_module=True,
            state=self.no_state is None,
        )  # fmt: skip
        #: Why a capability is missing, for the skip reason of the checks that need it.
        self.capability_notes = {} if weight_io else {"weight_io": self.info.why_not}
        if not padded:
            self.capability_notes["variable_length"] = self.info.lengths_why_not or self.info.why_not
        self.capabilities = apply_declaration(self.target, self.capabilities, self.capability_notes, self.info.declared)

    def build(self, spec: ModelSpec, seed: int) -> JaxModel:
        release_if_crowded()  # a long run's compiled programs within the kernel's limit on mappings
        factory = with_length(self.user_factory, spec.sequence_length)  # the task's length, if it asks
        if self.no_state is not None:
            factory = stateless_factory(factory, self.no_state)
        return JaxModel(spec, factory, seed, self.device, self.no_state, self.user_factory in BUILTIN_FACTORIES)

    def _weights(self) -> str:
        if self.cell is None or self.info.access is None:
            raise AdapterError(f"{self.name}: no weight import/export: {self.info.why_not}")
        return self.cell

    def build_layer(self, input_size: int, hidden_size: int, seed: int, *, dtype: str = "float32") -> JaxLayer:
        """A bare module for conformance, weights in the canonical layout; `dtype` converts its
        parameters and what it is fed."""
        self._weights()
        release_if_crowded()
        return JaxLayer(self.factory, self.target, self.info, input_size, hidden_size, seed, dtype=dtype)

    def build_stack(
        self, input_size: int, hidden_size: int, seed: int, *, num_layers: int = 1, bidirectional: bool = False
    ) -> JaxStack:
        """The factory's module with `num_layers`/`bidirectional` (adapters/reference_stack.py);
        NotStackable when the factory takes neither."""
        self._weights()
        release_if_crowded()
        return JaxStack(self.factory, self.target, self.info, input_size, hidden_size, seed, num_layers, bidirectional)

    def export_model(self, model: JaxModel) -> Weights:
        """[proj] -> rnn -> head of a `JaxModel` in the canonical layout (kernels as (in, out))."""
        self._weights()
        nnx.update(model.net, model.params, model.rest)
        out: Weights = {}
        for name in ("proj", "head"):
            linear = getattr(model.net, name)
            if linear is not None:
                out[f"{name}.kernel"] = np.array(linear.kernel.get_value(), np.float32)
                out[f"{name}.bias"] = np.array(linear.bias.get_value(), np.float32)
        out.update({f"rnn.{k}": v for k, v in export_weights(model.net.rnn, self.info).items()})
        return out

    def import_model(self, model: JaxModel, weights: Mapping[str, np.ndarray]) -> None:
        cell = self._weights()
        shapes = {k: v.shape for k, v in self.export_model(model).items()}
        weights = model_to_layout(cell, weights, self.info.recurrent_bias, self.info.variant)
        weights = match_shapes(shapes, weights, "model weights")
        rnn_weights = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
        import_weights(model.net.rnn, self.info, rnn_weights)
        for name in ("proj", "head"):
            linear = getattr(model.net, name)
            if linear is not None:
                linear.kernel.set_value(jnp.asarray(weights[f"{name}.kernel"], jnp.float32))
                linear.bias.set_value(jnp.asarray(weights[f"{name}.bias"], jnp.float32))
        model.params, model.rest = nnx.split(model.net, nnx.Param, ...)[1:]

    def native_module(self, input_size: int, hidden_size: int, seed: int) -> JaxNative:
        """The factory's module itself, built from `nnx.Rngs(seed)`, for the checks that call it with
        JAX arrays (no weight access needed)."""
        return JaxNative(build(self.factory, self.target, input_size, hidden_size, seed))

    def versions(self) -> dict[str, str]:
        out = {}
        for package in ("jax", "jaxlib", "flax", "optax"):
            try:
                out[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                out[package] = "?"
        return out

    def compute_path(self) -> dict[str, str]:
        return {
            "device": getattr(self.device, "device_kind", str(self.device)),
            "platform": self.device.platform,
            "threads": str(threads()),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "x64": str(bool(jax.config.jax_enable_x64)),
        }
