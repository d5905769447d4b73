"""Planted defects for the `regimes` conformance check: hand-written PyTorch LSTMs (tests/handwritten.py)
that are exact wherever `forward_parity` looks (T <= 64, H <= 16, |c| near 1) and wrong only in the
regime a real kernel breaks in. Each overrides one method of the correct `HandLSTM`:

    pytest benchmarks/test_conformance.py -k regimes --adapter torch:tests.planted_regimes:time_tile
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tests.handwritten import HandLSTM

TILE = 256
HIDDEN_TILE = 32
CLIP = 8.0


class StaleTileLSTM(HandLSTM):
    """Runs time in tiles of 256 steps and hands the next tile the state from one step too early
    (the state buffer of the tile boundary is re-read stale): step 257 runs from the state after
    step 255, so the output goes wrong only past T = 256."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        parts = self.initial(x, state)
        before, outputs = parts, []
        for t in range(x.shape[1]):
            if t and t % TILE == 0:
                parts = before
            before = parts
            parts = self.step(x[:, t], parts, t)
            outputs.append(parts[0])
        return torch.stack(outputs, dim=1), self.final(parts)


class TailBiasLSTM(HandLSTM):
    """Tiles the hidden units by 32 and forgets both biases in the last, partial tile: the units
    beyond the largest multiple of 32 get no bias once there is a full tile before them (H > 32
    and not a multiple of 32). Exact for H <= 32 and for multiples of 32."""

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        out = super().gates(x_t, h, t)
        full = self.hidden_size // HIDDEN_TILE * HIDDEN_TILE
        if 0 < full < self.hidden_size:
            tail = torch.zeros(self.hidden_size, dtype=torch.bool)
            tail[full:] = True
            out = out - torch.where(tail.repeat(4), self.bias_ih_l0 + self.bias_hh_l0, torch.zeros_like(out[0]))
        return out


class ClippedCellLSTM(HandLSTM):
    """Clamps the cell state to ±8 (as a kernel minded for fp16 or fast math might): exact while
    |c| stays below 8, wrong for a counter whose |c| grows to tens."""

    def cell_update(self, i: torch.Tensor, f: torch.Tensor, g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return super().cell_update(i, f, g, c).clamp(-CLIP, CLIP)


def time_tile(input_size: int, hidden_size: int) -> nn.Module:
    return StaleTileLSTM(input_size, hidden_size)


def hidden_tail(input_size: int, hidden_size: int) -> nn.Module:
    return TailBiasLSTM(input_size, hidden_size)


def clipped_cell(input_size: int, hidden_size: int) -> nn.Module:
    return ClippedCellLSTM(input_size, hidden_size)
