"""PyTorch adapters: any module `factory(input_size, hidden_size) -> nn.Module` with `nn.LSTM`'s
batch-first convention `forward(x, state=None) -> (y, state)`, float32, CPU.

The built-ins `torch-lstm`, `torch-gru`, `torch-rnn` are the factories `lstm`, `gru`, `rnn` below
(`torch.nn.LSTM`/`GRU`/`RNN`, batch-first); `--adapter torch:pkg.module:factory` puts a user's
module through the same model, training loop and state handling. The model is [per-step Linear]
-> module -> Linear head (softmax heads train on logits with cross-entropy and return
probabilities). The module's state is whatever it returns (any nest of tensors): predict hands
it out as the same nest of NumPy arrays and back. Initialisation is the module's own: the suite
compares implementations as their users get them.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from rnn_behaviour.adapters.base import (
    AdapterError,
    Capabilities,
    FitLog,
    NoState,
    StopFn,
    check_input,
    check_stateful,
    device_request,
    epoch_batches,
    refuse_state,
    stream_chunks,
    threads,
    train_loop,
)
from rnn_behaviour.adapters.custom import (
    apply_declaration,
    declared_stateless,
    import_target,
    with_length,
)
from rnn_behaviour.adapters.on_torch.layer import TorchLayer, export_weights, import_weights
from rnn_behaviour.adapters.on_torch.native import TorchNative
from rnn_behaviour.adapters.on_torch.probe import Factory, probe_module, stateless_factory
from rnn_behaviour.adapters.on_torch.stack import TorchStack
from rnn_behaviour.adapters.reference import (
    Weights,
    match_shapes,
    model_to_layout,
)
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split


def select_device() -> torch.device:
    """Where models train and predict for this run's `--device`; on a GPU, TF32 is off so that
    results stay comparable with the float64 reference and the CPU. Conformance layers run there
    too."""
    request = device_request()
    if request == "cpu" or (request == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AdapterError("--device cuda, but torch sees no CUDA device (torch.cuda.is_available() is False)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda")


#: Intra-op threads. The suite's models are small, where one thread is fastest and a second one
#: only fights other processes for the cores (measured: 20x slower under contention).
torch.set_num_threads(threads())


def lstm(input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False) -> nn.Module:
    """The `torch-lstm` built-in: `nn.LSTM`, batch-first (the keywords are conformance's stacks)."""
    return nn.LSTM(input_size, hidden_size, batch_first=True, num_layers=num_layers, bidirectional=bidirectional)


def gru(input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False) -> nn.Module:
    """The `torch-gru` built-in: `nn.GRU` (reset-after), batch-first."""
    return nn.GRU(input_size, hidden_size, batch_first=True, num_layers=num_layers, bidirectional=bidirectional)


def rnn(input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False) -> nn.Module:
    """The `torch-rnn` built-in: `nn.RNN` (tanh), batch-first."""
    return nn.RNN(input_size, hidden_size, batch_first=True, num_layers=num_layers, bidirectional=bidirectional)


class _Net(nn.Module):
    def __init__(self, spec: ModelSpec, factory: Factory) -> None:
        super().__init__()
        self.spec = spec
        width = spec.input_size
        self.proj: nn.Module | None = None
        if spec.input_projection:
            self.proj = nn.Linear(width, spec.input_projection)
            width = spec.input_projection
        self.rnn = factory(width, spec.hidden_size)
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


def _to_torch_state(state: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """The module's state from predict's NumPy nest (same structure, arrays -> tensors); with
    `dtype`, its floating arrays in that dtype."""
    if state is None:
        return None

    def tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
        return t.to(dtype) if dtype is not None and t.is_floating_point() else t

    return pytree.tree_map(lambda a: tensor(a) if isinstance(a, np.ndarray) else a, state)


def _to_numpy_state(state: Any) -> Any:
    return pytree.tree_map(lambda s: s.detach().cpu().numpy().copy() if isinstance(s, torch.Tensor) else s, state)


def _mean(losses: list[torch.Tensor]) -> float:
    """An epoch's mean loss: its steps' float32 losses read out at once and averaged in float64,
    the same figure as averaging each step's `float(loss)`."""
    return float(np.mean(torch.stack(losses).cpu().numpy().astype(np.float64)))


def _detach(state: Any) -> Any:
    return pytree.tree_map(lambda s: s.detach() if isinstance(s, torch.Tensor) else s, state)


class TorchModel:
    def __init__(
        self,
        spec: ModelSpec,
        factory: Factory,
        seed: int,
        device: torch.device | None = None,
        no_state: str | None = None,
    ) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.spec = spec
        self.device = device or torch.device("cpu")
        self.net = _Net(spec, factory).to(self.device)
        self.rng = np.random.default_rng(seed)
        self.n_params = sum(p.numel() for p in self.net.parameters())
        #: The dtype predict computes in (float64 in `float64_twin`'s copy only).
        self.dtype: torch.dtype | None = None
        #: Why the module has no state (it declares so), or None: predict then refuses one.
        self.no_state = no_state

    def float64_twin(self) -> TorchModel:
        """The same model (the same weights, as float64) computing in float64, for the "same
        computation" checks: where two paths of a float32 model differ, the twin's two paths say
        whether the mathematics differs or only the rounding (benchmarks/README.md, "Rounding")."""
        twin = copy.copy(self)
        twin.net, twin.dtype = copy.deepcopy(self.net).double(), torch.float64
        return twin

    def _stepper(
        self, budget: Budget
    ) -> tuple[Callable[[torch.Tensor, torch.Tensor, Any], tuple[torch.Tensor, Any]], Any]:
        """One optimizer step (Adam at the budget's rate, the gradients clipped to the budget's
        global norm if it sets one) on a batch from a state, and the dtype of the targets the
        budget's loss takes. The step returns its loss as a detached tensor: reading it out is
        left to the epoch's end, so that on a GPU the steps are not each a synchronisation."""
        loss_fn: nn.Module = nn.CrossEntropyLoss() if budget.loss == "crossentropy" else nn.MSELoss()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=budget.learning_rate)

        def step(xb: torch.Tensor, yb: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            out, state = self.net(xb, state)
            if budget.loss == "crossentropy":
                out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.clip_norm is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), budget.clip_norm)
            optimizer.step()
            return loss.detach(), state

        return step, (np.int64 if budget.loss == "crossentropy" else np.float32)

    def make_train_step(self, budget: Budget) -> Callable[[np.ndarray, np.ndarray], float]:
        """One training step on one batch from the zero state (the speed benchmark's train step)."""
        step, y_dtype = self._stepper(budget)

        def train_step(x: np.ndarray, y: np.ndarray) -> float:
            self.net.train()
            xb = torch.from_numpy(np.asarray(x, np.float32)).to(self.device)
            return float(step(xb, torch.from_numpy(np.asarray(y, y_dtype)).to(self.device), None)[0])

        return train_step

    def fit(self, train: Split, valid: Split, budget: Budget, stop: StopFn) -> FitLog:
        step, y_dtype = self._stepper(budget)
        x = torch.from_numpy(np.asarray(train.x, np.float32)).to(self.device)
        y = torch.from_numpy(np.asarray(train.y, y_dtype)).to(self.device)

        def run_epoch() -> float:
            self.net.train()
            losses = []
            for idx in epoch_batches(len(train), budget.batch_size, budget.shuffle, self.rng):
                index = torch.from_numpy(idx).to(self.device)
                losses.append(step(x[index], y[index], None)[0])
            return _mean(losses)

        def run_stateful_epoch() -> float:
            self.net.train()
            losses, state = [], None
            for chunk in stream_chunks(x.shape[1], window):
                loss, state = step(x[:, chunk], y[:, chunk], state)
                state = _detach(state)
                losses.append(loss)
            return _mean(losses)

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
        refuse_state(state, self.no_state)
        self.net.eval()
        xt = torch.from_numpy(check_input(x, self.spec.input_size)).to(self.device, self.dtype)
        out, new_state = self.net(xt, _to_torch_state(state, self.device, self.dtype), last_only)
        if self.spec.head == "softmax":
            out = torch.softmax(out, dim=-1)
        y = out.cpu().numpy().copy()
        return y, (NoState(self.no_state) if self.no_state is not None else _to_numpy_state(new_state))


class TorchAdapter:
    """Wraps a module factory: the built-ins pass `rnn_behaviour.adapters.on_torch.model:lstm` (etc.), `--adapter
    torch:pkg.module:factory` a user's. The factory is probed at load (`probe_module`)."""

    framework = "torch"

    def __init__(self, factory: str | Factory, name: str | None = None) -> None:
        if isinstance(factory, str):
            self.target = factory
            self.factory: Factory = import_target(factory, f"torch factory {factory}")
        else:
            self.target, self.factory = getattr(factory, "__qualname__", repr(factory)), factory
        if not callable(self.factory):
            raise AdapterError(f"{self.target} is a {type(self.factory).__name__}, not a callable factory")
        self.name = name or self.target
        self.info = probe_module(self.factory, self.target)
        #: Why the module has no state, when it declares so; its modules are then wrapped.
        self.no_state = declared_stateless(self.info.declared)
        self.user_factory = self.factory
        if self.no_state is not None:
            self.factory = stateless_factory(self.factory, self.no_state)
        self.cell, self.variant = self.info.cell, self.info.variant
        weight_io = self.info.access is not None
        self.device = select_device()
        packed = not self.info.packed_why_not
        self.capabilities = Capabilities(
            stateful_training=True, variable_length=packed, weight_io=weight_io, gpu=True, native_module=True,
            state=self.no_state is None,
        )  # fmt: skip
        #: Why a capability is missing, for the skip reason of the checks that need it.
        self.capability_notes = {} if weight_io else {"weight_io": self.info.why_not}
        if not packed:
            self.capability_notes["variable_length"] = self.info.packed_why_not
        self.capabilities = apply_declaration(self.target, self.capabilities, self.capability_notes, self.info.declared)

    def build(self, spec: ModelSpec, seed: int) -> TorchModel:
        factory = with_length(self.user_factory, spec.sequence_length)  # the task's length, if it asks
        if self.no_state is not None:
            factory = stateless_factory(factory, self.no_state)
        return TorchModel(spec, factory, seed, self.device, self.no_state)

    def versions(self) -> dict[str, str]:
        if self.device.type != "cuda":
            return {"torch": str(torch.__version__)}
        return {
            "torch": str(torch.__version__),
            "cuda": str(torch.version.cuda),
            "cudnn": str(torch.backends.cudnn.version()),
        }

    def compute_path(self) -> dict[str, str]:
        on_gpu = self.device.type == "cuda"
        return {
            "device": torch.cuda.get_device_name(self.device) if on_gpu else "cpu",
            "threads": str(torch.get_num_threads()),
            "mkldnn": str(torch.backends.mkldnn.is_available()),
            "cudnn": str(on_gpu and torch.backends.cudnn.is_available()),
            "tf32": str(on_gpu and torch.backends.cuda.matmul.allow_tf32),
        } | ({"variant": self.variant} if self.variant else {})

    def _weights(self) -> tuple[str, str]:
        if self.cell is None or self.info.access is None:
            raise AdapterError(f"{self.name}: no weight import/export: {self.info.why_not}")
        return self.cell, self.info.access

    def build_layer(self, input_size: int, hidden_size: int, seed: int, *, dtype: str = "float32") -> TorchLayer:
        """A bare module for conformance, weights in the canonical layout; `dtype` converts the
        module (`.to(dtype)`) and what it is fed."""
        self._weights()
        torch.manual_seed(seed)
        module = self.factory(input_size, hidden_size)
        return TorchLayer(module, self.info, input_size, hidden_size, self.device, dtype=dtype)

    def build_stack(
        self, input_size: int, hidden_size: int, seed: int, *, num_layers: int = 1, bidirectional: bool = False
    ) -> TorchStack:
        """The factory's module with `num_layers`/`bidirectional` (adapters/reference_stack.py);
        NotStackable when the factory takes neither."""
        self._weights()
        torch.manual_seed(seed)
        return TorchStack(
            self.factory, self.target, self.info, input_size, hidden_size, num_layers, bidirectional, self.device
        )

    def native_module(self, input_size: int, hidden_size: int, seed: int) -> TorchNative:
        """The factory's module itself, for the checks that call it with torch tensors (no weight
        access needed)."""
        torch.manual_seed(seed)
        return TorchNative(self.factory(input_size, hidden_size), self.device)

    def export_model(self, model: TorchModel) -> Weights:
        """[proj] -> rnn -> head of a `TorchModel` in the canonical layout (kernels as (in, out))."""
        cell, access = self._weights()
        net, out = model.net, {}
        for name in ("proj", "head"):
            linear = getattr(net, name)
            if linear is not None:
                out[f"{name}.kernel"] = linear.weight.detach().cpu().numpy().T.copy()
                out[f"{name}.bias"] = linear.bias.detach().cpu().numpy().copy()
        out.update({f"rnn.{k}": v for k, v in export_weights(net.rnn, cell, access).items()})
        return out

    def import_model(self, model: TorchModel, weights: Mapping[str, np.ndarray]) -> None:
        cell, access = self._weights()
        shapes = {k: v.shape for k, v in self.export_model(model).items()}
        weights = model_to_layout(cell, weights, self.info.recurrent_bias, self.info.variant)
        weights = match_shapes(shapes, weights, "model weights")
        net = model.net
        rnn_weights = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
        import_weights(net.rnn, cell, access, rnn_weights, self.info)
        with torch.no_grad():
            for name in ("proj", "head"):
                linear = getattr(net, name)
                if linear is not None:
                    linear.weight.copy_(
                        torch.from_numpy(np.ascontiguousarray(np.asarray(weights[f"{name}.kernel"]).T, np.float32))
                    )
                    linear.bias.copy_(torch.from_numpy(np.asarray(weights[f"{name}.bias"], np.float32)))
