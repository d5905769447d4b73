"""Conformance's view of a torch factory's stacks: the module built with `num_layers` and/or
`bidirectional` (as `nn.LSTM` takes them), NumPy in and out, its weights imported by PyTorch's
per-layer names (`weight_ih_l1`, `weight_hh_l0_reverse`, ...) from the canonical layout of
adapters/reference_stack.py. A factory that takes neither keyword cannot be stacked (a skip)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from rnn_behaviour.adapters.base import AdapterError, check_input
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.on_torch.layer import copy_parameters, to_numpy, torch_parameters
from rnn_behaviour.adapters.on_torch.probe import Factory, ModuleInfo
from rnn_behaviour.adapters.reference_stack import NotStackable, check_stack_weights, stack_keywords, suffix, units


class TorchStack:
    """`factory(input_size, hidden_size, num_layers=..., bidirectional=...)` (only the keywords
    that differ from one forward layer are passed) behind adapters/reference_stack.StackLayer."""

    def __init__(self, factory: Factory, target: str, info: ModuleInfo, input_size: int, hidden_size: int,
                 num_layers: int, bidirectional: bool, device: torch.device) -> None:  # fmt: skip
        assert info.cell is not None
        keywords, call = stack_keywords(factory, target, input_size, hidden_size, num_layers, bidirectional)
        if info.access != "standard":
            raise NotStackable(
                f"{target}'s weights are reached through export_weights(), one layer's; stacks need PyTorch's "
                "parameter names per layer and direction (weight_ih_l1, weight_ih_l0_reverse, ...)"
            )
        if any(rank != 3 for rank in info.state_ranks):
            raise NotStackable(f"{target}'s state is (batch, hidden), which has no room for several layers/directions")
        try:
            module = factory(input_size, hidden_size, **keywords)
        except TypeError as exc:
            raise NotStackable(f"calling {call} raised {first_line(exc)}") from None
        self.cell, self.info, self.device = info.cell, info, device
        self.module: nn.Module = module.to(device)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        names = {name for name, _ in self.module.named_parameters()}
        expected = [f"{p}_{suffix(k, d)}" for k, d, _ in units(num_layers, bidirectional)
                    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]  # fmt: skip
        missing = [name for name in expected if name not in names]
        if missing:
            raise AdapterError(
                f"{call} has no {', '.join(missing)} (its parameters: {', '.join(sorted(names))}): it accepts "
                f"{' and '.join(keywords)} but does not build a layer/direction with PyTorch's names for each"
            )

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        xt = torch.from_numpy(check_input(x, self.input_size).copy()).to(self.device)
        st = None
        if state is not None:
            leaves = [torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device)
                      for a in (state if isinstance(state, tuple | list) else (state,))]  # fmt: skip
            st = pytree.tree_unflatten(leaves, self.info.state_spec)
        with torch.no_grad():
            y, final = self.module(xt, st)
        out = [to_numpy(s) for s in pytree.tree_leaves(final)]
        return to_numpy(y), (out[0], out[1]) if self.cell == "lstm" else out[0]

    def import_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        checked = check_stack_weights(
            self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, weights
        )
        for name, w in checked.items():
            copy_parameters(self.module, torch_parameters(self.cell, w, name))
