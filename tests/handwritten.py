"""A correct hand-written PyTorch LSTM and GRU, as a kernel or port author would write them first:
a time-step loop with `nn.LSTM`'s parameter names and state layout, and no input validation of
their own (a wrong shape raises torch's own error). Conformance must pass both on every check.

The planted defects of the conformance tests (`tests/planted_*.py`) subclass these and override
one method, so each carries exactly one bug:

    pytest benchmarks/test_conformance.py --adapter torch:tests.handwritten:lstm --adapter torch:tests.handwritten:gru

Overridable pieces: `gates(x_t, h, t)` (the pre-activations of one step), `cell_update(...)` and
`step(...)`, `initial(x, state)` (state in) and `final(h, c)` (state out).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class HandRNN(nn.Module):
    """The parameters and the loop; `gates_per_unit` is 4 (LSTM) or 3 (GRU)."""

    gates_per_unit = 4
    n_states = 2

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        g = self.gates_per_unit
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(g * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(g * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(g * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(g * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def initial(self, x: torch.Tensor, state: Any) -> list[torch.Tensor]:
        """[h, c] (LSTM) or [h], each (batch, hidden), from nn.LSTM's (1, batch, hidden) layout."""
        if state is None:
            return [x.new_zeros(x.shape[0], self.hidden_size) for _ in range(self.n_states)]
        parts = list(state) if isinstance(state, tuple | list) else [state]
        return [p[0] for p in parts]

    def final(self, parts: list[torch.Tensor]) -> Any:
        out = tuple(p[None] for p in parts)
        return out if self.n_states == 2 else out[0]

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        parts = self.initial(x, state)
        outputs = []
        for t in range(x.shape[1]):
            parts = self.step(x[:, t], parts, t)
            outputs.append(parts[0])
        return torch.stack(outputs, dim=1), self.final(parts)


class HandLSTM(HandRNN):
    """i, f, g, o = split(x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh); c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c')."""

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        return x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0

    def cell_update(self, i: torch.Tensor, f: torch.Tensor, g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        h, c = parts
        i, f, g, o = self.gates(x_t, h, t).chunk(4, dim=1)
        c = self.cell_update(i, f, g, c)
        return [torch.sigmoid(o) * torch.tanh(c), c]


class HandGRU(HandRNN):
    """PyTorch's reset-after GRU: r, z from both sides; n = tanh(x W_n + b_n + r (h U_n + bh_n))."""

    gates_per_unit = 3
    n_states = 1

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        (h,) = parts
        xr, xz, xn = (x_t @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh_l0.T + self.bias_hh_l0).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return [(1 - z) * n + z * h]


def lstm(input_size: int, hidden_size: int) -> nn.Module:
    return HandLSTM(input_size, hidden_size)


def gru(input_size: int, hidden_size: int) -> nn.Module:
    return HandGRU(input_size, hidden_size)


def check_input(x: torch.Tensor, state: torch.Tensor | None, input_size: int, hidden_size: int) -> None:
    """What the minGRU-like planted modules (their own parameter names, an h state) refuse, in
    words: an input of the wrong width, a state of the wrong shape."""
    batch, _, features = x.shape
    if features != input_size:
        raise ValueError(f"input has {features} features per step; expected input_size {input_size}")
    if state is not None and tuple(state.shape) != (batch, hidden_size):
        raise ValueError(f"state h must have shape {(batch, hidden_size)}; got {tuple(state.shape)}")
