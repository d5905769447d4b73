"""A torch module itself behind `adapters.native.NativeModule`: torch tensors in, no validation by
the suite, the caller's tensors compared before and after (conformance's caller_data, bad_input)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from rnn_behaviour.adapters.native import NativeCall, max_change
from rnn_behaviour.adapters.on_torch.layer import to_numpy


class TorchNative:
    """The factory's module on the run's device; the state is the module's own nest."""

    framework = "torch"
    immutable = None
    layouts: ClassVar[dict[str, str]] = {
        "contiguous": "a contiguous (batch, time, features) tensor",
        "strided": "x[:, ::2] of a (batch, 2 time, features) tensor",
        "transposed": "a (time, batch, features) tensor .transpose(0, 1)",
    }

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        self.module, self.device = module.to(device), device

    def _tensor(self, a: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(a, np.float32)).to(self.device)

    def _state(self, state: Any) -> Any:
        if state is None:
            return None
        return pytree.tree_map(lambda a: self._tensor(a) if isinstance(a, np.ndarray) else a, state)

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        with torch.no_grad():
            y, final = self.module(self._tensor(x), self._state(state))
        return to_numpy(y), pytree.tree_map(lambda s: to_numpy(s) if isinstance(s, torch.Tensor) else s, final)

    def differentiable(self, dtype: str = "float32") -> Any:
        """The module as a differentiable function in `dtype` ("float64": a `.double()` copy), for
        the checks that hold its autograd to its own forward (adapters/on_torch/selfgrad.py)."""
        from rnn_behaviour.adapters.on_torch.selfgrad import TorchDifferentiable

        return TorchDifferentiable(self.module, self.device, dtype)

    def _layout(self, x: np.ndarray, layout: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input in `layout`, and the tensor it is a view of (None when it is its own)."""
        if layout == "contiguous":
            return self._tensor(x), None
        if layout == "strided":
            base = torch.zeros((x.shape[0], 2 * x.shape[1], x.shape[2]), device=self.device)
            base[:, ::2] = self._tensor(x)
            return base[:, ::2], base
        if layout == "transposed":
            base = self._tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1)))
            return base.transpose(0, 1), base
        raise ValueError(f"unknown layout {layout!r}")

    def call(self, x: np.ndarray, state: Any, layout: str = "contiguous", backward: bool = False,
             repeats: int = 1, seed: int = 0) -> NativeCall:  # fmt: skip
        if backward and layout != "contiguous":
            raise ValueError("backward runs on the contiguous layout only")
        xt, base = self._layout(x, layout)
        st = self._state(state)
        if backward:
            # Non-leaf tensors that require grad, as a model hands the module (after a projection).
            xt = xt.requires_grad_(True).clone()
            st = pytree.tree_map(
                lambda s: s.detach().requires_grad_(True).clone() if isinstance(s, torch.Tensor) else s, st
            )
        owned = {"x": xt, **{f"state[{k}]": s for k, s in enumerate(_tensors(st))}}
        if base is not None:
            owned[f"{tuple(base.shape)} tensor that x is a view of"] = base
        before = {name: to_numpy(t) for name, t in owned.items()}
        generator = np.random.default_rng(seed)
        outputs = []
        for _ in range(repeats):
            with torch.set_grad_enabled(backward):
                y, final = self.module(xt, st)
            leaves = _tensors(final)
            outputs.append((to_numpy(y), [to_numpy(s) for s in leaves]))
            if backward:
                pulled = [t for t in (y, *leaves) if t.requires_grad]
                upstream = [self._tensor(generator.normal(0.0, 1.0, tuple(t.shape))) for t in pulled]
                torch.autograd.backward(pulled, upstream)
        changed = {name: max_change(before[name], to_numpy(t)) for name, t in owned.items()}
        return NativeCall(outputs, changed)


def _tensors(nest: Any) -> list[torch.Tensor]:
    """The tensors of a state nest (a module may keep other leaves in it, e.g. a step count)."""
    return [t for t in pytree.tree_leaves(nest) if isinstance(t, torch.Tensor)]
