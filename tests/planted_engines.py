"""Inference-engine rows with one planted defect each (adapters/engines), for the checks that must
catch them: two in the engine's bare layer (ONNX nodes built wrong), four in the exporter (a torch
model's ONNX export edited the way real exporters get it wrong). Each factory is an `--adapter`
target: `--adapter name=tests.planted_engines:reset_before_gru`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch

from rnn_behaviour.adapters.base import check_input
from rnn_behaviour.adapters.engines.model import RuntimeAdapter
from rnn_behaviour.adapters.engines.nodes import OnnxLayer


class TorchOrderLayer(OnnxLayer):
    """The LSTM node's W, R and B written in PyTorch's gate order (i, f, g, o), not ONNX's (i, o, f, c)."""

    order = ("i", "f", "g", "o")


class IgnoredLengthsLayer(OnnxLayer):
    """`sequence_lens` never reaches the node: padded rows run their padding."""

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        return super().forward(check_input(x, self.input_size), state)


def _legacy(module: Any, args: Any, **kwargs: Any) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module, args, buffer, dynamo=False, **kwargs)
    return onnx.load_from_string(buffer.getvalue())


def _edited(op: str, edit: Callable[[onnx.NodeProto], None]) -> Callable[..., bytes]:
    """An exporter (the `engines.from_torch.UserExporter` contract): the legacy export, then `edit`
    on every `op` node."""

    def exporter(module: Any, args: Any, **kwargs: Any) -> bytes:
        model = _legacy(module, args, **kwargs)
        for node in model.graph.node:
            if node.op_type == op:
                edit(node)
        return model.SerializeToString()

    return exporter


def _set(node: onnx.NodeProto, name: str, value: Any) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, onnx.helper.make_attribute(name, value)])


def _drop_input(index: int) -> Callable[[onnx.NodeProto], None]:
    def edit(node: onnx.NodeProto) -> None:
        node.input[index] = ""

    return edit


def fixed_time_export(module: Any, args: Any, *, dynamic_axes: dict[str, Any], **kwargs: Any) -> bytes:
    """The legacy export with the time axis left static, as an exporter that unrolls the loop does."""
    axes = {name: {k: v for k, v in dims.items() if v != "time"} for name, dims in dynamic_axes.items()}
    return _legacy(module, args, dynamic_axes=axes, **kwargs).SerializeToString()


class _Planted(RuntimeAdapter):
    def __init__(self, source: str, name: str, exporter: Any = "torchscript", layer: type[OnnxLayer] = OnnxLayer):
        super().__init__(source, exporter=exporter, name=name)
        self.layer_class = layer


def torch_order_lstm() -> RuntimeAdapter:
    return _Planted("torch-lstm", "torch-order-lstm", layer=TorchOrderLayer)


def ignored_lengths_gru() -> RuntimeAdapter:
    return _Planted("torch-gru", "ignored-lengths-gru", layer=IgnoredLengthsLayer)


def reset_before_gru() -> RuntimeAdapter:
    """A torch GRU exported with `linear_before_reset=0` (what onnxscript 0.6.2 emitted: onnxscript#2852)."""
    return _Planted("torch-gru", "reset-before-gru", _edited("GRU", lambda n: _set(n, "linear_before_reset", 0)))


def dropped_c_lstm() -> RuntimeAdapter:
    """An LSTM node without its initial_c input (input 6): every call starts from c = 0."""
    return _Planted("torch-lstm", "dropped-c-lstm", _edited("LSTM", _drop_input(6)))


def reversed_lstm() -> RuntimeAdapter:
    """An LSTM node run `direction="reverse"`."""
    return _Planted("torch-lstm", "reversed-lstm", _edited("LSTM", lambda n: _set(n, "direction", "reverse")))


def fixed_time_lstm() -> RuntimeAdapter:
    return _Planted("torch-lstm", "fixed-time-lstm", fixed_time_export)


def default_precision_lstm() -> RuntimeAdapter:
    """OpenVINO left at its CPU plugin's default precision: bf16 on a CPU with bfloat16 support."""
    from rnn_behaviour.adapters.engines.runtimes import OpenVino

    return RuntimeAdapter("torch-lstm", runtime=OpenVino(precision=None), name="ov-default-lstm")
