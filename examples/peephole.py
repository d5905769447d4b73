"""A peephole LSTM (seed 003 §3.1: "the improved version adds C_{t-1} to what drives F_t"; Gers &
Schmidhuber 2000 give every gate its peephole): the gates also look at the cell.

    i = σ(x_t W_i + h U_i + p_i ⊙ c + b_i)       f = σ(x_t W_f + h U_f + p_f ⊙ c + b_f)
    g = tanh(x_t W_g + h U_g + b_g)              c' = f ⊙ c + i ⊙ g
    o = σ(x_t W_o + h U_o + p_o ⊙ c' + b_o)      h' = o ⊙ tanh(c')

The peepholes p_i, p_f, p_o are diagonal (one weight per unit). Its parameters have their own
names, so the weight conformance checks skip (the reference has no peepholes); every behaviour
check and the model-level conformance (streaming, batch independence, causality, determinism, bad
input) run. The state is `(h, c)`, each (batch, hidden): not nn.LSTM's (1, batch, hidden), which
the suite does not mind.

    pytest benchmarks --adapter torch:examples.peephole:peephole -k "peephole-"
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PeepholeLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.input_kernel = nn.Parameter(torch.empty(input_size, 4 * hidden_size).uniform_(-bound, bound))
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        with torch.no_grad():
            self.bias[hidden_size : 2 * hidden_size] = 1.0  # forget gate open at the start
        self.peephole = nn.Parameter(torch.empty(3, hidden_size).uniform_(-bound, bound))

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, steps, features = x.shape
        if features != self.input_size:
            raise ValueError(f"input has {features} features per step; expected input_size {self.input_size}")
        if state is None:
            h = c = x.new_zeros(batch, self.hidden_size)
        else:
            h, c = state
            if tuple(h.shape) != (batch, self.hidden_size) or tuple(c.shape) != (batch, self.hidden_size):
                raise ValueError(
                    f"state must be (h, c), each of shape {(batch, self.hidden_size)}; got {tuple(h.shape)}, "
                    f"{tuple(c.shape)}"
                )
        p_i, p_f, p_o = self.peephole
        inputs = x @ self.input_kernel + self.bias
        outputs = []
        for t in range(steps):
            a_i, a_f, a_g, a_o = (inputs[:, t] + h @ self.recurrent_kernel).chunk(4, dim=1)
            i = torch.sigmoid(a_i + p_i * c)
            f = torch.sigmoid(a_f + p_f * c)
            c = f * c + i * torch.tanh(a_g)
            h = torch.sigmoid(a_o + p_o * c) * torch.tanh(c)
            outputs.append(h)
        y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, self.hidden_size)
        return y, (h, c)


def peephole(input_size: int, hidden_size: int) -> PeepholeLSTM:
    return PeepholeLSTM(input_size, hidden_size)
