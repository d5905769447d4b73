"""Factories for the bring-your-own-RNN tests: each broken in one way `--adapter` must name at load
time, plus one module that offers only the canonical export (no standard parameter names).
Importing this module imports torch; the tests that use it skip without torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rnn_behaviour.adapters.reference import from_stacked, to_stacked

NOT_CALLABLE = 42


def no_arguments() -> nn.Module:
    """Wrong signature: takes neither input_size nor hidden_size."""
    return nn.LSTM(1, 1, batch_first=True)


def not_a_module(input_size: int, hidden_size: int) -> Any:
    return "an LSTM, honestly"


def time_first(input_size: int, hidden_size: int) -> nn.Module:
    """nn.LSTM without batch_first: forward reads (time, batch, features)."""
    return nn.LSTM(input_size, hidden_size)


def time_first_two_layers(input_size: int, hidden_size: int) -> nn.Module:
    """Two layers of nn.LSTM without batch_first (as sru.SRU's default): a state of (2, batch, hidden)."""
    return nn.LSTM(input_size, hidden_size, num_layers=2)


def doubles_hidden(input_size: int, hidden_size: int) -> nn.Module:
    """Returns 2 * hidden_size features per step."""
    return nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=True)


class _OnlyY(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return self.rnn(x, state)[0]


def only_y(input_size: int, hidden_size: int) -> nn.Module:
    """forward returns y alone, no state."""
    return _OnlyY(input_size, hidden_size)


class _RejectsState(nn.GRU):
    def forward(self, x: torch.Tensor, state: Any = None) -> Any:  # type: ignore[override]
        if state is not None:
            raise RuntimeError("this module cannot take a state")
        return super().forward(x)


def rejects_state(input_size: int, hidden_size: int) -> nn.Module:
    return _RejectsState(input_size, hidden_size, batch_first=True)


class CanonicalGRU(nn.Module):
    """A GRU under its own parameter names that offers the canonical export instead (the layout
    of adapters/reference.py): weight conformance must run on it and pass."""

    ORDER = ("r", "z", "n")

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.inner = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.inner(x, state)

    def export_weights(self) -> dict[str, np.ndarray]:
        p = {k: v.detach().cpu().numpy().copy() for k, v in self.inner.named_parameters()}
        return from_stacked(
            "gru", self.ORDER, p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"], p["bias_hh_l0"]
        )

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        kernel, recurrent, bias, recurrent_bias = to_stacked("gru", self.ORDER, weights)
        values = {
            "weight_ih_l0": kernel.T,
            "weight_hh_l0": recurrent.T,
            "bias_ih_l0": bias,
            "bias_hh_l0": recurrent_bias,
        }
        with torch.no_grad():
            for name, p in self.inner.named_parameters():
                p.copy_(torch.from_numpy(np.ascontiguousarray(values[name], np.float32)))


def canonical_gru(input_size: int, hidden_size: int) -> nn.Module:
    return CanonicalGRU(input_size, hidden_size)


def lstm_with_extra(input_size: int, hidden_size: int) -> nn.Module:
    """nn.LSTM's names plus one more parameter: not a plain cell, weight checks must skip."""
    module = nn.LSTM(input_size, hidden_size, batch_first=True)
    module.register_parameter("scale", nn.Parameter(torch.ones(hidden_size)))
    return module


class _DictState(nn.Module):
    """An LSTM whose state is a dict nest, {"h": h, "rest": [c]}: predict must hand it out and back as is."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, (h, c) = self.rnn(x, None if state is None else (state["h"], state["rest"][0]))
        return y, {"h": h, "rest": [c]}


def dict_state(input_size: int, hidden_size: int) -> nn.Module:
    return _DictState(input_size, hidden_size)


class _DeclaresNoCarry(nn.GRU):
    """A GRU whose package says it carries no state between calls and takes no padded batch: the
    stateful tasks and the variable-length check are skipped with its reason."""

    rnn_behaviour_capabilities: ClassVar[dict[str, bool | str]] = {
        "stateful_training": "its API carries no state between calls",
        "variable_length": False,
    }


def declares_no_carry(input_size: int, hidden_size: int) -> nn.Module:
    return _DeclaresNoCarry(input_size, hidden_size, batch_first=True)


class _ClaimsPacked(nn.GRU):
    """Declares variable_length, but scales its input first, which a PackedSequence does not take."""

    rnn_behaviour_capabilities: ClassVar[dict[str, bool | str]] = {"variable_length": True}

    def forward(self, x: torch.Tensor, state: Any = None) -> Any:  # type: ignore[override]
        return super().forward(x * 1.0, state)


def claims_packed(input_size: int, hidden_size: int) -> nn.Module:
    """A usage error at load: the probe finds no PackedSequence support, which it declares."""
    return _ClaimsPacked(input_size, hidden_size, batch_first=True)


def unknown_capability(input_size: int, hidden_size: int) -> nn.Module:
    module = nn.GRU(input_size, hidden_size, batch_first=True)
    module.rnn_behaviour_capabilities = {"stateless": True}  # type: ignore[assignment]
    return module


# --- the protocol's three shapes of a module that is not nn.LSTM, each passing what applies ------


class BatchFirst(nn.Module):
    """The glue a time-first module needs (the README's example): x and y transposed around it;
    its state ((layers, batch, hidden) for a stack) passes through as it is."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, state = self.inner(x.transpose(0, 1), state)
        return y.transpose(0, 1), state


def time_first_glued(input_size: int, hidden_size: int) -> nn.Module:
    """A time-first GRU of two layers (SRU's and nn.GRU's default layout) behind `BatchFirst`."""
    return BatchFirst(nn.GRU(input_size, hidden_size, num_layers=2))


class _Stateless(nn.Module):
    """A whole-sequence module whose API carries no state: forward(x) -> y. It says so, and every
    check that hands a state back (carry-over, streaming, the stateful tasks) is skipped with its
    reason instead of failing on a state it was never asked for."""

    rnn_behaviour_capabilities: ClassVar[dict[str, bool | str]] = {
        "state": "its API runs whole sequences and hands no state out"
    }

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


def stateless(input_size: int, hidden_size: int) -> nn.Module:
    return _Stateless(input_size, hidden_size)


#: The lengths `length_aware` was built with, in order (the test reads and clears it).
LENGTHS_SEEN: list[int | None] = []


def length_aware(input_size: int, hidden_size: int, sequence_length: int | None = None) -> nn.Module:
    """Names `sequence_length` (an LMU's window would be set from it): the matrix offers the
    task's training length; the load-time probe and conformance call it without one."""
    LENGTHS_SEEN.append(sequence_length)
    return nn.GRU(input_size, hidden_size, batch_first=True)
