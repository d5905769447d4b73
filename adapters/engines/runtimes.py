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
from rnn_behaviour.adapters.custom import first_line


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


#: What each engine does where the ONNX spec leaves it open (declared in the record, never judged):
#: measured by tests/test_onnx_nodes.py and tests/test_engines.py.
SEMANTICS = {
    "onnxruntime": "y past a row's sequence_lens is 0; a row of length 0 ends in the zero state (onnx/onnx#1674)",
    "openvino": "sequence_lens ignored with dynamic shapes (the padding runs; expectations.py)",
}


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
        return {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "threads": str(threads()),
                "semantics": SEMANTICS["onnxruntime"]}  # fmt: skip


class OvSession:
    """An OpenVINO compiled model on the CPU device; inputs and outputs by name."""

    def __init__(self, compiled: Any, declared: tuple[str, ...]) -> None:
        """`declared`: the ONNX graph's output names, in order. OpenVINO keeps them among each output's
        names, but folds an Identity into the tensor before it, whose name may come first."""
        import openvino as ov

        self.compiled, self.tensor = compiled, ov.Tensor
        self.input_names = tuple(i.get_any_name() for i in compiled.inputs)
        self.dtypes = {i.get_any_name(): _dtype(i.get_element_type()) for i in compiled.inputs}
        self.outputs = list(zip(declared, compiled.outputs, strict=True))
        self.output_names = declared
        self.request = compiled.create_infer_request()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each input set as a tensor of its own, then one inference. Not `request.infer(feeds)`: its
        input dispatcher compares shapes as `tuple(tensor.shape)`, and iterating an `ov.Shape` ends
        in a C++ exception (pybind11's stop_iteration), one per input per call. A process that has
        also run JAX on the CPU has thousands of JIT-compiled frames registered with libgcc's
        unwinder, which `_Unwind_Find_FDE` searches one by one on every exception: measured here,
        after three Flax rows' conformance, the ov-lstm row's `long_calls` took 20.9 s instead of
        0.2 s, 95% of it in `_Unwind_Find_FDE` (perf). The tensors are copies, cast as `infer` would."""
        try:
            for name, value in feeds.items():
                array = np.ascontiguousarray(value, dtype=self.dtypes.get(name))
                self.request.set_tensor(name, self.tensor(array, shared_memory=False))
            self.request.infer()
        except Exception as exc:
            raise AdapterError(f"OpenVINO could not run the model: {_ov_line(exc)}") from None
        return {name: np.array(self.request.get_tensor(port).data) for name, port in self.outputs}


def _dtype(element_type: Any) -> Any:
    """The NumPy dtype of an OpenVINO element type, or None for one that has none (dynamic)."""
    try:
        return element_type.to_dtype()
    except (IndexError, RuntimeError, TypeError):
        return None


def _ov_line(exc: BaseException) -> str:
    """OpenVINO's message without the lines that only say where in its sources it was raised."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return f"{type(exc).__name__}: {said[0]}" if said else first_line(exc)


class OpenVino:
    """OpenVINO on the CPU, `RNN_BEHAVIOUR_THREADS` threads, one stream, and the inference precision
    pinned to f32 unless `precision` says otherwise. Pinned because OpenVINO's CPU plugin defaults to
    bf16 on a CPU with bfloat16 support (`INFERENCE_PRECISION_HINT`; measured on this project's
    machine, avx512_bf16: an LSTM node 7.1e-3 off the float64 reference at T = 1000, GRU 8.6e-3, RNN
    2.1e-2, against 1.9e-7, 1.7e-7, 3.6e-7 at f32); `default_precision()` says what this CPU's is."""

    name = "openvino"

    def __init__(self, precision: str | None = "f32") -> None:
        import openvino as ov

        self.ov, self.core = ov, ov.Core()
        self.precision = precision
        self.config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads(), "NUM_STREAMS": 1}
        if precision is not None:
            self.config["INFERENCE_PRECISION_HINT"] = precision

    def default_precision(self) -> str:
        hint = self.core.get_property("CPU", "INFERENCE_PRECISION_HINT")
        return str(getattr(hint, "get_type_name", lambda: hint)())  # "bf16", "f32"

    def session(self, model: Any) -> OvSession:
        if isinstance(model, self.ov.Model):  # from its own frontend (from_torch's "openvino" exporter)
            try:
                compiled = self.core.compile_model(model, "CPU", self.config)
            except Exception as exc:
                raise AdapterError(f"OpenVINO refused the model: {first_line(exc)}") from None
            return OvSession(compiled, tuple(o.get_any_name() for o in model.outputs))
        blob = serialized(model)
        try:
            compiled = self.core.compile_model(self.core.read_model(blob, b""), "CPU", self.config)
        except Exception as exc:
            raise AdapterError(f"OpenVINO refused the model: {first_line(exc)}") from None
        declared = tuple(o.name for o in (model if isinstance(model, onnx.ModelProto) else
                                         onnx.load_from_string(blob)).graph.output)  # fmt: skip
        return OvSession(compiled, declared)

    def versions(self) -> dict[str, str]:
        return {"openvino": self.ov.__version__.split("-")[0], "onnx": onnx.__version__}

    def compute_path(self) -> dict[str, str]:
        default = self.default_precision()
        pinned = self.precision or f"{default} (the CPU plugin's default here)"
        return {"runtime": "openvino", "device": "cpu", "threads": str(threads()), "precision": pinned,
                "default_precision": default, "semantics": SEMANTICS["openvino"]}  # fmt: skip

    def notes(self) -> list[str]:
        """What a failing check should know about how the engine computes here."""
        precision = self.precision or self.default_precision()
        if "32" in precision:
            return []
        return [
            f"OpenVINO computes in {precision} here (INFERENCE_PRECISION_HINT"
            f"{'' if self.precision else ': its CPU default on a CPU with bfloat16 support'}), not float32: "
            "INFERENCE_PRECISION_HINT=f32 computes in float32"
        ]


def _litert() -> Runtime:
    """LiteRT (engines/litert.py), imported when used: without ai-edge-litert it is an ImportError."""
    from rnn_behaviour.adapters.engines.litert import LiteRT

    return LiteRT()


RUNTIMES: dict[str, Any] = {"onnxruntime": OnnxRuntime, "openvino": OpenVino, "litert": _litert}


def runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise AdapterError(f"unknown inference runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()
