"""ONNX's own recurrent nodes (`LSTM`, `GRU`, `RNN`) built from canonical weights, run by an inference
engine: conformance's bare layer (`OnnxLayer`) and stacks (`OnnxStack`).

Why nodes and not an exported model: these are what an exporter emits for `nn.LSTM` & co. and what
engines implement natively (ORT's fused kernels), so holding them to the reference checks the engine's
implementation of the ONNX spec, not just one exporter. The mapping from the canonical layout
(adapters/layout.py) to the spec:

    W [D, G·H, I] = [W_a; W_b; ...]ᵀ    R [D, G·H, H] = [U_a; ...]ᵀ    B [D, 2·G·H] = [b_a, ... | bh_a, ...]
    gate blocks in ONNX's order: LSTM i, o, f, c (c is our g), GRU z, r, h (h is our n), RNN one block

so ONNX's Wb/Rb are exactly our b/bh (a layout without bh: Rb = 0). The GRU's reset-after form is
`linear_before_reset=1`, its reset-before one `0`; the no_bhn form is reset-after with Rb_n = 0.

The graph is batch-first at its edges (like the suite's layers) and time-major inside (`layout=0`,
every engine's default), with Transposes between: inputs `x` (B, T, I), `initial_h` (L·D, B, H),
`initial_c` (LSTM), optionally `sequence_lens` (B,) int32; outputs `y` (B, T, D·H) (the last layer's,
directions concatenated as in PyTorch), `h_n` (L·D, B, H), `c_n` (LSTM), state rows in PyTorch's order
(`reference_stack.units`). B and T are symbolic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnn_behaviour.adapters.base import AdapterError, check_input, check_lengths
from rnn_behaviour.adapters.engines.runtimes import Runtime, Session
from rnn_behaviour.adapters.layout import (
    GATES,
    N_STATES,
    Weights,
    _check_cell,
    check_state,
    check_weights,
    pack_state,
    to_layout,
    to_stacked,
)
from rnn_behaviour.adapters.reference import random_weights
from rnn_behaviour.adapters.reference_stack import StackWeights, check_stack_weights, suffix, units

#: The order of the gate blocks in ONNX's W, R and B (LSTM i, o, f, c; GRU z, r, h).
ONNX_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "o", "f", "g"), "gru": ("z", "r", "n"), "rnn": ("h",)}
OPS: dict[str, str] = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
#: The GRU's `linear_before_reset` per variant: 1 is the reset-after form (PyTorch's), 0 reset-before.
LINEAR_BEFORE_RESET: dict[str, int] = {"": 1, "reset_before": 0, "no_bhn": 1}
#: The opset the graph is built in: 14, the first where the nodes' `layout` (0, time-major) can be said
#: outright; 10 to 13 build the same graph without it (Slice takes its bounds as inputs from 10).
OPSET = 14
#: ONNX IR version 8 (onnx 1.10, opset 14's release): old enough for any engine that runs opset 14.
IR_VERSION = 8


def node_weights(cell: str, weights: Mapping[str, np.ndarray], variant: str = "",
                 order: Sequence[str] | None = None) -> tuple[np.ndarray, ...]:  # fmt: skip
    """One direction's (W (G·H, I), R (G·H, H), B (2·G·H,)) as float32 from canonical weights in
    either layout: Wb = b, Rb = bh (0 when absent; the no_bhn GRU's Rb_n always 0). `order` is the
    gate blocks' order, ONNX's unless a planted defect says otherwise."""
    full = to_layout(cell, weights, True)
    order = ONNX_GATES[cell] if order is None else tuple(order)
    kernel, recurrent, bias, recurrent_bias = to_stacked(cell, order, full)
    assert recurrent_bias is not None  # to_layout(..., True) gives every cell its bh
    recurrent_bias = np.array(recurrent_bias, np.float32)
    if cell == "gru" and variant == "no_bhn":
        hidden = recurrent.shape[0]
        n = order.index("n")
        recurrent_bias[n * hidden : (n + 1) * hidden] = 0.0
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    return f32(kernel.T), f32(recurrent.T), f32(np.concatenate([np.asarray(bias, np.float32), recurrent_bias]))


def graph(
    cell: str,
    layers: Sequence[Sequence[Mapping[str, np.ndarray]]],
    hidden_size: int,
    *,
    variant: str = "",
    bidirectional: bool = False,
    lengths: bool = False,
    opset: int = OPSET,
    order: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """The model of a stack: `layers[k][d]` is layer k's canonical weights for direction d (forward,
    then backward when `bidirectional`), layer 0's input size read off its W; `lengths` adds the
    `sequence_lens` input. Checked by `onnx.checker` before it is returned."""
    _check_cell(cell, variant)
    dirs = 2 if bidirectional else 1
    if not layers or any(len(directions) != dirs for directions in layers):
        raise AdapterError(f"graph needs at least one layer of {dirs} direction(s) of weights; got {len(layers)}")
    input_size = np.shape(layers[0][0][f"W_{GATES[cell][0]}"])[0]
    n_layers, width = len(layers), dirs * hidden_size
    rows = n_layers * dirs
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def constant(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    shape = constant("flat_shape", np.array([0, 0, width], np.int64))
    nodes.append(helper.make_node("Transpose", ["x"], ["x_tbi"], perm=[1, 0, 2]))
    inputs, states = "x_tbi", ["initial_h", "initial_c"][: N_STATES[cell]]
    finals: list[list[str]] = [[] for _ in states]
    for k, directions in enumerate(layers):
        size = input_size if k == 0 else width
        per_dir = [node_weights(cell, check_weights(cell, size, hidden_size, d, variant), variant, order)
                   for d in directions]  # fmt: skip
        w, r, b = (constant(f"{role}_l{k}", np.stack([p[j] for p in per_dir])) for j, role in enumerate("WRB"))
        if n_layers == 1:
            initial = list(states)
        else:
            starts = constant(f"start_l{k}", np.array([k * dirs]))
            ends = constant(f"end_l{k}", np.array([(k + 1) * dirs]))
            initial = [f"{s}_l{k}" for s in states]
            for s, name in zip(states, initial, strict=True):
                nodes.append(helper.make_node("Slice", [s, starts, ends], [name]))
        outs = [f"Y_l{k}", *(f"{s}_l{k}_final" for s in ("h", "c")[: len(states)])]
        attributes: dict[str, Any] = {"hidden_size": hidden_size}
        if opset >= 14:  # time-major, the default: said outright where the attribute exists (opset 14 on)
            attributes["layout"] = 0
        if bidirectional:
            attributes["direction"] = "bidirectional"
        if cell == "gru":
            attributes["linear_before_reset"] = LINEAR_BEFORE_RESET[variant]
        node_inputs = [inputs, w, r, b, "sequence_lens" if lengths else "", *initial]
        nodes.append(helper.make_node(OPS[cell], node_inputs, outs, name=f"{OPS[cell].lower()}_l{k}", **attributes))
        for final, name in zip(finals, outs[1:], strict=True):
            final.append(name)
        # Y [T, D, B, H] -> [T, B, D·H] (the next layer's input) or [B, T, D·H] (the output y)
        last = k == n_layers - 1
        perm = [2, 0, 1, 3] if last else [0, 2, 1, 3]
        nodes.append(helper.make_node("Transpose", [outs[0]], [f"Y_l{k}_t"], perm=perm))
        inputs = "y" if last else f"Y_l{k}_flat"
        nodes.append(helper.make_node("Reshape", [f"Y_l{k}_t", shape], [inputs]))
    for name, final in zip(("h_n", "c_n"), finals, strict=False):
        nodes.append(helper.make_node("Concat", final, [name], axis=0) if len(final) > 1 else
                     helper.make_node("Identity", final, [name]))  # fmt: skip
    f32 = TensorProto.FLOAT
    state_shape = [rows, "batch", hidden_size]
    graph_inputs = [helper.make_tensor_value_info("x", f32, ["batch", "time", input_size])]
    graph_inputs += [helper.make_tensor_value_info(s, f32, state_shape) for s in states]
    if lengths:
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"]))
    graph_outputs = [helper.make_tensor_value_info("y", f32, ["batch", "time", width])]
    graph_outputs += [helper.make_tensor_value_info(n, f32, state_shape) for n in ("h_n", "c_n")[: len(states)]]
    body = helper.make_graph(nodes, f"{cell}_nodes", graph_inputs, graph_outputs, initializer=inits)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset)], producer_name="rnn_behaviour")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def hold(cell: str, input_size: int, hidden_size: int, weights: Mapping[str, Any], variant: str = "") -> Weights:
    """The weights as a node of `variant` holds them: validated, in the layout with bh (zeros where
    none was given), float32 copies (float32 input kept bit for bit). A no_bhn GRU given a bh_n that is
    not 0 raises `layout.CannotHold` through `to_layout`, the route every other layer takes."""
    checked = check_weights(cell, input_size, hidden_size, weights, variant)
    if cell == "gru" and variant == "no_bhn":
        to_layout(cell, checked, False, variant)  # raises CannotHold on a bh_n that is not 0
    return {k: np.array(v, np.float32, copy=True) for k, v in to_layout(cell, checked, True).items()}


def feeds(x: np.ndarray, state_rows: Sequence[np.ndarray], lengths: np.ndarray | None) -> dict[str, Any]:
    """The graph's inputs: x as float32, the state rows (L·D, B, H) as float32, sequence_lens int32."""
    out: dict[str, Any] = {"x": x}
    for name, rows in zip(("initial_h", "initial_c"), state_rows, strict=False):
        out[name] = np.ascontiguousarray(rows, np.float32)
    if lengths is not None:
        out["sequence_lens"] = np.asarray(lengths, np.int32)
    return out


class OnnxLayer:
    """One forward layer as ONNX nodes behind the conformance `Layer` API (no gradients: an engine
    does inference only). The session is built lazily, once per imported weights (with and without
    `sequence_lens`), since each costs milliseconds and conformance runs many forwards per import."""

    #: The order of the gate blocks written into the node (None: ONNX's; a planted defect's own).
    order: Sequence[str] | None = None

    def __init__(self, cell: str, input_size: int, hidden_size: int, runtime: Runtime, *, variant: str = "",
                 seed: int = 0) -> None:  # fmt: skip
        _check_cell(cell, variant)
        self.cell, self.input_size, self.hidden_size, self.variant = cell, input_size, hidden_size, variant
        self.runtime = runtime
        self.sessions: dict[bool, Session] = {}
        drawn = random_weights(cell, input_size, hidden_size, np.random.default_rng(seed))
        if cell == "gru" and variant == "no_bhn":
            drawn["bh_n"] = np.zeros(hidden_size)
        self.weights = hold(cell, input_size, hidden_size, drawn, variant)

    def session(self, lengths: bool) -> Session:
        if lengths not in self.sessions:
            model = graph(self.cell, [[self.weights]], self.hidden_size, variant=self.variant, lengths=lengths,
                          order=self.order)  # fmt: skip
            self.sessions[lengths] = self.runtime.session(model)
        return self.sessions[lengths]

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """y (B, T, H) float32 and the final state; with `lengths` row b is read up to lengths[b]
        steps and its final state is the one after them (y past a row's length is the engine's: ORT
        writes 0). `check_lengths` refuses a length of 0: ORT would give that row a final state of
        zeros, not its initial state."""
        x = check_input(x, self.input_size)
        n = None if lengths is None else check_lengths(lengths, x.shape[0], x.shape[1])
        parts = check_state(self.cell, state, x.shape[0], self.hidden_size)
        out = self.session(n is not None).run(feeds(x, [p[None] for p in parts], n))
        finals = [np.array(out[name][0], np.float32) for name in ("h_n", "c_n")[: len(parts)]]
        return np.array(out["y"], np.float32), pack_state(self.cell, finals)

    def export_weights(self) -> Weights:
        return {k: v.copy() for k, v in self.weights.items()}

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights = hold(self.cell, self.input_size, self.hidden_size, weights, self.variant)
        self.sessions = {}


class OnnxStack:
    """`num_layers` layers, each one node (bidirectional when asked), behind
    adapters/reference_stack.StackLayer: the state (h, c)/h each (num_layers·D, B, H) in PyTorch's row
    order, weights keyed `l0`, `l0_reverse`, `l1`, ... The session is built once per import."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                 runtime: Runtime, variant: str = "", seed: int = 0) -> None:  # fmt: skip
        _check_cell(cell, variant)
        if num_layers < 1:
            raise AdapterError(f"a stack needs at least one layer; got num_layers={num_layers}")
        self.cell, self.input_size, self.hidden_size, self.variant = cell, input_size, hidden_size, variant
        self.num_layers, self.bidirectional, self.runtime = num_layers, bidirectional, runtime
        self.sessions: dict[bool, Session] = {}
        dirs = 2 if bidirectional else 1
        g = np.random.default_rng(seed)
        self.weights: StackWeights = {}
        for layer, direction, _ in units(num_layers, bidirectional):
            size = input_size if layer == 0 else dirs * hidden_size
            drawn = random_weights(cell, size, hidden_size, g)
            if cell == "gru" and variant == "no_bhn":
                drawn["bh_n"] = np.zeros(hidden_size)
            self.weights[suffix(layer, direction)] = hold(cell, size, hidden_size, drawn, variant)

    @property
    def rows(self) -> int:
        return self.num_layers * (2 if self.bidirectional else 1)

    def session(self, lengths: bool) -> Session:
        if lengths not in self.sessions:
            dirs = 2 if self.bidirectional else 1
            layers = [[self.weights[suffix(k, d)] for d in range(dirs)] for k in range(self.num_layers)]
            model = graph(self.cell, layers, self.hidden_size, variant=self.variant, bidirectional=self.bidirectional,
                          lengths=lengths)  # fmt: skip
            self.sessions[lengths] = self.runtime.session(model)
        return self.sessions[lengths]

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """y (B, T, D·H) of the last layer and the final state in the stacked layout (None = zeros)."""
        x = check_input(x, self.input_size)
        batch, n_states = x.shape[0], N_STATES[self.cell]
        expected = (self.rows, batch, self.hidden_size)
        if state is None:
            parts = [np.zeros(expected, np.float32) for _ in range(n_states)]
        else:
            parts = [np.asarray(a) for a in (state if isinstance(state, tuple | list) else (state,))]
            if len(parts) != n_states or any(p.shape != expected for p in parts):
                raise AdapterError(f"{self.cell} stack state must be {n_states} array(s) of shape {expected}; "
                                   f"got shape(s) {[p.shape for p in parts]}")  # fmt: skip
        n = None if lengths is None else check_lengths(lengths, batch, x.shape[1])
        out = self.session(n is not None).run(feeds(x, parts, n))
        finals = [np.array(out[name], np.float32) for name in ("h_n", "c_n")[:n_states]]
        return np.array(out["y"], np.float32), pack_state(self.cell, finals)

    def export_weights(self) -> StackWeights:
        return {s: {k: v.copy() for k, v in w.items()} for s, w in self.weights.items()}

    def import_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        checked = check_stack_weights(
            self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, weights
        )
        dirs = 2 if self.bidirectional else 1
        self.weights = {
            s: hold(
                self.cell,
                self.input_size if s.startswith("l0") else dirs * self.hidden_size,
                self.hidden_size,
                w,
                self.variant,
            )
            for s, w in checked.items()
        }
        self.sessions = {}
