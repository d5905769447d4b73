"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate and candidate see only
the input, so training could run as a parallel scan; here it is the sequential form.

    z_t = σ(Linear_z(x_t))      h̃_t = Linear_h(x_t)      h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t

The state is h, (batch, hidden). With no h inside the gate or candidate the recurrence is linear
in h: a running sum is easy, anything that needs the state to steer the gates is not. Its
parameters are not a GRU's, so the weight conformance checks skip.

    pytest benchmarks --adapter torch:examples.mingru:mingru -k "mingru-"
"""

from __future__ import annotations

import torch
from torch import nn


class MinGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gate = nn.Linear(input_size, hidden_size)
        self.candidate = nn.Linear(input_size, hidden_size)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps, features = x.shape
        if features != self.input_size:
            raise ValueError(f"input has {features} features per step; expected input_size {self.input_size}")
        if state is None:
            h = x.new_zeros(batch, self.hidden_size)
        elif tuple(state.shape) != (batch, self.hidden_size):
            raise ValueError(f"state h must have shape {(batch, self.hidden_size)}; got {tuple(state.shape)}")
        else:
            h = state
        z, candidate = torch.sigmoid(self.gate(x)), self.candidate(x)
        outputs = []
        for t in range(steps):
            h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
            outputs.append(h)
        y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, self.hidden_size)
        return y, h


def mingru(input_size: int, hidden_size: int) -> MinGRU:
    return MinGRU(input_size, hidden_size)
