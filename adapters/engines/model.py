"""Inference-only rows: another row's trained model, exported to ONNX and run by an inference engine.

`RuntimeAdapter(source="torch-lstm", runtime="onnxruntime", exporter="dynamo")` is the row
`ort-lstm`: it does not train. The matrix trains the source row's model (the same model the source
row's own checks judge, shared when both run) and hands it to `convert`, which exports it once per
(task, seed) by the source framework's own exporter and loads it into the engine; every check that
needs only predictions then runs on the engine's model. Checks that need training or gradients are
skipped with that reason (`Capabilities.training`, `gradients`). The record's `compute_path` says
which row trained it and how it was converted (exporter, opset), its `versions` the engine's and
exporter's.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import AdapterError, Capabilities, FitLog, check_input
from rnn_behaviour.adapters.custom import PROBE_BATCH, PROBE_HIDDEN, PROBE_INPUT, PROBE_TIME, first_line
from rnn_behaviour.adapters.engines.graph import Exported, check_shapes, suspects
from rnn_behaviour.adapters.engines.nodes import OPS, OnnxLayer, OnnxStack
from rnn_behaviour.adapters.engines.runtimes import Runtime, Session, runtime
from rnn_behaviour.tasks.base import Budget, CheckNotApplicable, ModelSpec, Split


def _from_torch(model: Any, exporter: Any) -> Exported:
    from rnn_behaviour.adapters.engines import from_torch

    return from_torch.export(model, exporter)


def _from_keras(model: Any, exporter: Any) -> Exported:
    from rnn_behaviour.adapters.engines import from_keras

    return from_keras.export(model, exporter)


#: Each source framework's exporter function and its named exporters, the default (the one users
#: get) first; a callable exporter is a user's (`from_torch.UserExporter`).
EXPORTERS: dict[str, tuple[Callable[[Any, Any], Exported], tuple[str, ...]]] = {
    "torch": (_from_torch, ("dynamo", "torchscript", "openvino")),
    "keras": (_from_keras, ("tflite",)),
}


class RuntimeModel:
    """An exported model in an engine's session: `predict(x, state)` as the source model's, the
    state the same nest (the source's), its arrays run through the graph's state inputs."""

    def __init__(self, exported: Exported, session: Session, spec: ModelSpec, n_params: int, source: str) -> None:
        self.exported, self.session, self.spec, self.n_params = exported, session, spec, n_params
        self.source = source
        #: Seconds the export and the engine's load took (the record's `conversion_seconds`).
        self.conversion_seconds = 0.0

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        raise AdapterError(f"an inference-only row does not train: its models are {self.source}'s, trained by it")

    def run(self, x: np.ndarray, leaves: list[np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {"x": x} | {f"state_{k}": leaf for k, leaf in enumerate(leaves)}
        return self.session.run(feeds)

    def state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        return [tuple(batch if n == -1 else n for n in shape) for shape in self.exported.state_shapes]

    def zero_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros(shape, np.float32) for shape in self.state_shapes(batch)]

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        x = check_input(x, self.spec.input_size)
        leaves = self.zero_state(x.shape[0]) if state is None else self.exported.flatten(state)
        expected = self.state_shapes(x.shape[0])
        if [leaf.shape for leaf in leaves] != expected:
            raise AdapterError(f"state shapes {[leaf.shape for leaf in leaves]} do not fit a batch of {x.shape[0]}: "
                               f"expected {expected}")  # fmt: skip
        out = self.run(x, leaves)
        new = [out[f"state_out_{k}"] for k in range(len(leaves))]
        return np.array(out["y"], np.float32), self.exported.unflatten(new)


class RuntimeAdapter:
    """The inference-only row: `source` (a built-in name or an `--adapter` spec) trains, `runtime`
    runs, `exporter` converts (the source framework's default when None)."""

    framework = "onnx"
    #: The bare layer and stack classes (ONNX's nodes; a planted defect's own in tests/).
    layer_class = OnnxLayer
    stack_class = OnnxStack

    def __init__(self, source: str, runtime: str | Runtime = "onnxruntime", exporter: Any = None,
                 name: str | None = None, why: str = "") -> None:  # fmt: skip
        from rnn_behaviour.adapters import resolve

        self.source_ref = resolve(source)
        self.trained_by = self.source_ref.name
        self.source = self.source_ref.load()
        framework = getattr(self.source, "framework", "")
        if exporter == "nodes":  # any weight-conformant row, through ONNX's own node (from_weights.py)
            self._export_with, named = self._from_weights, ("nodes",)
        elif framework not in EXPORTERS:
            raise AdapterError(
                f"no exporter for {self.trained_by} (framework {framework!r}): the engine rows take "
                f"{', '.join(EXPORTERS)} rows, or any row with canonical weights through exporter='nodes'"
            )
        else:
            self._export_with, named = EXPORTERS[framework]
        self.exporter = exporter or named[0]
        if not callable(self.exporter) and self.exporter not in named:
            raise AdapterError(f"unknown {framework} exporter {self.exporter!r}: choose one of {', '.join(named)}, "
                               "or pass a function")  # fmt: skip
        self.engine: Runtime = runtime if not isinstance(runtime, str) else runtime_of(runtime)
        if self.exporter == "openvino" and self.engine.name != "openvino":
            raise AdapterError(f"exporter 'openvino' makes an OpenVINO model, which {self.engine.name} cannot run")
        self.name = name or f"{self.engine.name}-{self.trained_by}"
        #: Why this exporter, when it is not the default (the record shows it).
        self.why = why
        self.cell = getattr(self.source, "cell", None)
        self.variant = getattr(self.source, "variant", "")
        #: The bare layer is ONNX's own node for the source's cell (nodes.py), built from canonical
        #: weights: the engine's kernel held to the reference, whatever the exporter.
        weight_io = self.cell in OPS and getattr(self.engine, "bare_layer", True)  # every variant has a node form
        self.capabilities = Capabilities(
            stateful_training=self.source.capabilities.stateful_training, training=False, gradients=False,
            weight_io=weight_io, variable_length=weight_io,
        )  # fmt: skip
        self.capability_notes = {
            "training": f"an inference-only row: its models are {self.trained_by}'s, exported",
            "gradients": f"{self.engine.name} runs inference only",
            "stateful_training": f"{self.trained_by} does not train statefully",
        }
        if not weight_io:
            self.capability_notes["weight_io"] = getattr(self.engine, "why_no_bare_layer", "") or (
                f"{self.trained_by} names no cell ONNX has a node for")  # fmt: skip
            self.capability_notes["variable_length"] = self.capability_notes["weight_io"]
        if callable(self.exporter) or not isinstance(runtime, str):
            self.probe()

    def probe(self) -> None:
        """A user's exporter or engine, tried once at load on a tiny untrained model (as the frameworks'
        factories are): one AdapterError line naming what failed, before anything trains."""
        spec = ModelSpec(input_size=PROBE_INPUT, output_size=2, hidden_size=PROBE_HIDDEN, return_sequences=True)
        try:
            model = self.convert(self.source.build(spec, 0))
            model.predict(np.zeros((PROBE_BATCH, PROBE_TIME, PROBE_INPUT), np.float32))
        except Exception as exc:
            why = str(exc) if isinstance(exc, AdapterError) else first_line(exc)
            raise AdapterError(f"converting {self.trained_by}'s model failed at load: {why}") from None

    def convert(self, model: Any) -> RuntimeModel:
        """The source's trained `model` exported and loaded into the engine, once; ConversionError
        when the exported graph cannot run the shapes the suite feeds it."""
        start = time.perf_counter()
        exported = _exported(model, self.exporter, self._export_with)
        session = self.engine.session(exported.blob)
        out = RuntimeModel(exported, session, model.spec, int(model.n_params), self.trained_by)
        hint = _hint(model)
        check_shapes(exported, lambda b, t: out.run(np.zeros((b, t, model.spec.input_size), np.float32),
                                                    out.zero_state(b)), hint)  # fmt: skip
        out.conversion_seconds = time.perf_counter() - start
        self.how = exported.how
        return out

    def _from_weights(self, model: Any, exporter: Any) -> Exported:
        from rnn_behaviour.adapters.engines import from_weights

        if not getattr(self.source.capabilities, "weight_io", False):
            raise AdapterError(f"exporter 'nodes' reads the canonical weights, which {self.trained_by} does not export")
        return from_weights.export(self.source, model)

    def notes(self) -> list[str]:
        """What a failing check should know about how the engine computes here (its precision)."""
        notes = getattr(self.engine, "notes", None)
        return list(notes()) if callable(notes) else []

    def suspects(self, model: RuntimeModel) -> list[str]:
        """What the converted model's graph says that its source does not do (graph.suspects)."""
        return suspects(model.exported.blob, self.cell, self.variant)

    def build(self, spec: ModelSpec, seed: int) -> RuntimeModel:
        """The source's model, untrained, as this row runs it (conformance's model checks)."""
        return self.convert(self.source.build(spec, seed))

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> OnnxLayer:
        """ONNX's node for the cell, run by the engine (conformance's bare layer)."""
        self._bare()
        return self.layer_class(str(self.cell), input_size, hidden_size, self.engine, variant=self.variant, seed=seed)

    def _bare(self) -> None:
        if not self.capabilities.weight_io:
            raise AdapterError(f"{self.name} has no bare layer: {self.capability_notes.get('weight_io', '')}")

    def build_stack(self, input_size: int, hidden_size: int, seed: int, *, num_layers: int = 1,
                    bidirectional: bool = False) -> OnnxStack:  # fmt: skip
        self._bare()
        return self.stack_class(str(self.cell), input_size, hidden_size, num_layers, bidirectional, self.engine,
                                self.variant, seed)  # fmt: skip

    def export_model(self, model: Any) -> Any:
        raise CheckNotApplicable(f"{self.name} cannot hand a model's weights back: an engine's graph is not read back")

    def import_model(self, model: Any, weights: Any) -> None:
        raise CheckNotApplicable(f"{self.name} takes no weights into a model: it runs {self.trained_by}'s export")

    def versions(self) -> dict[str, str]:
        return {**self.engine.versions(), **{k: str(v) for k, v in self.source.versions().items()}}

    def compute_path(self) -> dict[str, str]:
        how = getattr(self, "how", {"exporter": str(getattr(self.exporter, "__qualname__", self.exporter))})
        out = {"device": "cpu", "trained_by": self.trained_by, **how, **self.engine.compute_path()}
        return out | ({"why": self.why} if self.why else {})


#: Exports by source model and exporter, while the model lives: the ONNX Runtime and OpenVINO rows
#: of one torch row run the same export of the same trained model, made once.
_EXPORTS: weakref.WeakKeyDictionary[Any, dict[Any, Exported]] = weakref.WeakKeyDictionary()


def _exported(model: Any, exporter: Any, export_with: Callable[[Any, Any], Exported]) -> Exported:
    done = _EXPORTS.setdefault(model, {})
    if exporter not in done:
        done[exporter] = export_with(model, exporter)
    return done[exporter]


def runtime_of(name: str) -> Runtime:
    return runtime(name)


def _hint(model: Any) -> str:
    """The known cause when the source module is one an exporter is known to unroll."""
    names = {type(m).__name__ for m in getattr(getattr(model, "net", None), "modules", lambda: [])()}
    if "RNN" in names:
        return (
            "torch.onnx.export's default exporter (dynamo=True) has no loop-keeping translation of nn.RNN "
            "(pytorch/pytorch#184872 gave LSTM and GRU while_loop decompositions, not RNN), so it unrolls it for the "
            "example's length; dynamo=False exports an ONNX RNN node"
        )
    return ""
