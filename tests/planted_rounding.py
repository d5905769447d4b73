"""A correct module whose chunked and whole paths differ only by float32 rounding, and its twin
with a small real state bug (tests/test_conformance_rounding.py).

`LogScanMinGRU` is minGRU as minGRU-pytorch computes it (Feng et al. 2024; Heinsen's log-space
scan): a sequence of several steps goes through a parallel scan in log space, a single step
through the sequential recurrence

    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ g(h̃_t),   z_t = σ(Linear_z(x_t)),   h̃_t = Linear_h(x_t)

with g(v) = v + 0.5 for v >= 0 and σ(v) otherwise (so h > 0 and its log exists). The two paths
are the same mathematics: in float64 chunked and whole agree to ~1e-15, in float32 they differ by
more than the suite's absolute "same computation" tolerance (1e-6). Linear recurrences, LRU- and
Mamba-style models compute this way.

    pytest benchmarks/test_conformance.py -k "streaming or batch_independence" \\
        --adapter torch:tests.planted_rounding:log_scan_mingru
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.handwritten import check_input

#: How far off the state bug's carried state is (relative): small, but no rounding.
STATE_BUG = 1e-4
#: The weights are PyTorch's default initialisation times this, as large as a trained model's:
#: gates near 0 or 1 make the scan's running sums large, and its float32 rounding with them.
WEIGHT_SCALE = 6.0


def _log_g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


def _g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, v + 0.5, v.sigmoid())


class LogScanMinGRU(nn.Module):
    """minGRU: the state is h, (batch, hidden), positive. Several steps: a log-space parallel
    scan (h_0 prepended as log h_0); one step: the recurrence itself."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.to_hidden_and_gate = nn.Linear(input_size, 2 * hidden_size)
        with torch.no_grad():
            for p in self.to_hidden_and_gate.parameters():
                p.mul_(WEIGHT_SCALE)

    def carried(self, state: torch.Tensor) -> torch.Tensor:
        """The state the next call starts from (the bug's twin overrides this)."""
        return state

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _batch, steps, _ = x.shape
        check_input(x, state, self.input_size, self.hidden_size)
        h0 = None if state is None else self.carried(state)
        hidden, gate = self.to_hidden_and_gate(x).chunk(2, dim=-1)
        if steps == 1:
            z, candidate = gate.sigmoid(), _g(hidden)
            y = candidate * z if h0 is None else torch.lerp(h0[:, None], candidate, z)
        else:
            log_coeffs = -F.softplus(gate)  # log(1 - z)
            log_values = -F.softplus(-gate) + _log_g(hidden)  # log(z h̃)
            if h0 is not None:
                log_values = torch.cat((h0[:, None].log(), log_values), dim=1)
                log_coeffs = F.pad(log_coeffs, (0, 0, 1, 0))
            a_star = log_coeffs.cumsum(dim=1)
            y = (a_star + (log_values - a_star).logcumsumexp(dim=1)).exp()[:, -steps:]
        return y, y[:, -1]


class StateBugMinGRU(LogScanMinGRU):
    """The same module, but the state passed in is used 1e-4 too large: a state bug far below
    any absolute tolerance a log-space scan could pass in float32, far above float64 rounding."""

    def carried(self, state: torch.Tensor) -> torch.Tensor:
        return state * (1.0 + STATE_BUG)


def log_scan_mingru(input_size: int, hidden_size: int) -> LogScanMinGRU:
    return LogScanMinGRU(input_size, hidden_size)


def state_bug_mingru(input_size: int, hidden_size: int) -> StateBugMinGRU:
    return StateBugMinGRU(input_size, hidden_size)
