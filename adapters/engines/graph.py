"""What an exporter hands the runtime row: the ONNX model, how its state is fed, how it was made;
and the checks that a graph still runs at the shapes the suite feeds it (framework-free)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from rnn_behaviour.adapters.base import AdapterError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@dataclass
class Exported:
    """A model in ONNX: inputs `x` (batch, time, features) and the state's leaves `state_<k>`,
    outputs `y` and `state_out_<k>`. `state_shapes` has -1 at each leaf's batch axis; `flatten`
    and `unflatten` turn the source model's state nest into the leaves and back; `example` is the
    (batch, time) the exporter traced; `how` says how it was made (exporter, opset, precision)."""

    blob: bytes
    input_names: tuple[str, ...]
    state_shapes: tuple[tuple[int, ...], ...]
    unflatten: Callable[[Sequence[np.ndarray]], Any]
    flatten: Callable[[Any], list[np.ndarray]]
    example: tuple[int, int]
    how: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


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
    return [f"{what} at {d.dim_value}" for what, d in zip(("batch", "time"), dims, strict=False) if d.HasField("dim_value")]


def check_shapes(exported: Exported, run: Callable[[int, int], Any], hint: str = "") -> None:
    """A graph that fixes the batch or the length it was traced with cannot be the model: say so at
    conversion, with the exporter's part in it (`hint`), instead of failing every check that feeds
    another shape. `run(batch, time)` runs the graph once."""
    batch, time = exported.example
    fixed = fixed_dims(exported.blob)
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
