"""Any weight-conformant row's trained model to ONNX through ONNX's own recurrent node: the model's
canonical weights (`export_model`: [proj] -> rnn -> head) written as MatMul/Add, one `LSTM`/`GRU`/
`RNN` node (`nodes.graph`) and the head's activation. This is how a Keras- (or Flax-) trained model
reaches an engine with the same node builder conformance judges; exporter name "nodes".

The source's state nest is read off its own predict: its arrays in order are the node's (h, c) (the
canonical order every weight-conformant row keeps), each (batch, hidden) or (1, batch, hidden).
`export_parity` holds the result to the source, so a row whose state is in another order fails
there, named, rather than silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.engines.graph import Exported, state_leaves, tuple_state
from rnn_behaviour.adapters.engines.nodes import graph

EXAMPLE_BATCH, EXAMPLE_TIME = 3, 7


def export(adapter: Any, model: Any) -> Exported:
    """`model`, a trained model of `adapter` (which has `export_model` and `cell`), as ONNX."""
    cell, variant, spec = adapter.cell, getattr(adapter, "variant", "") or "", model.spec
    weights = adapter.export_model(model)
    rnn = {k.removeprefix("rnn."): np.asarray(v, np.float32) for k, v in weights.items() if k.startswith("rnn.")}
    hidden = spec.hidden_size
    state = state_leaves(model.predict(np.zeros((EXAMPLE_BATCH, 2, spec.input_size), np.float32))[1])
    if len(state) != (2 if cell == "lstm" else 1):
        raise AdapterError(
            f"{adapter.name}'s state has {len(state)} arrays; the {cell} node takes {2 if cell == 'lstm' else 1}"
        )
    for leaf in state:
        if leaf.shape not in ((EXAMPLE_BATCH, hidden), (1, EXAMPLE_BATCH, hidden)):
            raise AdapterError(
                f"{adapter.name}'s state arrays are {leaf.shape}: the node takes (batch, hidden) or (1, batch, hidden)"
            )
    core = graph(cell, [[rnn]], hidden, variant=variant)
    g = core.graph
    extra: list[onnx.NodeProto] = []
    inits = list(g.initializer)

    def constant(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def dense(into: list[onnx.NodeProto], source: str, prefix: str, out: str) -> None:
        kernel = constant(f"{prefix}_kernel", np.asarray(weights[f"{prefix}.kernel"], np.float32))
        bias = constant(f"{prefix}_bias", np.asarray(weights[f"{prefix}.bias"], np.float32))
        into.append(helper.make_node("MatMul", [source, kernel], [f"{out}_mm"]))
        into.append(helper.make_node("Add", [f"{out}_mm", bias], [out]))

    renames = {"x": "x_rnn", "initial_h": "initial_h_in", "initial_c": "initial_c_in", "y": "y_rnn", "h_n": "h_n_out",
               "c_n": "c_n_out"}  # fmt: skip
    for node in g.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    if "proj.kernel" in weights:
        dense(extra, "x", "proj", "x_rnn")
    else:
        extra.append(helper.make_node("Identity", ["x"], ["x_rnn"]))
    zero = constant("axis_0", np.array([0], np.int64))
    for k, (leaf, name) in enumerate(zip(state, ("initial_h", "initial_c"), strict=False)):
        if leaf.ndim == 2:  # (batch, hidden) <-> the node's (1, batch, hidden)
            extra.append(helper.make_node("Unsqueeze", [f"state_{k}", zero], [f"{name}_in"]))
        else:
            extra.append(helper.make_node("Identity", [f"state_{k}"], [f"{name}_in"]))
    tail: list[onnx.NodeProto] = []
    for k, (leaf, name) in enumerate(zip(state, ("h_n", "c_n"), strict=False)):
        op = "Squeeze" if leaf.ndim == 2 else "Identity"
        tail.append(
            helper.make_node(op, [f"{name}_out", zero] if leaf.ndim == 2 else [f"{name}_out"], [f"state_out_{k}"])
        )
    last = "y_rnn"
    if not spec.return_sequences:
        tail.append(
            helper.make_node("Gather", ["y_rnn", constant("last_step", np.array(-1, np.int64))], ["y_last"], axis=1)
        )
        last = "y_last"
    head = "y" if spec.head not in ("tanh", "softmax") else "y_head"
    dense(tail, last, "head", head)
    if spec.head == "tanh":
        tail.append(helper.make_node("Tanh", ["y_head"], ["y"]))
    elif spec.head == "softmax":
        tail.append(helper.make_node("Softmax", ["y_head"], ["y"], axis=-1))
    nodes = [*extra, *g.node, *tail]
    f32 = onnx.TensorProto.FLOAT
    state_shapes = [tuple(-1 if n == EXAMPLE_BATCH else n for n in leaf.shape) for leaf in state]
    dims = lambda shape: ["batch" if n == -1 else n for n in shape]  # noqa: E731
    out_width = spec.output_size
    inputs = [helper.make_tensor_value_info("x", f32, ["batch", "time", spec.input_size])]
    inputs += [helper.make_tensor_value_info(f"state_{k}", f32, dims(s)) for k, s in enumerate(state_shapes)]
    y_shape = ["batch", "time", out_width] if spec.return_sequences else ["batch", out_width]
    outputs = [helper.make_tensor_value_info("y", f32, y_shape)]
    outputs += [helper.make_tensor_value_info(f"state_out_{k}", f32, dims(s)) for k, s in enumerate(state_shapes)]
    body = helper.make_graph(nodes, f"{adapter.name}_model", inputs, outputs, initializer=inits)
    model_proto = helper.make_model(body, opset_imports=list(core.opset_import), producer_name="rnn_behaviour")
    model_proto.ir_version = core.ir_version
    onnx.checker.check_model(model_proto)
    return Exported(
        blob=model_proto.SerializeToString(),
        input_names=("x", *(f"state_{k}" for k in range(len(state)))),
        state_shapes=tuple(state_shapes),
        unflatten=tuple_state,
        flatten=state_leaves,
        example=(EXAMPLE_BATCH, EXAMPLE_TIME),
        how={
            "exporter": "nodes (canonical weights -> ONNX LSTM/GRU/RNN node)",
            "opset": str(core.opset_import[0].version),
        },
    )
