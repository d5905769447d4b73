"""Hand-written PyTorch LSTMs and GRUs (tests/handwritten.py) with one planted defect each, for the
backward checks (`gradients`, `chunked_gradients`) and the two biases of the canonical layout.
Each overrides one method; `tests/test_conformance_gradients.py` proves each fails the check it
must, with a message that names what is wrong; `FoldedLSTM` is a correct module with a canonical
export in the layout without bh. Not examples: keep them out of examples/.

    pytest benchmarks/test_conformance.py --adapter torch:tests.planted_gradients:time_reversed -k time_reversed
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from rnn_behaviour.adapters.reference import from_stacked, to_stacked
from tests.handwritten import HandGRU, HandLSTM


class _ReversedInTime(torch.autograd.Function):
    """Identity forward; the backward hands step t the upstream gradient of step T-1-t."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.flip(1)


class _ShuffledRows(torch.autograd.Function):
    """Identity forward; the backward hands row b the upstream gradient of row b+1 (rolled)."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.roll(-1, dims=0)


class TimeReversedBackward(HandLSTM):
    """Forward exact; the backward reads the upstream gradient of the outputs back to front in time."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, final = super().forward(x, state)
        return _ReversedInTime.apply(y), final


class BatchShuffledBackward(HandLSTM):
    """Forward exact; the backward gives each batch row another row's upstream gradient."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, final = super().forward(x, state)
        return _ShuffledRows.apply(y), final


class DropsBiasHH(HandLSTM):
    """Uses bias_ih only: bias_hh is a parameter that takes no part (forward and backward)."""

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        return x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T


class DoublesBiasHH(HandLSTM):
    """Adds bias_hh twice."""

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        return x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + 2 * self.bias_hh_l0


class DetachedInitialState(HandLSTM):
    """Forward exact; the state passed in is detached on entry, so no gradient reaches it."""

    def initial(self, x: torch.Tensor, state: Any) -> list[torch.Tensor]:
        return [p.detach() for p in super().initial(x, state)]


class CutCarriedGradient(HandLSTM):
    """Forward exact; the final state it hands out is detached, so a loss on it (or on the next
    chunk, which starts from it) sends no gradient back into this call."""

    def final(self, parts: list[torch.Tensor]) -> Any:
        return super().final([p.detach() for p in parts])


class GRUDropsBiasHH(HandGRU):
    """A GRU whose recurrent-side products leave bias_hh out (r multiplies h U_n alone)."""

    def step(self, x_t: torch.Tensor, parts: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        (h,) = parts
        xr, xz, xn = (x_t @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh_l0.T).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return [(1 - z) * n + z * h]


def time_reversed(input_size: int, hidden_size: int) -> nn.Module:
    return TimeReversedBackward(input_size, hidden_size)


def batch_shuffled(input_size: int, hidden_size: int) -> nn.Module:
    return BatchShuffledBackward(input_size, hidden_size)


def drops_bias_hh(input_size: int, hidden_size: int) -> nn.Module:
    return DropsBiasHH(input_size, hidden_size)


def doubles_bias_hh(input_size: int, hidden_size: int) -> nn.Module:
    return DoublesBiasHH(input_size, hidden_size)


def detached_initial_state(input_size: int, hidden_size: int) -> nn.Module:
    return DetachedInitialState(input_size, hidden_size)


def cut_carried_gradient(input_size: int, hidden_size: int) -> nn.Module:
    return CutCarriedGradient(input_size, hidden_size)


def gru_drops_bias_hh(input_size: int, hidden_size: int) -> nn.Module:
    return GRUDropsBiasHH(input_size, hidden_size)


class FoldedLSTM(nn.Module):
    """An LSTM with one bias under its own names, offering the canonical export in the layout
    without bh (b is its only bias): conformance folds bh into b before import, and must pass it."""

    ORDER = ("i", "f", "g", "o")

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.inner = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.inner.bias_hh_l0.requires_grad_(False)
        with torch.no_grad():
            self.inner.bias_hh_l0.zero_()

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.inner(x, state)

    def export_weights(self) -> dict[str, np.ndarray]:
        p = {k: v.detach().cpu().numpy().copy() for k, v in self.inner.named_parameters()}
        return from_stacked("lstm", self.ORDER, p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"])

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        kernel, recurrent, bias, _ = to_stacked("lstm", self.ORDER, weights)
        values = {"weight_ih_l0": kernel.T, "weight_hh_l0": recurrent.T, "bias_ih_l0": bias}
        with torch.no_grad():
            for name, value in values.items():
                getattr(self.inner, name).copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)))


def folded_lstm(input_size: int, hidden_size: int) -> nn.Module:
    return FoldedLSTM(input_size, hidden_size)
