"""PyTorch adapters: `torch.nn.LSTM`, `GRU` and `RNN` (tanh), batch-first, float32, CPU.

The model is [per-step Linear] -> RNN -> Linear head (softmax heads train on logits with
cross-entropy and return probabilities). Initialisation is PyTorch's own default: the suite
compares implementations as their users get them.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from adapters.base import Capabilities, FitLog, StopFn, check_input, train_loop
from tasks.base import Budget, ModelSpec, Split

CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class _Net(nn.Module):
    def __init__(self, spec: ModelSpec, cell: type[nn.Module]) -> None:
        super().__init__()
        self.spec = spec
        width = spec.input_size
        self.proj: nn.Module | None = None
        if spec.input_projection:
            self.proj = nn.Linear(width, spec.input_projection)
            width = spec.input_projection
        self.rnn = cell(width, spec.hidden_size, batch_first=True)
        self.head = nn.Linear(spec.hidden_size, spec.output_size)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if self.proj is not None:
            x = self.proj(x)
        y, state = self.rnn(x, state)
        if not self.spec.return_sequences:
            y = y[:, -1]
        out = self.head(y)
        if self.spec.head == "tanh":
            out = torch.tanh(out)
        return out, state


def _to_torch_state(state: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(torch.from_numpy(np.ascontiguousarray(s)) for s in state)
    return torch.from_numpy(np.ascontiguousarray(state))


def _to_numpy_state(state: Any) -> Any:
    if isinstance(state, tuple):
        return tuple(s.detach().numpy().copy() for s in state)
    return state.detach().numpy().copy()


class TorchModel:
    def __init__(self, spec: ModelSpec, cell: type[nn.Module], seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.spec = spec
        self.net = _Net(spec, cell)
        self.rng = np.random.default_rng(seed)
        self.n_params = sum(p.numel() for p in self.net.parameters())

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog:
        x = torch.from_numpy(np.asarray(train.x, np.float32))
        if budget.loss == "crossentropy":
            y = torch.from_numpy(np.asarray(train.y, np.int64))
            loss_fn: nn.Module = nn.CrossEntropyLoss()
        else:
            y = torch.from_numpy(np.asarray(train.y, np.float32))
            loss_fn = nn.MSELoss()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=budget.learning_rate)

        def run_epoch(batches: list[np.ndarray]) -> float:
            self.net.train()
            total = 0.0
            for idx in batches:
                index = torch.from_numpy(idx)
                out, _ = self.net(x[index])
                target = y[index]
                if budget.loss == "crossentropy":
                    out, target = out.reshape(-1, out.shape[-1]), target.reshape(-1)
                loss = loss_fn(out, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            return total / len(batches)

        return train_loop(self, train, budget, stop, run_epoch, self.rng)

    @torch.no_grad()
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        self.net.eval()
        xt = torch.from_numpy(check_input(x, self.spec.input_size))
        out, new_state = self.net(xt, _to_torch_state(state))
        if self.spec.head == "softmax":
            out = torch.softmax(out, dim=-1)
        return out.numpy().copy(), _to_numpy_state(new_state)


class TorchAdapter:
    framework = "torch"
    capabilities = Capabilities(stateful_training=False, variable_length=False, weight_io=False, gpu=False)

    def __init__(self, cell: str) -> None:
        self.cell = cell
        self.name = f"torch-{cell}"

    def build(self, spec: ModelSpec, seed: int) -> TorchModel:
        return TorchModel(spec, CELLS[self.cell], seed)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def compute_path(self) -> dict[str, str]:
        return {
            "device": "cpu",
            "threads": str(torch.get_num_threads()),
            "mkldnn": str(torch.backends.mkldnn.is_available()),
        }
