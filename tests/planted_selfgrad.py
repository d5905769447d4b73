"""minGRUs (examples/mingru.py: parameters of their own, no canonical weights, so the reference
checks skip) with one planted defect each that the checks run before issue 24 could not see:
`streaming`, `batch_independence`, `causality`, `caller_data`, `bad_input` and `determinism` pass
them all; `self_gradients` or `state_precision` fails each, named (tests/test_conformance_selfgrad.py).
Not examples: keep them out of examples/.

    pytest benchmarks/test_conformance.py --adapter torch:tests.planted_selfgrad:cut_every_32 -k cut_every_32

The gate's bias is -3 (z ≈ 0.05): a memory of ~20 steps, long enough that the last output of 64
steps still depends on the first ones measurably (0.95^32 ≈ 0.2), as a trained model's does.
"""

from __future__ import annotations

from typing import Any

import torch

from examples.mingru import MinGRU
from tests.handwritten import check_input

#: Every this many steps the cut module detaches h: no gradient crosses step 32 backwards.
CUT_EVERY = 32


class SlowMinGRU(MinGRU):
    """The correct example with a slow gate; the defects override `step` or `carried`."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        with torch.no_grad():
            self.gate.bias.fill_(-3.0)

    def gate_of(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x))

    def step(self, t: int, h: torch.Tensor, z: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return (1 - z) * h + z * candidate

    def carried(self, h: torch.Tensor) -> Any:
        return h

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        batch, steps, _ = x.shape
        check_input(x, state, self.input_size, self.hidden_size)
        h = x.new_zeros(batch, self.hidden_size) if state is None else state.to(x.dtype)
        z, candidate = self.gate_of(x), self.candidate(x)
        outputs = []
        for t in range(steps):
            h = self.step(t, h, z[:, t], candidate[:, t])
            outputs.append(h)
        y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, self.hidden_size)
        return y, self.carried(h)


class CutEvery32(SlowMinGRU):
    """Forward exact; h is detached every 32 steps (truncated BPTT inside the module), so no
    gradient reaches steps 0..31 from an output at step 32 or later."""

    def step(self, t: int, h: torch.Tensor, z: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        if t and t % CUT_EVERY == 0:
            h = h.detach()
        return super().step(t, h, z, candidate)


class _FlippedSigmoid(torch.autograd.Function):
    """σ forward; the backward returns -σ'(v): a hand-written kernel's sign slip."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(v)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (s,) = ctx.saved_tensors
        return -grad * s * (1 - s)


class WrongGateBackward(SlowMinGRU):
    """Forward exact; the gate's custom backward is sign-flipped, so d/d gate.* and d/dx are wrong
    (d/d candidate.* and d/d initial state are right)."""

    def gate_of(self, x: torch.Tensor) -> torch.Tensor:
        return _FlippedSigmoid.apply(self.gate(x))


class HalfState(SlowMinGRU):
    """Computes in its own dtype but keeps h in float16 between steps and returns it so: chunked and
    whole agree exactly (the rounding is the same on both paths), yet every step rounds the state
    to 11 bits, and a long stream drifts from the float32 computation."""

    def step(self, t: int, h: torch.Tensor, z: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return super().step(t, h, z, candidate).half().to(z.dtype)

    def carried(self, h: torch.Tensor) -> Any:
        return h.half()


class Float32State(SlowMinGRU):
    """Correct in float32; its state comes back as float32 whatever it computes in (`h.float()`),
    so its float64 copy hands back a float32 state."""

    def carried(self, h: torch.Tensor) -> Any:
        return h.float()


def slow_mingru(input_size: int, hidden_size: int) -> SlowMinGRU:
    return SlowMinGRU(input_size, hidden_size)


def cut_every_32(input_size: int, hidden_size: int) -> CutEvery32:
    return CutEvery32(input_size, hidden_size)


def wrong_gate_backward(input_size: int, hidden_size: int) -> WrongGateBackward:
    return WrongGateBackward(input_size, hidden_size)


def half_state(input_size: int, hidden_size: int) -> HalfState:
    return HalfState(input_size, hidden_size)


def float32_state(input_size: int, hidden_size: int) -> Float32State:
    return Float32State(input_size, hidden_size)
