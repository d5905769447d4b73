"""Planted defects for the self-consistency checks (`long_calls`, `random_states`, `saturation`):
minGRU-style modules with their own parameter names (no weight conformance: 13 checks skip), each
wrong only where the six checks that run for such a module today do not look: past a few hundred
steps in one call, when gates saturate, or from a large initial state. `OwnMinGRU` itself is
correct; each defect overrides one method:

    pytest benchmarks/test_conformance.py --adapter torch:tests.planted_selfconsistency:tile_drop -k tile_drop-
"""

from __future__ import annotations

import torch
from torch import nn

from tests.handwritten import check_input

TILE, TABLE, CLAMP, STATE_BOUND = 256, 300, 5.0, 4.0


class OwnMinGRU(nn.Module):
    """z_t = σ(x_t W_zᵀ + b_z), h̃_t = x_t W_hᵀ + b_h, h_t = (1 − z_t) h_{t−1} + z_t h̃_t; the state
    is h (batch, hidden). A call of several steps is the "whole-sequence path", one step the "step
    path": the defects below make them differ."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = input_size**-0.5
        self.w_gate = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.w_cand = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.b_gate = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        self.b_cand = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def incoming(self, state: torch.Tensor) -> torch.Tensor:
        """The state the call starts from, given the caller's."""
        return state

    def gate(self, pre: torch.Tensor, whole: bool) -> torch.Tensor:
        return torch.sigmoid(pre)

    def update(self, h: torch.Tensor, z: torch.Tensor, cand: torch.Tensor, t: int) -> torch.Tensor:
        return (1 - z) * h + z * cand

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps, _ = x.shape
        check_input(x, state, self.input_size, self.hidden_size)
        if steps == 0:
            raise ValueError("empty sequence")
        h = x.new_zeros(batch, self.hidden_size) if state is None else self.incoming(state)
        z = self.gate(x @ self.w_gate.T + self.b_gate, whole=steps > 1)
        cand = x @ self.w_cand.T + self.b_cand
        outputs = []
        for t in range(steps):
            h = self.update(h, z[:, t], cand[:, t], t)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class TileDrop(OwnMinGRU):
    """A kernel that runs time in tiles of 256 steps and drops the carry between tiles: step 257
    of one call starts from zero. Exact for calls of up to 256 steps."""

    def update(self, h: torch.Tensor, z: torch.Tensor, cand: torch.Tensor, t: int) -> torch.Tensor:
        return super().update(torch.zeros_like(h) if t and t % TILE == 0 else h, z, cand, t)


class LatePosition(OwnMinGRU):
    """Candidate biases cached per position for 300 positions, zero past the cache: from step 301
    of one call the candidate has no bias."""

    def update(self, h: torch.Tensor, z: torch.Tensor, cand: torch.Tensor, t: int) -> torch.Tensor:
        return super().update(h, z, cand - self.b_cand if t >= TABLE else cand, t)


class ClampedGate(OwnMinGRU):
    """The whole-sequence path clamps the gate's pre-activation to [-5, 5] (a fast-math sigmoid);
    the step path does not. Exact while |pre-activation| < 5; z stays within 0.0067 of 0 and 1."""

    def gate(self, pre: torch.Tensor, whole: bool) -> torch.Tensor:
        return torch.sigmoid(pre.clamp(-CLAMP, CLAMP) if whole else pre)


class StateClip(OwnMinGRU):
    """Clamps the caller's state to ±4 ("h is bounded"), though minGRU's h is not: invisible from
    zero and from the small states short calls reach, wrong from a large state."""

    def incoming(self, state: torch.Tensor) -> torch.Tensor:
        return state.clamp(-STATE_BOUND, STATE_BOUND)


class BatchClip(OwnMinGRU):
    """Rescales the caller's state so that its largest |value| is at most 4, the largest taken over
    the whole batch instead of per row: rows mix, but only once some row's state is large."""

    def incoming(self, state: torch.Tensor) -> torch.Tensor:
        top = state.detach().abs().nan_to_num(0.0).amax()
        return state * torch.clamp(STATE_BOUND / top.clamp(min=1e-30), max=1.0)


class NaiveSigmoid(OwnMinGRU):
    """σ(a) as exp(a) / (1 + exp(a)) in both paths: exp overflows float32 past a = 88.7, so a
    saturated gate is inf / inf = NaN where the float64 twin (and the exact sigmoid) gives 1."""

    def gate(self, pre: torch.Tensor, whole: bool) -> torch.Tensor:
        return pre.exp() / (1 + pre.exp())


def own_mingru(input_size: int, hidden_size: int) -> nn.Module:
    return OwnMinGRU(input_size, hidden_size)


def tile_drop(input_size: int, hidden_size: int) -> nn.Module:
    return TileDrop(input_size, hidden_size)


def late_position(input_size: int, hidden_size: int) -> nn.Module:
    return LatePosition(input_size, hidden_size)


def clamped_gate(input_size: int, hidden_size: int) -> nn.Module:
    return ClampedGate(input_size, hidden_size)


def state_clip(input_size: int, hidden_size: int) -> nn.Module:
    return StateClip(input_size, hidden_size)


def batch_clip(input_size: int, hidden_size: int) -> nn.Module:
    return BatchClip(input_size, hidden_size)


def naive_sigmoid(input_size: int, hidden_size: int) -> nn.Module:
    return NaiveSigmoid(input_size, hidden_size)
