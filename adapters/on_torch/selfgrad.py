"""A torch module as a differentiable function of NumPy arrays, in float32 or as its float64 copy:
what conformance's `self_gradients` and `state_precision` (benchmarks/conformance/selfgrad.py)
hold the module's own autograd to, without any reference weights (adapters/native.py
`Differentiable`)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from rnn_behaviour.adapters.on_torch.layer import to_numpy

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class TorchDifferentiable:
    """The module (a deep copy, converted with `.double()` for float64) with the loss
    Σ dy ⊙ y + Σ dfinal ⊙ final state; its parameters by their own names."""

    def __init__(self, module: nn.Module, device: torch.device, dtype: str) -> None:
        self.dtype, self.device, self.torch_dtype = dtype, device, DTYPES[dtype]
        self.module = copy.deepcopy(module).to(device)
        if dtype == "float64":
            self.module = self.module.double()
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [tuple(p.shape) for p in self.params]

    def _tensor(self, a: Any, grad: bool = False) -> Any:
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.floating):
            return torch.from_numpy(a.copy()).to(self.device)
        t = torch.from_numpy(np.array(a, np.float64)).to(self.device, self.torch_dtype)
        return t.requires_grad_(True) if grad else t

    def _state(self, state: Any, grad: bool = False) -> Any:
        if state is None:
            return None
        return pytree.tree_map(lambda a: self._tensor(a, grad) if isinstance(a, np.ndarray) else a, state)

    def _call(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.module(x, state)

    def run(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, str, Any]:
        """y and the final state as NumPy (in the dtypes they come out in; half precision as
        float32), and the dtypes y and each state tensor come out in, as names ("float16")."""
        with torch.no_grad():
            y, final = self._call(self._tensor(x), self._state(state))
        name = lambda t: str(t.dtype).removeprefix("torch.")  # noqa: E731
        leaves = lambda f: pytree.tree_map(lambda t: f(t) if isinstance(t, torch.Tensor) else t, final)  # noqa: E731
        return to_numpy(y), leaves(to_numpy), name(y), leaves(name)

    def _loss(self, y: torch.Tensor, final: Any, dy: np.ndarray, dfinal: Any) -> torch.Tensor:
        loss = (y.to(self.torch_dtype) * self._tensor(dy)).sum()
        if dfinal is not None:
            for s, d in zip(pytree.tree_leaves(final), pytree.tree_leaves(dfinal), strict=False):
                if isinstance(s, torch.Tensor) and s.is_floating_point():
                    loss = loss + (s.to(self.torch_dtype) * self._tensor(d)).sum()
        return loss

    def loss(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any, shift: list[Any] | None = None) -> float:
        """The loss, the parameters moved by `shift` (one array or None per parameter) meanwhile."""
        saved = [p.detach().clone() for p in self.params]
        try:
            with torch.no_grad():
                for p, s in zip(self.params, shift or [], strict=False):
                    if s is not None:
                        p.add_(self._tensor(s))
                y, final = self._call(self._tensor(x), self._state(state))
                return float(self._loss(y, final, dy, dfinal))
        finally:
            with torch.no_grad():
                for p, old in zip(self.params, saved, strict=True):
                    p.copy_(old)

    def gradients(self, x: np.ndarray, state: Any, dy: np.ndarray, dfinal: Any) -> tuple[np.ndarray, Any, list[Any]]:
        """Autograd's d loss / dx, / d state (the state's nest, zeros where none flows) and / d
        each parameter (zeros where none flows)."""
        xt, st = self._tensor(x, grad=True), self._state(state, grad=True)
        y, final = self._call(xt, st)
        leaves = [t for t in pytree.tree_leaves(st) if isinstance(t, torch.Tensor) and t.requires_grad]
        wrt = [xt, *leaves, *self.params]
        grads = torch.autograd.grad(self._loss(y, final, dy, dfinal), wrt, allow_unused=True)
        out = [np.zeros(tuple(t.shape)) if g is None else to_numpy(g) for t, g in zip(wrt, grads, strict=True)]
        found = iter(out[1 : 1 + len(leaves)])

        def dstate(a: Any) -> Any:
            if isinstance(a, torch.Tensor) and a.requires_grad:
                return next(found)
            return np.zeros(tuple(a.shape)) if isinstance(a, torch.Tensor) else a

        return out[0], (None if st is None else pytree.tree_map(dstate, st)), out[1 + len(leaves) :]
