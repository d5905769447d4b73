"""Conformance's view of a JAX factory's stacks: the module built with `num_layers` and/or
`bidirectional` (as `nn.LSTM` takes them; the built-ins' `FlaxStack`), NumPy in and out in
PyTorch's state layout ((layers × directions, batch, hidden) for h and c), its weights written into
its `cells` (Flax's cells, one per layer and direction in PyTorch's order) from the canonical layout
of adapters/reference_stack.py. A factory that takes neither keyword, or whose stack keeps no such
`cells`, cannot be stacked (a skip)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnn_behaviour.adapters.base import check_input
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.on_jax.layer import write_cell
from rnn_behaviour.adapters.on_jax.probe import FLAX_CELLS, Factory, ModuleInfo
from rnn_behaviour.adapters.reference import to_layout
from rnn_behaviour.adapters.reference_stack import NotStackable, check_stack_weights, stack_keywords, suffix, units


class JaxStack:
    """`factory(input_size, hidden_size, rngs=..., num_layers=..., bidirectional=...)` (only the
    keywords that differ from one forward layer are passed) behind reference_stack.StackLayer."""

    def __init__(self, factory: Factory, target: str, info: ModuleInfo, input_size: int, hidden_size: int,
                 seed: int, num_layers: int, bidirectional: bool) -> None:  # fmt: skip
        assert info.cell is not None
        keywords, call = stack_keywords(factory, target, input_size, hidden_size, num_layers, bidirectional)
        try:
            module = factory(input_size, hidden_size, rngs=nnx.Rngs(seed), **keywords)
        except TypeError as exc:
            raise NotStackable(f"calling {call} raised {first_line(exc)}") from None
        n = num_layers * (2 if bidirectional else 1)
        cells = list(getattr(module, "cells", []))
        if len(cells) != n or any(type(c) not in FLAX_CELLS for c in cells):
            raise NotStackable(
                f"{call} keeps no `cells` list of {n} Flax cells (one per layer and direction, PyTorch's order) "
                "through which its weights could be written"
            )
        self.cell, self.info, self.module, self.cells = info.cell, info, module, cells
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.carry_first = info.cell == "lstm"  # Flax's LSTM carry is (c, h)

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        xt = jnp.asarray(check_input(x, self.input_size))
        carries = None
        if state is not None:
            stacked = [np.asarray(a, np.float32) for a in (state if isinstance(state, tuple | list) else (state,))]
            carries = []
            for row in range(len(self.cells)):
                parts = [jnp.asarray(a[row]) for a in stacked]
                carries.append(tuple(parts[::-1]) if self.carry_first else parts[0])
        y, finals = self.module(xt, carries)
        parts = [list(jax.tree.leaves(f))[::-1] if self.carry_first else [f] for f in finals]
        out = [np.stack([np.asarray(p[k], np.float32) for p in parts]) for k in range(len(parts[0]))]
        return np.asarray(y, np.float32), (out[0], out[1]) if self.cell == "lstm" else out[0]

    def import_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        checked = check_stack_weights(
            self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, weights
        )
        for layer, direction, row in units(self.num_layers, self.bidirectional):
            folded = to_layout(self.cell, checked[suffix(layer, direction)], False, self.info.variant)
            write_cell(self.cell, self.cells[row], folded)
