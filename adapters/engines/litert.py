"""LiteRT (the TFLite interpreter of the `ai-edge-litert` package) as a runtime row's engine: a
flatbuffer in, inputs fed BY NAME, NumPy out, on one thread.

Why by name: the interpreter lists a converted Keras model's inputs in its own order (measured:
`state_0, state_1, x` for a model called as `(x, state_0, state_1)`), and its outputs in yet another
(`StatefulPartitionedCall:1, :2, :0`); feeding h and c by position put an LSTM 0.87 off. The
flatbuffer's signature (`serving_default`) keeps the names the exporter gave (`x`, `state_<k>`,
`y`, `state_out_<k>`); without one, tensor names are read with their `serving_default_` prefix and
`:0` suffix taken off, and outputs that still have no name are told apart by shape, or refused.

Why in pieces: a model converted with builtin ops only has a static batch (engines/from_keras.py),
which no resize undoes. A model whose inputs fix the batch (axis 0 of every input and output) is
run on other batches in pieces of that many rows, the last one padded with zero rows that are
dropped; the time axis is resized per call (the allocation is kept while the shapes repeat).

Importing this module imports `ai_edge_litert`: a missing package is an ImportError, and the
LiteRT rows skip.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from rnn_behaviour.adapters.base import AdapterError, threads
from rnn_behaviour.adapters.custom import first_line

Detail = dict[str, Any]


def our_name(tensor_name: str) -> str:
    """`serving_default_x:0` -> `x`: the name the exporter gave, from the interpreter's tensor name."""
    return re.sub(r":\d+$", "", tensor_name).removeprefix("serving_default_")


def match_inputs(pairs: list[tuple[str, Detail]]) -> dict[str, Detail]:
    """Our input name -> the interpreter's tensor, by name whatever the order of `pairs`."""
    out: dict[str, Detail] = {}
    for name, detail in pairs:
        key = our_name(name)
        if key in out:
            raise AdapterError(f"two LiteRT inputs are both named {key!r}: inputs cannot be fed by name")
        out[key] = detail
    return out


def match_outputs(pairs: list[tuple[str, Detail]], inputs: Mapping[str, Detail]) -> dict[str, Detail]:
    """Our output name (`y`, `state_out_<k>`) -> the interpreter's tensor: by name; failing that,
    `state_out_<k>` is the one unnamed output of `state_<k>`'s shape and `y` the one left; an
    AdapterError when shapes cannot tell them apart (an LSTM's h and c share one)."""
    named = {our_name(name): detail for name, detail in pairs}
    wanted = ["y", *(f"state_out_{k[len('state_') :]}" for k in inputs if k.startswith("state_"))]
    if all(w in named for w in wanted):
        return {w: named[w] for w in wanted}
    left = [(name, d) for name, d in pairs if our_name(name) not in wanted]
    out = {w: named[w] for w in wanted if w in named}
    for w in wanted[1:]:
        if w in out:
            continue
        shape = list(inputs[w.replace("state_out_", "state_")]["shape_signature"])
        same = [(n, d) for n, d in left if list(d["shape_signature"]) == shape]
        if len(same) != 1:
            raise AdapterError(
                f"LiteRT's outputs ({', '.join(n for n, _ in pairs)}) carry no names, and {len(same)} of them have "
                f"{w}'s shape {shape}: cannot tell which is which (give the model a signature with output names)"
            )
        out[w] = same[0][1]
        left.remove(same[0])
    if "y" not in out:
        if len(left) != 1:
            raise AdapterError(f"LiteRT's outputs carry no names, and {len(left)} are left for y: cannot tell which")
        out["y"] = left[0][1]
    return out


class LiteRTSession:
    """One `ai_edge_litert.interpreter.Interpreter` over a flatbuffer (default delegates: XNNPACK)."""

    def __init__(self, blob: bytes, num_threads: int) -> None:
        try:
            self.interpreter = Interpreter(model_content=bytes(blob), num_threads=num_threads)
        except Exception as exc:
            raise AdapterError(f"LiteRT refused the model: {first_line(exc)}") from None
        self.inputs = match_inputs(self._input_pairs())
        self.outputs = match_outputs(self._output_pairs(), self.inputs)
        self.input_names, self.output_names = tuple(self.inputs), tuple(self.outputs)
        batches = {int(d["shape_signature"][0]) for d in self.inputs.values()}
        #: The rows per invoke when the model fixes its batch, else None.
        self.piece = batches.pop() if len(batches) == 1 and -1 not in batches else None
        self._allocated: dict[str, tuple[int, ...]] = {}

    def _signature(self) -> Any:
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            return None
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        return self.interpreter.get_signature_runner(key)

    def _input_pairs(self) -> list[tuple[str, Detail]]:
        """(name, tensor detail) of each input, the signature's names where the model has one."""
        runner = self._signature()
        if runner is not None:
            return list(runner.get_input_details().items())
        return [(d["name"], d) for d in self.interpreter.get_input_details()]

    def _output_pairs(self) -> list[tuple[str, Detail]]:
        runner = self._signature()
        if runner is not None:
            return list(runner.get_output_details().items())
        return [(d["name"], d) for d in self.interpreter.get_output_details()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != set(self.inputs):
            raise AdapterError(f"LiteRT's model takes {', '.join(self.inputs)}; fed {', '.join(feeds)}")
        arrays = {k: np.ascontiguousarray(v, self.inputs[k]["dtype"]) for k, v in feeds.items()}
        if self.piece is None:
            return self._invoke(arrays)
        batch = {a.shape[0] if a.ndim else -1 for a in arrays.values()}
        if len(batch) != 1 or -1 in batch:
            raise AdapterError(f"LiteRT's model fixes the batch at {self.piece}: its inputs must share axis 0 "
                               f"(shapes {[a.shape for a in arrays.values()]})")  # fmt: skip
        rows, parts = batch.pop(), []
        for start in range(0, max(rows, 1), self.piece):
            part = {k: a[start : start + self.piece] for k, a in arrays.items()}
            n = len(part["x"] if "x" in part else next(iter(part.values())))
            if n < self.piece:
                part = {
                    k: np.concatenate([a, np.zeros((self.piece - n, *a.shape[1:]), a.dtype)]) for k, a in part.items()
                }
            parts.append({k: v[:n] for k, v in self._invoke(part).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in self.outputs}

    def _invoke(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            shapes = {k: a.shape for k, a in arrays.items()}
            if shapes != self._allocated:
                for k, shape in shapes.items():
                    self.interpreter.resize_tensor_input(self.inputs[k]["index"], list(shape))
                self.interpreter.allocate_tensors()
                self._allocated = shapes
            for k, a in arrays.items():
                self.interpreter.set_tensor(self.inputs[k]["index"], a)
            self.interpreter.invoke()
            return {k: np.array(self.interpreter.get_tensor(d["index"])) for k, d in self.outputs.items()}
        except Exception as exc:
            self._allocated = {}
            raise AdapterError(f"LiteRT could not run the model: {first_line(exc)}") from None


class LiteRT:
    """The LiteRT interpreter on the CPU, `RNN_BEHAVIOUR_THREADS` threads (1), its default delegate
    (XNNPACK, what a user's `Interpreter(model_content=...)` gets)."""

    name = "litert"
    #: The conformance items' bare layer and stacks are ONNX nodes (engines/nodes.py): a LiteRT row has none.
    bare_layer = False
    why_no_bare_layer = "the LiteRT rows have no node-level bare layer (conformance's layers are ONNX nodes)"

    def session(self, model: bytes) -> LiteRTSession:
        if not isinstance(model, bytes | bytearray):
            raise AdapterError(f"LiteRT runs a TFLite flatbuffer (bytes), not a {type(model).__name__}")
        return LiteRTSession(model, threads())

    def versions(self) -> dict[str, str]:
        return {"ai-edge-litert": metadata.version("ai-edge-litert")}

    def compute_path(self) -> dict[str, str]:
        return {"runtime": "litert", "interpreter": "ai_edge_litert.interpreter.Interpreter",
                "delegate": "XNNPACK (default)", "threads": str(threads())}  # fmt: skip
