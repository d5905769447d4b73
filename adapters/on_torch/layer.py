"""Conformance's view of a torch module: a bare layer (NumPy in and out, canonical state) and whole-model
weights in the canonical layout of adapters/reference.py."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnn_behaviour.adapters.base import check_input, check_lengths
from rnn_behaviour.adapters.custom import (
    canonical_gradients,
)
from rnn_behaviour.adapters.on_torch.probe import TORCH_GATES, ModuleInfo
from rnn_behaviour.adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    pack_state,
    to_layout,
    to_stacked,
)

# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)


def _canonical(cell: str, params: Mapping[str, np.ndarray]) -> Weights:
    """weight_ih/weight_hh/bias_ih/bias_hh -> canonical, b = bias_ih and bh = bias_hh for every cell
    (of the parameters or of their gradients alike)."""
    return from_stacked(
        cell, TORCH_GATES[cell], params["weight_ih_l0"].T, params["weight_hh_l0"].T, params["bias_ih_l0"],
        params["bias_hh_l0"],
    )  # fmt: skip


def _numpy_params(module: nn.Module, grad: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for name, p in module.named_parameters():
        value = p.grad if grad else p
        out[name] = np.zeros(tuple(p.shape), np.float32) if value is None else to_numpy(value)
    return out


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array of its own, from whatever device it is on; float16 and
    bfloat16 (which NumPy lacks) come back as float32, exactly."""
    t = t.detach().cpu()
    return (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy().copy()


def torch_parameters(cell: str, weights: Mapping[str, np.ndarray], suffix: str = "l0") -> dict[str, np.ndarray]:
    """One layer/direction's parameters under PyTorch's names (`weight_ih_<suffix>`, ...) from
    canonical weights in either layout (no bh: bias_hh = 0)."""
    kernel, recurrent, bias, recurrent_bias = to_stacked(cell, TORCH_GATES[cell], to_layout(cell, weights, True))
    assert recurrent_bias is not None  # to_layout(..., True) gives every cell its bh
    values = {"weight_ih": kernel.T, "weight_hh": recurrent.T, "bias_ih": bias, "bias_hh": recurrent_bias}
    return {f"{role}_{suffix}": value for role, value in values.items()}


def copy_parameters(module: nn.Module, values: Mapping[str, np.ndarray]) -> None:
    """Write `values` into the module's parameters of those names, in place (so a module on the GPU
    keeps its tensors), as float32."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)))


def _load_rnn(module: nn.Module, cell: str, weights: Mapping[str, np.ndarray]) -> None:
    copy_parameters(module, torch_parameters(cell, weights))


def export_weights(module: nn.Module, cell: str, access: str) -> Weights:
    """A module's recurrent weights in the canonical layout (`access` from `probe_module`)."""
    if access == "export":
        exported = cast(Any, module).export_weights().items()
        return {k: to_numpy(v) if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in exported}
    return _canonical(cell, _numpy_params(module))


def import_weights(
    module: nn.Module, cell: str, access: str, weights: Mapping[str, np.ndarray], info: ModuleInfo | None = None
) -> None:
    """Canonical weights (either layout) into the module, folded into its own layout (`info`)."""
    if access == "export":
        if info is not None:
            weights = to_layout(cell, weights, info.recurrent_bias, info.variant)
        cast(Any, module).import_weights(dict(weights))
    else:
        _load_rnn(module, cell, weights)


class TorchLayer:
    """A bare module (batch-first, on the run's device) behind the conformance `Layer` API: numpy
    in and out, canonical state `(h, c)`/`h`, converted to and from the module's nest. `dtype`
    ("float32", "float16", "bfloat16") is the module's (`.to(dtype)`), its inputs' and its state's;
    outputs come back as float32."""

    def __init__(
        self,
        module: nn.Module,
        info: ModuleInfo,
        input_size: int,
        hidden_size: int,
        device: torch.device,
        *,
        dtype: str = "float32",
    ) -> None:
        assert info.cell is not None and info.access is not None
        self.dtype = getattr(torch, dtype)
        converted = module.to(device) if dtype == "float32" else module.to(device=device, dtype=self.dtype)
        self.module, self.info, self.device = converted, info, device
        self.cell, self.access, self.variant = info.cell, info.access, info.variant
        self.input_size, self.hidden_size = input_size, hidden_size

    def _inputs(self, x: np.ndarray, state: Any, grad: bool = False) -> tuple[torch.Tensor, Any, list[torch.Tensor]]:
        """x, the module's state nest (None stays None unless `grad`) and its leaves, which require
        grad when `grad` (a None state is then the zero state, so its gradient can be read); all in
        the layer's dtype."""
        xt = torch.from_numpy(check_input(x, self.input_size).copy()).to(self.device, self.dtype)
        if state is None and not grad:
            return xt, None, []
        arrays = check_state(self.cell, state, len(xt), self.hidden_size)
        wide = np.float64 if self.dtype == torch.float64 else np.float32  # a float64 layer keeps its state's digits
        tensors = [
            torch.from_numpy(np.asarray(a, wide).reshape((1, *a.shape) if rank == 3 else a.shape).copy())
            .to(self.device, self.dtype)
            .requires_grad_(grad)
            for a, rank in zip(arrays, self.info.state_ranks, strict=True)
        ]
        return xt, pytree.tree_unflatten(tensors, self.info.state_spec), tensors

    def float64_twin(self) -> TorchLayer:
        """A copy of this layer (the same weights) computing in float64, outputs in float64: the
        "same computation" checks' second opinion on a float32 gap (benchmarks/README.md)."""
        return TorchLayer(
            copy.deepcopy(self.module), self.info, self.input_size, self.hidden_size, self.device, dtype="float64"
        )

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        """With `lengths`, row b is read up to lengths[b] steps (packed, as nn.LSTM takes it) and
        its final state is the one after them; y is zero past each row's length."""
        xt, st, _ = self._inputs(x, state)
        with torch.no_grad():
            y, final = self.module(xt, st) if lengths is None else self._packed(xt, st, lengths)
        arrays = [to_numpy(s).reshape(len(xt), self.hidden_size) for s in pytree.tree_leaves(final)]
        return to_numpy(y), pack_state(self.cell, arrays)

    def _packed(self, xt: torch.Tensor, st: Any, lengths: Any) -> tuple[torch.Tensor, Any]:
        n = check_lengths(lengths, len(xt), xt.shape[1])
        packed = pack_padded_sequence(xt, torch.from_numpy(n.astype(np.int64)), batch_first=True, enforce_sorted=False)
        out, final = self.module(packed, st)
        return pad_packed_sequence(out, batch_first=True, total_length=xt.shape[1])[0], final

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        """(dx, dW, dstate) of Σ dy ⊙ y + Σ dfinal ⊙ final state by autograd (`Layer.gradients`)."""
        xt, st, leaves = self._inputs(x, state, grad=True)
        xt.requires_grad_(True)
        self.module.zero_grad(set_to_none=True)
        y, final = self.module(xt, st)
        upstream = torch.ones_like(y) if dy is None else torch.from_numpy(np.asarray(dy, np.float32)).to(self.device)
        loss = (y * upstream).sum()
        if dfinal is not None:
            given = check_state(self.cell, dfinal, len(xt), self.hidden_size)
            for s, d in zip(pytree.tree_leaves(final), given, strict=True):
                d_t = torch.from_numpy(np.asarray(d, np.float32)).to(self.device)
                loss = loss + (s.reshape(len(xt), self.hidden_size) * d_t).sum()
        loss.backward()
        dx = to_numpy(xt.grad) if xt.grad is not None else np.zeros(x.shape, np.float32)
        zero = np.zeros((len(xt), self.hidden_size), np.float32)
        dstate = pack_state(
            self.cell, [zero if t.grad is None else to_numpy(t.grad).reshape(zero.shape) for t in leaves]
        )
        grads = _numpy_params(self.module, grad=True)
        if self.access == "standard":
            return dx, _canonical(self.cell, grads), dstate
        dw = canonical_gradients(
            self.cell, self.input_size, self.hidden_size, grads, self.import_weights,
            lambda: _numpy_params(self.module), self.export_weights(),
        )  # fmt: skip
        return dx, dw, dstate

    def export_weights(self) -> Weights:
        return export_weights(self.module, self.cell, self.access)

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights, self.variant)
        import_weights(self.module, self.cell, self.access, checked, self.info)
