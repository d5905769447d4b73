"""Broken on purpose: an `nn.GRU` whose forward ignores the state it is given and starts every call
from zeros (what a wrapper that forgets to pass `hx` on does). Within one call it is a fine GRU,
so it fits count_steps as well as `torch-gru`; fed a sequence in chunks it loses the count at
every cut, and with `nn.GRU`'s parameter names the weight conformance runs and catches it too
(forward parity from a random initial state).

    pytest benchmarks --adapter torch:examples.forgets_state:forgets_state -k "forgets_state-count_steps"

fails `count_steps.carry_state` with "... the state handed back in is ignored".
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ForgetsState(nn.GRU):
    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(x)  # the bug: `state` is never passed on


def forgets_state(input_size: int, hidden_size: int) -> ForgetsState:
    return ForgetsState(input_size, hidden_size, batch_first=True)
