"""xLSTM's sLSTM (Beck et al. 2024; the `xlstm` package from PyPI, NX-AI) as a suite row: a new
architecture from a third-party package, with exponential gating, a normaliser state and a causal
convolution in front, and no LSTM-layout weights.

The glue is a linear map from the task's input to the layer's width, then `sLSTMLayer` on its
"vanilla" backend (plain PyTorch, float32: the CUDA kernels need a GPU and a compiler). The state is
the layer's own dict, handed back in as it came out: `conv_state` (batch, kernel - 1, hidden), the
convolution's last inputs, and `slstm_state` (4, batch, hidden), the cell's h, c, n and m. The suite
finds both tensors' batch axes at load; nothing else is declared.

What the suite says (xlstm 2.0.6, torch 2.13.0 CPU, seed 0, this 2-core machine, 2026-12-05):
- its smoke behaviour row passes every gated check (34 passed, 3 xfailed: count_steps.longer,
  count_last.lengths, moving_average_stateful.stateless_window1, the expectations of every row),
  with no rescue and no extension: 208 s of training (one core, beside other work), about 3 times
  torch-lstm's 71 s and the slowest module measured (its vanilla backend steps through time in
  Python), so it is one of the slower correct modules issue 27 says must not fail for their budget;
- its conformance is the self-judging kind, since it has no weights in the canonical layout:
  `streaming`, `batch_independence`, `causality`, `long_calls`, `random_states`, `saturation`,
  `self_gradients`, `state_precision`, `caller_data`, `determinism` and `bad_input` pass (11 passed);
  the weight checks skip with the parameters it has, export_parity (not an engine row) and
  device_parity (no GPU) skip.

    pip install xlstm        # beside the suite: xlstm 2.0.6 and mlstm_kernels 2.0.6 (5 MB), with
                             # einops, PyYAML, safetensors and ninja; torch left as it is
    pytest benchmarks --tier smoke --adapter torch:examples.xlstm_slstm:slstm -k "slstm-"   # in a checkout

xlstm is not in the suite's lock, so `make examples` does not run this row.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from xlstm.blocks.slstm.layer import sLSTMLayer, sLSTMLayerConfig


class SLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, conv: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        config = sLSTMLayerConfig(
            embedding_dim=hidden_size, hidden_size=hidden_size, num_heads=1, backend="vanilla", dtype="float32",
            enable_automatic_mixed_precision=False, conv1d_kernel_size=conv,
        )  # fmt: skip
        self.layer = sLSTMLayer(config)

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, Any]:
        state = state or {}
        y, new = self.layer(
            self.inp(x), conv_state=state.get("conv_state"), slstm_state=state.get("slstm_state"),
            return_last_state=True,
        )  # fmt: skip
        return y, {name: value for name, value in new.items() if value is not None}


def slstm(input_size: int, hidden_size: int) -> SLSTM:
    return SLSTM(input_size, hidden_size)
