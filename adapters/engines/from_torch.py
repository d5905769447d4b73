"""A trained torch row's model to ONNX, by the path users take: `torch.onnx.export` of the module.

The whole model (the input projection, the recurrent module, the head, and the softmax a
classifier's probabilities come from) is exported with its state as inputs and outputs, batch and
time dynamic. `exporter` is "dynamo" (torch.onnx.export's default, dynamo=True) or "torchscript"
(dynamo=False, the legacy exporter). This is the one module of `engines` that imports torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.engines.graph import Exported

EXPORTERS = ("dynamo", "torchscript", "openvino")
#: The example the exporter traces: a batch and a length no task uses, so that an exporter that
#: fixes either one shows it at the first other shape.
EXAMPLE_BATCH, EXAMPLE_TIME = 3, 7


class _Exportable(nn.Module):
    """The model as one function of (x, *state leaves) -> (y, *new state leaves)."""

    def __init__(self, net: nn.Module, treespec: Any, softmax: bool) -> None:
        super().__init__()
        self.net, self.treespec, self.softmax = net, treespec, softmax

    def forward(self, x: torch.Tensor, *leaves: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, state = self.net(x, pytree.tree_unflatten(list(leaves), self.treespec))
        if self.softmax:
            out = torch.softmax(out, dim=-1)
        return (out, *pytree.tree_leaves(state))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' progress lines, warnings and log records (torchvision ops it skips, ...)."""
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def _state(net: nn.Module, batch: int, input_size: int) -> Any:
    with torch.no_grad():
        return net(torch.zeros(batch, 2, input_size), None)[1]


#: A user's exporter: `exporter(module, args, *, input_names, output_names, dynamic_axes) -> bytes`
#: (or an `onnx.ModelProto`), called as `torch.onnx.export(dynamo=False)` is: `module(*args)` is the
#: whole model, `dynamic_axes` names each input's and output's batch and time axes.
UserExporter = Callable[..., Any]


def export(model: Any, exporter: str | UserExporter = "dynamo") -> Exported:
    """`model` (an `on_torch.model.TorchModel`, trained) as ONNX by one of `EXPORTERS` or a user's
    exporter; AdapterError naming the exporter's own error when it cannot."""
    if not callable(exporter) and exporter not in EXPORTERS:
        raise AdapterError(f"unknown torch exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    spec = model.spec
    net = model.net.to("cpu").eval()
    if model.no_state is not None:
        raise AdapterError(f"the module declares no state ({model.no_state}): nothing to export it with")
    one, other = _state(net, EXAMPLE_BATCH, spec.input_size), _state(net, EXAMPLE_BATCH + 1, spec.input_size)
    leaves, treespec = pytree.tree_flatten(one)
    if not leaves or not all(isinstance(leaf, torch.Tensor) for leaf in leaves):
        raise AdapterError("the module's state is not a nest of tensors: it cannot be an ONNX input")
    axes = [_batch_axis(a, b) for a, b in zip(leaves, pytree.tree_leaves(other), strict=True)]
    wrapper = _Exportable(net, treespec, spec.head == "softmax").eval()
    x = torch.zeros(EXAMPLE_BATCH, EXAMPLE_TIME, spec.input_size)
    state = [torch.zeros_like(leaf) for leaf in leaves]
    names = [f"state_{k}" for k in range(len(leaves))]
    outputs = ["y", *(f"state_out_{k}" for k in range(len(leaves)))]
    dynamic = {"x": {0: "batch", 1: "time"}} | {n: {a: "batch"} for n, a in zip(names, axes, strict=True)}
    dynamic |= {"y": {0: "batch"}} | {o: {a: "batch"} for o, a in zip(outputs[1:], axes, strict=True)}
    label = (
        getattr(exporter, "__qualname__", repr(exporter)) if callable(exporter) else f"dynamo={exporter == 'dynamo'}"
    )
    try:
        with _quiet():
            if callable(exporter):
                blob = exporter(wrapper, (x, *state), input_names=["x", *names], output_names=outputs,
                                dynamic_axes=dynamic)  # fmt: skip
                blob = blob if isinstance(blob, bytes) else blob.SerializeToString()
            elif exporter == "dynamo":
                fresh_rnn_dispatch()
                batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
                shapes = ({0: batch, 1: time}, tuple({axis: batch} for axis in axes))  # *leaves: one tuple
                program = torch.onnx.export(
                    wrapper, (x, *state), input_names=["x", *names], output_names=outputs, dynamic_shapes=shapes,
                    dynamo=True, verbose=False,
                )  # fmt: skip
                blob = program.model_proto.SerializeToString()
            elif exporter == "openvino":
                blob = _openvino(wrapper, x, state, axes, ["x", *names], outputs)
            else:
                buffer = io.BytesIO()
                torch.onnx.export(
                    wrapper, (x, *state), buffer, input_names=["x", *names], output_names=outputs,
                    dynamic_axes=dynamic, dynamo=False,
                )  # fmt: skip
                blob = buffer.getvalue()
    except Exception as exc:
        raise AdapterError(f"the export ({label}) failed: {first_line(exc)}") from None
    shapes_of = [tuple(-1 if k == axis else int(n) for k, n in enumerate(leaf.shape)) for leaf, axis in
                 zip(leaves, axes, strict=True)]  # fmt: skip
    versions = {"torch": str(torch.__version__)}
    if exporter == "openvino":
        import openvino as ov

        fmt, versions["openvino"] = "openvino", ov.__version__.split("-")[0]
        how = {"exporter": "openvino.convert_model(the torch module)", "opset": "none (an OpenVINO model)"}
    else:
        fmt = "onnx"
        how = {"exporter": label if callable(exporter) else f"torch.onnx.export({label})", "opset": _opset(blob)}
    return Exported(
        blob=blob,
        input_names=("x", *names),
        state_shapes=tuple(shapes_of),
        unflatten=lambda arrays: pytree.tree_unflatten(list(arrays), treespec),
        flatten=lambda state: [np.asarray(a, np.float32) for a in pytree.tree_leaves(state)],
        example=(EXAMPLE_BATCH, EXAMPLE_TIME),
        how=how,
        versions=versions,
        format=fmt,
    )


def _openvino(wrapper: nn.Module, x: torch.Tensor, state: list[torch.Tensor], axes: list[int], inputs: list[str],
              outputs: list[str]) -> Any:  # fmt: skip
    """`ov.convert_model` of the torch module itself (OpenVINO's own PyTorch frontend, no ONNX): an
    `ov.Model` with batch and time dynamic and the tensors named as the ONNX exports name them (the
    frontend leaves the outputs nameless and names the inputs after the module's arguments)."""
    import openvino as ov

    shapes = [ov.PartialShape([-1, -1, int(x.shape[2])])]
    shapes += [ov.PartialShape([-1 if k == axis else int(n) for k, n in enumerate(leaf.shape)])
               for leaf, axis in zip(state, axes, strict=True)]  # fmt: skip
    model = ov.convert_model(wrapper, example_input=(x, *state), input=shapes)
    for port, name in [*zip(model.inputs, inputs, strict=True), *zip(model.outputs, outputs, strict=True)]:
        port.get_tensor().set_names({name})
    return model


def fresh_rnn_dispatch() -> None:
    """Clear the dispatch cache of aten::lstm and aten::gru before a dynamo export. torch 2.13's exporter
    swaps in while_loop decompositions of both (so that the time axis stays dynamic) by setting the
    ops' `py_kernels` (torch/export/_patches.py, `_register_rnn_while_loop_decomposition`) without
    clearing their `_dispatch_cache`: every export after the first in a process then dispatches to the
    cached Python-loop decomposition, which fixes the time axis at the example's length, silently,
    despite `dynamic_shapes` (measured: the first export keeps `time`, the second has 7). A user who
    exports one model per process never sees it; the suite exports one per (task, seed)."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        cache = getattr(op, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()


def _batch_axis(a: torch.Tensor, b: torch.Tensor) -> int:
    changed = [k for k in range(a.ndim) if a.shape[k] != b.shape[k]]
    if a.ndim != b.ndim or len(changed) != 1:
        raise AdapterError(f"the module's state has no batch axis (shapes {tuple(a.shape)} and {tuple(b.shape)})")
    return changed[0]


def _opset(blob: bytes) -> str:
    import onnx

    model = onnx.load_from_string(blob)
    return str(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?"))
