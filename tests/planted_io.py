"""Planted defects for the checks of the caller's data, padded batches and bad input
(`variable_length`, `caller_data`, `bad_input`): each subclasses the correct hand-written LSTM of
tests/handwritten.py and overrides one method, so it carries exactly one bug. `tests/test_conformance_io.py`
proves each is caught with a message that says what is wrong, and that the correct ones pass.

    pytest benchmarks/test_conformance.py --adapter torch:tests.planted_io:packed_lstm
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from tests.handwritten import HandLSTM

# --- variable_length: a correct LSTM that takes a PackedSequence, and three kernel bugs -------


class PackedLSTM(HandLSTM):
    """Correct: a PackedSequence is unpacked, each row's state is frozen once past its length and
    the output is packed again; the final state comes back in the caller's batch order."""

    def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
        if not isinstance(x, PackedSequence):
            return super().forward(x, state)
        padded, lengths = pad_packed_sequence(x, batch_first=True)
        parts = self.initial(padded, state)
        outputs = []
        for t in range(padded.shape[1]):
            stepped = self.step(padded[:, t], parts, t)
            running = self.running(t, lengths).to(padded.device)[:, None]
            parts = [torch.where(running, new, old) for new, old in zip(stepped, parts, strict=True)]
            outputs.append(stepped[0])
        y = pack_padded_sequence(torch.stack(outputs, dim=1), lengths, batch_first=True, enforce_sorted=False)
        return y, self.packed_final(parts, x)

    def running(self, t: int, lengths: torch.Tensor) -> torch.Tensor:
        """Which rows are still within their length at step t."""
        return t < lengths

    def packed_final(self, parts: list[torch.Tensor], x: PackedSequence) -> Any:
        return self.final(parts)


class PaddingRunLSTM(PackedLSTM):
    """The classic kernel bug: every row runs through the padding, so the final state is h_T
    (the state after the padded steps), not the state at each row's last valid step."""

    def running(self, t: int, lengths: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(lengths, dtype=torch.bool)


class OffByOneLSTM(PackedLSTM):
    """Reads one step of padding as data: the length mask is `t <= n`, not `t < n`."""

    def running(self, t: int, lengths: torch.Tensor) -> torch.Tensor:
        return t <= lengths


class SortedStateLSTM(PackedLSTM):
    """Hands the final state back in the packed (length-sorted) order, not the caller's."""

    def packed_final(self, parts: list[torch.Tensor], x: PackedSequence) -> Any:
        assert x.sorted_indices is not None
        return self.final([p[x.sorted_indices] for p in parts])


# --- caller_data: the caller's tensors ---------------------------------------------------------


class ScalesInputInPlace(HandLSTM):
    """Scales its input in place (x.mul_) before the loop: the caller's x is changed."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return super().forward(x.mul_(0.5), state)


class WritesStateBack(HandLSTM):
    """Writes the final state into the state tensors it was given (a kernel's in/out buffer), so
    the caller's state changes and reusing it gives another result."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, final = super().forward(x, state)
        if state is not None:
            with torch.no_grad():
                for given, new in zip(state, final, strict=True):
                    given.add_(new - given)
        return y, final


class ReadsStorageAsContiguous(HandLSTM):
    """Reads x's storage as if x were contiguous (as_strided with contiguous strides), as a kernel
    handed a raw pointer does: right for a contiguous x, garbage for a strided or transposed one."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        b, t, i = x.shape
        return super().forward(x.as_strided((b, t, i), (t * i, i, 1), x.storage_offset()), state)


class FlattensWithView(HandLSTM):
    """Flattens x with .view, which raises for a non-contiguous x: a clear refusal, not a defect
    (caller_data passes it with a note), the control for `ReadsStorageAsContiguous`."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        b, t, i = x.shape
        return super().forward(x.view(b * t, i).view(b, t, i), state)


# --- bad_input: a bad input silently accepted, NaN swallowed or spread ---------------------------


class BroadcastsState(HandLSTM):
    """Silently accepts a state of another batch size: row 0 of it is broadcast to every row."""

    def initial(self, x: torch.Tensor, state: Any) -> list[torch.Tensor]:
        parts = super().initial(x, state)
        return [p if p.shape[0] == x.shape[0] else p[:1].expand(x.shape[0], -1) for p in parts]


class SwallowsNaN(HandLSTM):
    """Replaces NaN in the input by 0 (nan_to_num): a NaN goes unseen."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return super().forward(torch.nan_to_num(x), state)


class SpreadsNaN(HandLSTM):
    """Scales the input by a batch-wide norm (an overflow guard; exactly 1 for ordinary inputs), so
    a NaN in one row spreads to every row."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return super().forward(x / torch.clamp(x.norm() / 1e6, min=1.0), state)


def _factory(cls: type[HandLSTM]) -> Any:
    def make(input_size: int, hidden_size: int) -> HandLSTM:
        return cls(input_size, hidden_size)

    make.__qualname__ = make.__name__ = cls.__name__
    return make


packed_lstm = _factory(PackedLSTM)
padding_run = _factory(PaddingRunLSTM)
off_by_one = _factory(OffByOneLSTM)
sorted_state = _factory(SortedStateLSTM)
scales_input = _factory(ScalesInputInPlace)
writes_state = _factory(WritesStateBack)
reads_storage = _factory(ReadsStorageAsContiguous)
flattens_with_view = _factory(FlattensWithView)
broadcasts_state = _factory(BroadcastsState)
swallows_nan = _factory(SwallowsNaN)
spreads_nan = _factory(SpreadsNaN)
