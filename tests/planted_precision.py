"""Planted defects for `low_precision`, `stacked` and `bidirectional` (tests/test_conformance_precision.py).

Each subclasses the correct hand-written modules of tests/handwritten.py and gets one thing wrong,
the way a kernel or port author would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tests.handwritten import HandLSTM

#: float32's overflow guard for exp (exp(88) < 3.4e38), hard-coded in a kernel written for float32.
FLOAT32_EXP_LIMIT = 88.0


class Float32GuardLSTM(HandLSTM):
    """tanh(c) as (e^2c - 1) / (e^2c + 1) with float32's overflow guard on the exponent: exact in
    float32 (and in bfloat16, which has float32's range), but in float16 e^2c overflows to inf once
    c > 5.5 (float16's largest value is 65504) and inf / inf is NaN. A kernel templated over the
    dtype with its float32 constant left in."""

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        h, c = parts
        i, f, g, o = self.gates(x_t, h, t).chunk(4, dim=1)
        c = self.cell_update(i, f, g, c)
        e = torch.exp(torch.clamp(2.0 * c, max=FLOAT32_EXP_LIMIT))
        return [torch.sigmoid(o) * ((e - 1.0) / (e + 1.0)), c]


def float32_guard_lstm(input_size: int, hidden_size: int) -> nn.Module:
    return Float32GuardLSTM(input_size, hidden_size)


__all__ = ["Float32GuardLSTM", "float32_guard_lstm", "Any"]
