"""Adapter registry: built-ins by name, loaded lazily so a missing framework only skips its rows.

`BUILTINS` maps each built-in name to `"module:Class"` plus its arguments; nothing here imports a
framework. `resolve(spec)` reads what `--adapter` takes:

    [name=]torch:pkg.module:factory   factory(input_size, hidden_size) -> torch.nn.Module
    [name=]keras:pkg.module:factory   factory(units, **layer_kwargs) -> a Keras RNN layer
    [name=]jax:pkg.module:factory     factory(input_size, hidden_size, *, rngs) -> a Flax NNX module
    [name=]pkg.module:AdapterClass    anything else, implementing the Adapter protocol

A factory is wrapped by its framework's adapter (the built-ins are such factories too: `torch-lstm`
is `torch:rnn_behaviour.adapters.on_torch.model:lstm`, `keras-lstm` is `keras:keras.layers:LSTM`). `entry_points()`
reads the same grammar from installed packages' `rnn_behaviour.adapters` entry points.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

# Before anything imports Keras, a user's factory module included: the Keras rows are the
# TensorFlow backend, and TensorFlow's C++ info lines (oneDNN, ...) would bury the suite's own.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnn_behaviour.adapters.base import Adapter, AdapterError, Capabilities, FitLog, Model
from rnn_behaviour.adapters.custom import import_target

#: Framework prefix of a factory spec -> the adapter class that wraps the factory.
FRAMEWORKS: dict[str, str] = {
    "torch": "rnn_behaviour.adapters.on_torch.model:TorchAdapter",
    "keras": "rnn_behaviour.adapters.on_keras.model:KerasAdapter",
    "jax": "rnn_behaviour.adapters.on_jax.model:JaxAdapter",
}
#: The inference-only rows' adapter (adapters/engines): another row trains, an engine runs.
RUNTIME = "rnn_behaviour.adapters.engines.model:RuntimeAdapter"
RNN_EXPORT = (
    "torch.onnx.export's default (dynamo=True) unrolls nn.RNN for the example's length (no while_loop "
    "decomposition for aten::rnn_tanh), fixing T; dynamo=False exports an ONNX RNN node"
)
ENTRY_POINT_GROUP = "rnn_behaviour.adapters"
#: Factory names that say nothing about the implementation: the row is named after the module.
GENERIC_NAMES = frozenset({"factory", "build", "make", "create", "model", "layer", "module", "adapter", "main"})
PROTOCOL = ("name", "build", "versions", "compute_path", "capabilities")


@dataclass(frozen=True)
class AdapterRef:
    """A named, not-yet-imported adapter: `target` is "module:attribute", called with `kwargs`."""

    name: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    builtin: bool = True
    framework: str = "user"
    spec: str = ""
    #: For a user's inference-only row, the row that trains its models, once it is known (loaded).
    source: str = ""

    @property
    def trained_by(self) -> str:
        """The row whose trained models this one runs (an inference-only row: adapters/engines), else ""."""
        source = self.kwargs.get("source") if self.target == RUNTIME else self.source
        return resolve(str(source)).name if source else ""

    def load(self) -> Adapter:
        """Import and instantiate; raises ImportError for a missing framework, AdapterError else."""
        module_name = self.target.partition(":")[0]
        if self.builtin or self.target in FRAMEWORKS.values():
            importlib.import_module(module_name)  # a missing framework stays an ImportError (its rows skip)
        factory = import_target(self.target, f"adapter {self.name!r}")
        try:
            adapter = factory(**self.kwargs)
        except AdapterError:
            raise
        except TypeError as exc:
            raise AdapterError(f"adapter {self.name!r}: {self.target}() could not be called: {exc}") from None
        missing = [m for m in PROTOCOL if not hasattr(adapter, m)]
        if missing:
            raise AdapterError(
                f"adapter {self.name!r} ({self.target}) lacks {', '.join(missing)} of the Adapter protocol"
            )
        if not self.builtin:
            adapter.name = self.name
        return adapter


def _builtin(framework: str, cell: str, factory: str) -> AdapterRef:
    name = f"{framework}-{cell}"
    return AdapterRef(name, FRAMEWORKS[framework], {"factory": factory, "name": name}, True, framework, name)


BUILTINS: dict[str, AdapterRef] = {
    **{f"keras-{cell}": _builtin("keras", cell, f"keras.layers:{cls}") for cell, cls in
       (("lstm", "LSTM"), ("gru", "GRU"), ("rnn", "SimpleRNN"))},
    **{
        f"torch-{cell}": _builtin("torch", cell, f"rnn_behaviour.adapters.on_torch.model:{cell}")
        for cell in ("lstm", "gru", "rnn")
    },
    **{
        f"flax-{cell}": AdapterRef(
            f"flax-{cell}", FRAMEWORKS["jax"],
            {"factory": f"rnn_behaviour.adapters.on_jax.builtins:flax_{cell}", "name": f"flax-{cell}"}, True, "jax",
            f"flax-{cell}",
        )
        for cell in ("lstm", "gru", "rnn")
    },
    # Inference-only rows (adapters/engines): the torch built-ins' trained models, exported by
    # torch.onnx.export and run by ONNX Runtime. torch-rnn goes through the legacy exporter: the
    # default one unrolls nn.RNN for the example's length (adapters/engines/README.md).
    **{
        f"ort-{cell}": AdapterRef(
            f"ort-{cell}", RUNTIME, {"source": f"torch-{cell}", "runtime": "onnxruntime", "name": f"ort-{cell}"}
            | ({"exporter": "torchscript", "why": RNN_EXPORT} if cell == "rnn" else {}), True, "onnx", f"ort-{cell}",
        )
        for cell in ("lstm", "gru", "rnn")
    },
    # The same exports run by OpenVINO, float32 pinned (its CPU default is bf16 where the CPU has it).
    **{
        f"ov-{cell}": AdapterRef(
            f"ov-{cell}", RUNTIME, {"source": f"torch-{cell}", "runtime": "openvino", "name": f"ov-{cell}"}
            | ({"exporter": "torchscript", "why": RNN_EXPORT} if cell == "rnn" else {}), True, "onnx", f"ov-{cell}",
        )
        for cell in ("lstm", "gru", "rnn")
    },
    # The keras built-ins' trained models, converted to LiteRT (builtin ops, static batch: the
    # limits are in adapters/engines/from_keras.py) and run by the LiteRT interpreter.
    **{
        f"lite-{cell}": AdapterRef(
            f"lite-{cell}", RUNTIME, {"source": f"keras-{cell}", "runtime": "litert", "name": f"lite-{cell}"}, True,
            "litert", f"lite-{cell}",
        )
        for cell in ("lstm", "gru", "rnn")
    },
}  # fmt: skip

_NAME = r"[A-Za-z0-9_.-]+"
_TARGET = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"
_SPEC = re.compile(rf"^(?:(?P<name>{_NAME})=)?(?:(?P<framework>[A-Za-z_]\w*):)?(?P<target>{_TARGET})$")
GRAMMAR = (
    "[name=]torch:pkg.module:factory, [name=]keras:pkg.module:factory, [name=]jax:pkg.module:factory "
    "or [name=]pkg.module:AdapterClass"
)


def default_name(target: str) -> str:
    """The row's name when the spec gives none: the factory's (class's) name, or the module's last
    part when that name is a generic one (`build`, `factory`, ...)."""
    module_name, _, attr = target.partition(":")
    return module_name.rsplit(".", 1)[-1] if attr.lower() in GENERIC_NAMES else attr


def resolve(spec: str, name: str | None = None) -> AdapterRef:
    """A built-in name or a spec in the grammar above (`name` is the default row name, e.g. an
    entry point's). Raises AdapterError naming what is wrong with the spec; nothing is imported."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    match = _SPEC.match(spec)
    if match is None:
        close = difflib.get_close_matches(spec, BUILTINS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise AdapterError(f"unknown adapter {spec!r}: {hint}use a built-in ({', '.join(BUILTINS)}) or {GRAMMAR}")
    framework, target = match["framework"], match["target"]
    if framework is not None and framework not in FRAMEWORKS:
        raise AdapterError(
            f"unknown framework prefix {framework!r} in {spec!r}: valid prefixes are "
            f"{', '.join(f'{f}:' for f in FRAMEWORKS)} (or none, for pkg.module:AdapterClass)"
        )
    name = match["name"] or name or default_name(target)
    if name in BUILTINS:
        raise AdapterError(f"adapter name {name!r} is taken by a built-in; give yours another with name=")
    if framework is None:
        return AdapterRef(name, target, builtin=False, spec=spec)
    return AdapterRef(name, FRAMEWORKS[framework], {"factory": target, "name": name}, False, framework, spec)


def entry_points() -> dict[str, AdapterRef]:
    """Adapters that installed packages register in the `rnn_behaviour.adapters` entry-point group:
    the entry point's name is the row's, its value a spec in the `--adapter` grammar."""
    out: dict[str, AdapterRef] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep.dist, "name", None) or "an installed package"
        try:
            ref = resolve(ep.value.strip(), name=ep.name)
        except AdapterError as exc:
            raise AdapterError(f"entry point {ep.name!r} of {dist} ({ENTRY_POINT_GROUP}): {exc}") from None
        out[ref.name] = ref
    return out


__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "FRAMEWORKS",
    "Adapter",
    "AdapterError",
    "AdapterRef",
    "Capabilities",
    "FitLog",
    "Model",
    "default_name",
    "entry_points",
    "resolve",
]
