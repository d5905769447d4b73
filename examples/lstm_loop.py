"""A plain LSTM written as a time-step loop, with `nn.LSTM`'s parameter names and conventions.

    i, f, g, o = split(x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh)     (gate blocks in PyTorch's order)
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)        h' = σ(o) ⊙ tanh(c')

Because the parameters are called `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, the
suite reads its weights like `nn.LSTM`'s and holds it to the float64 reference too. The state is
`(h, c)`, each (1, batch, hidden) as `nn.LSTM` returns it. Initialisation is `nn.LSTM`'s (uniform
±1/√hidden, in the same order), so with the same seed it starts from the very same weights.

    pytest benchmarks --adapter torch:examples.lstm_loop:lstm_loop -k "lstm_loop-"
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LSTMLoop(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, steps, features = x.shape
        if features != self.input_size:
            raise ValueError(f"input has {features} features per step; expected input_size {self.input_size}")
        expected = (1, batch, self.hidden_size)
        if state is None:
            h = c = x.new_zeros(batch, self.hidden_size)
        else:
            if len(state) != 2 or any(tuple(s.shape) != expected for s in state):
                raise ValueError(
                    f"state must be (h, c), each of shape {expected}; got {[tuple(s.shape) for s in state]}"
                )
            h, c = state[0][0], state[1][0]
        inputs = x @ self.weight_ih_l0.T + self.bias_ih_l0
        outputs = []
        for t in range(steps):
            i, f, g, o = (inputs[:, t] + h @ self.weight_hh_l0.T + self.bias_hh_l0).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, self.hidden_size)
        return y, (h[None], c[None])


def lstm_loop(input_size: int, hidden_size: int) -> LSTMLoop:
    return LSTMLoop(input_size, hidden_size)
