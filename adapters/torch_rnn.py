"""PyTorch adapters: `torch.nn.LSTM`, `GRU` and `RNN` (tanh), batch-first, float32, CPU.

The model is [per-step Linear] -> RNN -> Linear head (softmax heads train on logits with
cross-entropy and return probabilities). Initialisation is PyTorch's own default: the suite
compares implementations as their users get them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from adapters.base import (
    Capabilities,
    FitLog,
    StopFn,
    check_input,
    check_stateful,
    epoch_batches,
    stream_chunks,
    train_loop,
)
from adapters.reference import (
    Weights,
    check_state,
    check_weights,
    from_stacked,
    match_shapes,
    pack_state,
    to_stacked,
)
from tasks.base import Budget, ModelSpec, Split

CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

#: Intra-op threads. The suite's models are small, where one thread is fastest and a second one
#: only fights other processes for the cores (measured: 20x slower under contention).
torch.set_num_threads(int(os.environ.get("RNN_BEHAVIOUR_THREADS", "1")))


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

    def forward(self, x: torch.Tensor, state: Any = None, last_only: bool | None = None) -> tuple[torch.Tensor, Any]:
        if self.proj is not None:
            x = self.proj(x)
        y, state = self.rnn(x, state)
        if not self.spec.return_sequences if last_only is None else last_only:
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


def _detach(state: Any) -> Any:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


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

        def step(xb: torch.Tensor, yb: torch.Tensor, state: Any) -> tuple[float, Any]:
            out, state = self.net(xb, state)
            if budget.loss == "crossentropy":
                out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return float(loss.detach()), state

        def run_epoch() -> float:
            self.net.train()
            losses = []
            for idx in epoch_batches(len(train), budget.batch_size, budget.shuffle, self.rng):
                index = torch.from_numpy(idx)
                losses.append(step(x[index], y[index], None)[0])
            return float(np.mean(losses))

        def run_stateful_epoch() -> float:
            self.net.train()
            losses, state = [], None
            for chunk in stream_chunks(x.shape[1], window):
                loss, state = step(x[:, chunk], y[:, chunk], state)
                state = _detach(state)
                losses.append(loss)
            return float(np.mean(losses))

        if self.spec.stateful:
            window = check_stateful(self.spec, train, budget)
            return train_loop(self, train, budget, stop, run_stateful_epoch)
        return train_loop(self, train, budget, stop, run_epoch)

    @torch.no_grad()
    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self._predict(x, state, None)

    @torch.no_grad()
    def predict_last(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """The many-to-one path: output at the last step only, whatever the spec says."""
        return self._predict(x, state, True)

    def _predict(self, x: np.ndarray, state: Any, last_only: bool | None) -> tuple[np.ndarray, Any]:
        self.net.eval()
        xt = torch.from_numpy(check_input(x, self.spec.input_size))
        out, new_state = self.net(xt, _to_torch_state(state), last_only)
        if self.spec.head == "softmax":
            out = torch.softmax(out, dim=-1)
        return out.numpy().copy(), _to_numpy_state(new_state)


# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)

#: PyTorch's gate blocks, named canonically: LSTM i,f,g,o; GRU r,z,n.
TORCH_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}


def _canonical(cell: str, params: Mapping[str, np.ndarray], gradient: bool = False) -> Weights:
    """weight_ih/weight_hh/bias_ih/bias_hh -> canonical. LSTM/RNN have one canonical bias, the sum
    of the two (its gradient is either one's)."""
    bias, recurrent_bias = params["bias_ih_l0"], params["bias_hh_l0"]
    if cell != "gru":
        summed = bias if gradient else bias + recurrent_bias
        return from_stacked(cell, TORCH_GATES[cell], params["weight_ih_l0"].T, params["weight_hh_l0"].T, summed)
    return from_stacked(
        cell, TORCH_GATES[cell], params["weight_ih_l0"].T, params["weight_hh_l0"].T, bias, recurrent_bias
    )


def _numpy_params(module: nn.Module, grad: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for name, p in module.named_parameters():
        value = p.grad if grad else p
        out[name] = np.zeros(tuple(p.shape), np.float32) if value is None else value.detach().numpy().copy()
    return out


def _load_rnn(module: nn.Module, cell: str, weights: Mapping[str, np.ndarray]) -> None:
    kernel, recurrent, bias, recurrent_bias = to_stacked(cell, TORCH_GATES[cell], weights)
    values = {
        "weight_ih_l0": kernel.T,
        "weight_hh_l0": recurrent.T,
        "bias_ih_l0": bias,
        "bias_hh_l0": np.zeros_like(bias) if recurrent_bias is None else recurrent_bias,
    }
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(values[name], np.float32)))


class TorchLayer:
    """A bare `nn.LSTM`/`GRU`/`RNN` (batch-first, float32, CPU) behind the conformance `Layer` API."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, seed: int) -> None:
        torch.manual_seed(seed)
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        self.module = CELLS[cell](input_size, hidden_size, batch_first=True)

    def _inputs(self, x: np.ndarray, state: Any) -> tuple[torch.Tensor, Any]:
        xt = torch.from_numpy(check_input(x, self.input_size).copy())
        if state is None:
            return xt, None
        arrays = check_state(self.cell, state, len(xt), self.hidden_size)
        tensors = tuple(torch.from_numpy(np.asarray(a, np.float32)[None].copy()) for a in arrays)
        return xt, (tensors if self.cell == "lstm" else tensors[0])

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        xt, st = self._inputs(x, state)
        with torch.no_grad():
            y, final = self.module(xt, st)
        arrays = [s[0].numpy().copy() for s in (final if isinstance(final, tuple) else (final,))]
        return y.numpy().copy(), pack_state(self.cell, arrays)

    def gradients(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Weights]:
        xt, st = self._inputs(x, state)
        xt.requires_grad_(True)
        self.module.zero_grad(set_to_none=True)
        y, _ = self.module(xt, st)
        y.sum().backward()
        assert xt.grad is not None
        return xt.grad.numpy().copy(), _canonical(self.cell, _numpy_params(self.module, grad=True), gradient=True)

    def export_weights(self) -> Weights:
        return _canonical(self.cell, _numpy_params(self.module))

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        _load_rnn(self.module, self.cell, check_weights(self.cell, self.input_size, self.hidden_size, weights))


def export_model_weights(model: TorchModel) -> Weights:
    """[proj] -> rnn -> head of a `TorchModel` in the canonical layout (kernels as (in, out))."""
    net, out = model.net, {}
    for name in ("proj", "head"):
        linear = getattr(net, name)
        if linear is not None:
            out[f"{name}.kernel"] = linear.weight.detach().numpy().T.copy()
            out[f"{name}.bias"] = linear.bias.detach().numpy().copy()
    cell = next(c for c, cls in CELLS.items() if isinstance(net.rnn, cls))
    out.update({f"rnn.{k}": v for k, v in _canonical(cell, _numpy_params(net.rnn)).items()})
    return out


def import_model_weights(model: TorchModel, weights: Mapping[str, np.ndarray]) -> None:
    shapes = {k: v.shape for k, v in export_model_weights(model).items()}
    weights = match_shapes(shapes, weights, "model weights")
    net = model.net
    cell = next(c for c, cls in CELLS.items() if isinstance(net.rnn, cls))
    _load_rnn(net.rnn, cell, {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")})
    with torch.no_grad():
        for name in ("proj", "head"):
            linear = getattr(net, name)
            if linear is not None:
                linear.weight.copy_(
                    torch.from_numpy(np.ascontiguousarray(np.asarray(weights[f"{name}.kernel"]).T, np.float32))
                )
                linear.bias.copy_(torch.from_numpy(np.asarray(weights[f"{name}.bias"], np.float32)))


class TorchAdapter:
    framework = "torch"
    capabilities = Capabilities(stateful_training=True, variable_length=False, weight_io=True, gpu=False)

    def __init__(self, cell: str) -> None:
        self.cell = cell
        self.name = f"torch-{cell}"

    def build(self, spec: ModelSpec, seed: int) -> TorchModel:
        return TorchModel(spec, CELLS[self.cell], seed)

    def versions(self) -> dict[str, str]:
        return {"torch": str(torch.__version__)}

    def compute_path(self) -> dict[str, str]:
        return {
            "device": "cpu",
            "threads": str(torch.get_num_threads()),
            "mkldnn": str(torch.backends.mkldnn.is_available()),
            "cudnn": "False",
        }

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> TorchLayer:
        """A bare layer of this cell for conformance, weights in the canonical layout."""
        return TorchLayer(self.cell, input_size, hidden_size, seed)

    def export_model(self, model: TorchModel) -> Weights:
        return export_model_weights(model)

    def import_model(self, model: TorchModel, weights: Mapping[str, np.ndarray]) -> None:
        import_model_weights(model, weights)
