"""One inference engine's session over an ONNX model: NumPy in, NumPy out, on one thread.

`Runtime.session(model)` loads a serialized ONNX model (or a `ModelProto`) into the engine;
`Session.run(feeds)` runs it with inputs by name and returns the outputs by name. The engine's
own refusal of a model (an op it lacks, a shape it rejects) is an `AdapterError` with its first
line. Each engine says what it is (`versions`, `compute_path`) for the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort

from rnn_behaviour.adapters.base import AdapterError, threads
from rnn_behaviour.adapters.engines.graph import first_line


class Session(Protocol):
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Runtime(Protocol):
    name: str

    def session(self, model: onnx.ModelProto | bytes) -> Session: ...

    def versions(self) -> dict[str, str]: ...

    def compute_path(self) -> dict[str, str]: ...


def serialized(model: onnx.ModelProto | bytes) -> bytes:
    return model if isinstance(model, bytes) else model.SerializeToString()


class OrtSession:
    """An ONNX Runtime `InferenceSession` (CPU execution provider)."""

    def __init__(self, blob: bytes, options: ort.SessionOptions) -> None:
        try:
            self.session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... classes
            raise AdapterError(f"ONNX Runtime refused the model: {first_line(exc)}") from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            out = self.session.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items()})
        except Exception as exc:
            raise AdapterError(f"ONNX Runtime could not run the model: {first_line(exc)}") from None
        return dict(zip(self.output_names, out, strict=True))


class OnnxRuntime:
    """ONNX Runtime on the CPU, `RNN_BEHAVIOUR_THREADS` intra-op threads (1), one inter-op thread,
    warnings off (a graph's shape annotations that the run outgrows are not the suite's business)."""

    name = "onnxruntime"

    def __init__(self) -> None:
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = threads()
        self.options.inter_op_num_threads = 1
        self.options.log_severity_level = 3

    def session(self, model: onnx.ModelProto | bytes) -> OrtSession:
        return OrtSession(serialized(model), self.options)

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": ort.__version__, "onnx": onnx.__version__}

    def compute_path(self) -> dict[str, str]:
        return {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "threads": str(threads())}


RUNTIMES: dict[str, Any] = {"onnxruntime": OnnxRuntime}


def runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise AdapterError(f"unknown inference runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()
