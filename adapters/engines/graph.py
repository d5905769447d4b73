"""What an exporter hands the runtime row: the ONNX model, how its state is fed, how it was made;
and the checks that a graph still runs at the shapes the suite feeds it (framework-free)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from rnn_behaviour.adapters.base import AdapterError


@dataclass
class Exported:
    """A model in ONNX (or a TFLite flatbuffer, an `openvino.Model`: `format`): inputs `x` (batch, time, features) and
    the state's leaves `state_<k>`, outputs `y` and `state_out_<k>`. `state_shapes` has -1 at each
    leaf's batch axis; `flatten` and `unflatten` turn the source model's state nest into the leaves
    and back; `example` is the (batch, time) the exporter traced; `how` says how it was made
    (exporter, opset, precision)."""

    blob: Any
    input_names: tuple[str, ...]
    state_shapes: tuple[tuple[int, ...], ...]
    unflatten: Callable[[Sequence[np.ndarray]], Any]
    flatten: Callable[[Any], list[np.ndarray]]
    example: tuple[int, int]
    how: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    #: The blob's format: "onnx", "tflite" (a LiteRT flatbuffer) or "openvino" (an `openvino.Model`
    #: object, not bytes); `check_shapes` reads fixed dimensions in ONNX only and probes the rest.
    format: str = "onnx"


def state_leaves(state: Any) -> list[np.ndarray]:
    """A state that is a tuple (or list) of arrays, or one array (Keras's and the canonical form), as
    float32 leaves in order."""
    return [np.asarray(a, np.float32) for a in (state if isinstance(state, tuple | list) else (state,))]


def tuple_state(arrays: Sequence[np.ndarray]) -> Any:
    """The inverse of `state_leaves` for a model whose predict hands out a tuple of its states, or
    the one state itself."""
    return tuple(arrays) if len(arrays) > 1 else arrays[0]


class ConversionError(AdapterError):
    """The exported graph cannot be the model: the message says what the exporter did."""


def fixed_dims(blob: bytes, name: str = "x") -> list[str]:
    """Which of the input `name`'s batch and time dimensions the graph fixes (a number where a
    dynamic dimension was asked for)."""
    model = onnx.load_from_string(blob)
    inputs = {i.name: i for i in model.graph.input}
    if name not in inputs:
        raise ConversionError(f"the exported graph has no input {name!r} (inputs: {', '.join(inputs)})")
    dims = inputs[name].type.tensor_type.shape.dim
    return [
        f"{what} at {d.dim_value}" for what, d in zip(("batch", "time"), dims, strict=False) if d.HasField("dim_value")
    ]


def check_shapes(exported: Exported, run: Callable[[int, int], Any], hint: str = "") -> None:
    """A graph that fixes the batch or the length it was traced with cannot be the model: say so at
    conversion, with the exporter's part in it (`hint`), instead of failing every check that feeds
    another shape. `run(batch, time)` runs the graph once."""
    batch, time = exported.example
    fixed = fixed_dims(exported.blob) if exported.format == "onnx" else []
    why = f" {hint}" if hint else ""
    if fixed:
        raise ConversionError(
            f"the exported graph fixes its input's {' and '.join(fixed)} (the example it was traced with), so it "
            f"cannot run other shapes: {exported.how.get('exporter', 'the exporter')} unrolled or specialised the "
            f"recurrence for that example.{why}"
        )
    try:
        run(batch + 2, time + 5)
    except AdapterError as exc:
        raise ConversionError(
            f"the exported graph runs at the traced (batch, time) = ({batch}, {time}) but not at ({batch + 2}, "
            f"{time + 5}): a shape inside it was fixed at export ({exc}).{why}"
        ) from None


#: What a source cell's exported node must say, by attribute (ONNX's defaults when absent).
_DEFAULTS = {"direction": b"forward", "linear_before_reset": 0}


def suspects(blob: Any, cell: str | None, variant: str = "") -> list[str]:
    """What the exported graph's recurrent nodes say that the source model does not do, in words:
    a direction other than forward, a GRU of the other form, an initial state not wired in. Empty
    when the graph has no recurrent node (an unrolled loop) or nothing is off."""
    try:
        model = onnx.load_from_string(blob)
    except Exception:  # another format (a LiteRT flatbuffer, an OpenVINO model): nothing to read here
        return []
    found = []
    for node in model.graph.node:
        if node.op_type not in ("LSTM", "GRU", "RNN"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        name = f"the exported {node.op_type} node {node.name or ''}".rstrip()
        direction = attrs.get("direction", _DEFAULTS["direction"])
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        if direction != "forward":
            found.append(f"{name} runs direction={direction!r}: the source reads the sequence forwards")
        if node.op_type == "GRU" and cell == "gru":
            reset_after = attrs.get("linear_before_reset", _DEFAULTS["linear_before_reset"]) == 1
            wanted = variant != "reset_before"
            if reset_after != wanted:
                source = "reset-before"
                if wanted:
                    source = "reset-after (PyTorch, Keras reset_after=True: linear_before_reset=1)"
                found.append(
                    f"{name} has linear_before_reset={int(reset_after)}, the "
                    f"{'reset-after' if reset_after else 'reset-before'} GRU, where the source is {source}"
                    " (an exporter that writes the default 0 for a torch GRU: microsoft/onnxscript#2852)"
                )
        inputs = list(node.input) + [""] * (7 - len(node.input))
        for index, what in ((5, "initial_h"), (6, "initial_c")):
            if (node.op_type == "LSTM" or index == 5) and not inputs[index]:
                found.append(
                    f"{name} has no {what} input: the {what.removeprefix('initial_')} state passed in is dropped"
                )
    return found
