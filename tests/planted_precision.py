"""Planted defects for `low_precision`, `stacked` and `bidirectional` (tests/test_conformance_precision.py).

Each subclasses a correct hand-written module (tests/handwritten.py, or `HandStackLSTM` below, its
multi-layer, bidirectional extension) and gets one thing wrong, the way a kernel or port author would:

    pytest benchmarks/test_conformance.py -k "low_precision or stacked or bidirectional" \\
        --adapter torch:tests.planted_precision:hand_stack_lstm
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from tests.handwritten import HandLSTM

#: float32's overflow guard for exp (exp(88) < 3.4e38), hard-coded in a kernel written for float32.
FLOAT32_EXP_LIMIT = 88.0


class Float32GuardLSTM(HandLSTM):
    """tanh(c) as (e^2c - 1) / (e^2c + 1) with float32's overflow guard on the exponent: right in
    float32 (and in bfloat16, which has float32's range), but in float16 e^2c overflows to inf once
    c > 5.5 (float16's largest value is 65504) and inf / inf is NaN. A kernel templated over the
    dtype with its float32 constant left in."""

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        h, c = parts
        i, f, g, o = self.gates(x_t, h, t).chunk(4, dim=1)
        c = self.cell_update(i, f, g, c)
        e = torch.exp(torch.clamp(2.0 * c, max=FLOAT32_EXP_LIMIT))
        return [torch.sigmoid(o) * ((e - 1.0) / (e + 1.0)), c]


class HandStackLSTM(HandLSTM):
    """A correct hand-written `nn.LSTM(num_layers=..., bidirectional=...)`: PyTorch's parameter
    names per layer and direction (`weight_ih_l1`, `bias_hh_l0_reverse`, ...), state (h, c) each
    (num_layers * num_directions, batch, hidden), outputs [forward | backward]. Overridable:
    `initial_row` (which row of the state a layer-direction starts from) and `align` (the
    backward direction's outputs, collected in its processing order, put back in time order)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size)
        self.num_layers, self.directions = num_layers, 2 if bidirectional else 1
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            width = input_size if layer == 0 else self.directions * hidden_size
            for direction in range(self.directions):
                name = self.suffix(layer, direction)
                if name == "l0":
                    continue
                shapes = {"weight_ih": (4 * hidden_size, width), "weight_hh": (4 * hidden_size, hidden_size),
                          "bias_ih": (4 * hidden_size,), "bias_hh": (4 * hidden_size,)}  # fmt: skip
                for role, shape in shapes.items():
                    self.register_parameter(f"{role}_{name}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        return f"l{layer}" + ("_reverse" if direction else "")

    def initial_row(self, state: Any, layer: int, direction: int) -> list[torch.Tensor]:
        row = layer * self.directions + direction
        return [s[row] for s in state]

    def align(self, outputs: list[torch.Tensor], reverse: bool) -> torch.Tensor:
        return torch.stack(outputs[::-1] if reverse else outputs, dim=1)

    def direction(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, name: str,
                  reverse: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        w_ih, w_hh = getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}")
        b = getattr(self, f"bias_ih_{name}") + getattr(self, f"bias_hh_{name}")
        outputs = []
        for t in reversed(range(x.shape[1])) if reverse else range(x.shape[1]):
            i, f, g, o = (x[:, t] @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=1)
            c = self.cell_update(i, f, g, c)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return self.align(outputs, reverse), h, c

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        rows = self.num_layers * self.directions
        if state is None:
            state = [x.new_zeros(rows, x.shape[0], self.hidden_size) for _ in range(2)]
        inputs, hs, cs = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                h, c = self.initial_row(state, layer, direction)
                y, h, c = self.direction(inputs, h, c, self.suffix(layer, direction), bool(direction))
                outputs.append(y)
                hs.append(h)
                cs.append(c)
            inputs = torch.cat(outputs, dim=-1)
        return inputs, (torch.stack(hs), torch.stack(cs))


class SharedInitialStateStack(HandStackLSTM):
    """Every layer starts from layer 0's rows of the initial state (`state[direction]` where
    `state[layer * directions + direction]` belongs): layer 1's own initial state is dropped."""

    def initial_row(self, state: Any, layer: int, direction: int) -> list[torch.Tensor]:
        return [s[direction] for s in state]


class UnreversedBackwardStack(HandStackLSTM):
    """The backward direction's outputs are left in its processing order: y_t of the backward
    half is the state after reading x_{T-1-t}, not after reading x_t."""

    def align(self, outputs: list[torch.Tensor], reverse: bool) -> torch.Tensor:
        return torch.stack(outputs, dim=1)


class HalfCrashesOnLongInput(HandLSTM):
    """Runs one float16 step, then raises past 8 steps in float16 (a kernel whose half-precision
    path has a bug in its tiling): a failure of the layer, not a dtype the device lacks."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if x.dtype == torch.float16 and x.shape[1] > 8:
            raise RuntimeError("half kernel: tile index out of range")
        return super().forward(x, state)


def half_crashes_on_long_input(input_size: int, hidden_size: int) -> nn.Module:
    return HalfCrashesOnLongInput(input_size, hidden_size)


def float32_guard_lstm(input_size: int, hidden_size: int) -> nn.Module:
    return Float32GuardLSTM(input_size, hidden_size)


def hand_stack_lstm(
    input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False
) -> nn.Module:
    return HandStackLSTM(input_size, hidden_size, num_layers, bidirectional)


def shared_initial_state_stack(input_size: int, hidden_size: int, *, num_layers: int = 1,
                               bidirectional: bool = False) -> nn.Module:  # fmt: skip
    return SharedInitialStateStack(input_size, hidden_size, num_layers, bidirectional)


def unreversed_backward_stack(input_size: int, hidden_size: int, *, num_layers: int = 1,
                              bidirectional: bool = False) -> nn.Module:  # fmt: skip
    return UnreversedBackwardStack(input_size, hidden_size, num_layers, bidirectional)
