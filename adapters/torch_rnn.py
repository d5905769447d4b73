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

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from adapters.base import (
    AdapterError,
    Capabilities,
    FitLog,
    StopFn,
    check_input,
    check_stateful,
    device_request,
    epoch_batches,
    stream_chunks,
    threads,
    train_loop,
)
from adapters.custom import (
    PROBE_BATCH,
    PROBE_HIDDEN,
    PROBE_INPUT,
    PROBE_TIME,
    canonical_gradients,
    cell_from_keys,
    cell_from_rows,
    first_line,
    import_target,
)
from adapters.reference import (
    N_STATES,
    Weights,
    check_state,
    check_weights,
    from_stacked,
    match_shapes,
    pack_state,
    to_stacked,
)
from tasks.base import Budget, ModelSpec, Split

Factory = Callable[[int, int], nn.Module]


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


def lstm(input_size: int, hidden_size: int) -> nn.Module:
    """The `torch-lstm` built-in: `nn.LSTM`, batch-first."""
    return nn.LSTM(input_size, hidden_size, batch_first=True)


def gru(input_size: int, hidden_size: int) -> nn.Module:
    """The `torch-gru` built-in: `nn.GRU` (reset-after), batch-first."""
    return nn.GRU(input_size, hidden_size, batch_first=True)


def rnn(input_size: int, hidden_size: int) -> nn.Module:
    """The `torch-rnn` built-in: `nn.RNN` (tanh), batch-first."""
    return nn.RNN(input_size, hidden_size, batch_first=True)


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


def _to_torch_state(state: Any, device: torch.device) -> Any:
    """The module's state from predict's NumPy nest (same structure, arrays -> tensors)."""
    if state is None:
        return None
    return pytree.tree_map(
        lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device) if isinstance(a, np.ndarray) else a, state
    )


def _to_numpy_state(state: Any) -> Any:
    return pytree.tree_map(lambda s: s.detach().cpu().numpy().copy() if isinstance(s, torch.Tensor) else s, state)


def _detach(state: Any) -> Any:
    return pytree.tree_map(lambda s: s.detach() if isinstance(s, torch.Tensor) else s, state)


class TorchModel:
    def __init__(self, spec: ModelSpec, factory: Factory, seed: int, device: torch.device | None = None) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.spec = spec
        self.device = device or torch.device("cpu")
        self.net = _Net(spec, factory).to(self.device)
        self.rng = np.random.default_rng(seed)
        self.n_params = sum(p.numel() for p in self.net.parameters())

    def _stepper(self, budget: Budget) -> tuple[Callable[[torch.Tensor, torch.Tensor, Any], tuple[float, Any]], Any]:
        """One optimizer step (Adam at the budget's rate) on a batch from a state, and the dtype
        of the targets the budget's loss takes."""
        loss_fn: nn.Module = nn.CrossEntropyLoss() if budget.loss == "crossentropy" else nn.MSELoss()
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

        return step, (np.int64 if budget.loss == "crossentropy" else np.float32)

    def make_train_step(self, budget: Budget) -> Callable[[np.ndarray, np.ndarray], float]:
        """One training step on one batch from the zero state (the speed benchmark's train step)."""
        step, y_dtype = self._stepper(budget)

        def train_step(x: np.ndarray, y: np.ndarray) -> float:
            self.net.train()
            xb = torch.from_numpy(np.asarray(x, np.float32)).to(self.device)
            return step(xb, torch.from_numpy(np.asarray(y, y_dtype)).to(self.device), None)[0]

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
        xt = torch.from_numpy(check_input(x, self.spec.input_size)).to(self.device)
        out, new_state = self.net(xt, _to_torch_state(state, self.device), last_only)
        if self.spec.head == "softmax":
            out = torch.softmax(out, dim=-1)
        return out.cpu().numpy().copy(), _to_numpy_state(new_state)


# --- loading: the probe that makes a bad module a usage error before anything trains -----------

#: PyTorch's own parameter names of a one-layer recurrent module (nn.LSTM / GRU / RNN).
STANDARD_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
#: PyTorch's gate blocks, named canonically: LSTM i,f,g,o; GRU r,z,n.
TORCH_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}


@dataclass(frozen=True)
class ModuleInfo:
    """What the load-time probe learned: how weight conformance can reach the module's weights
    (`access` "standard" names, canonical "export", or None and `why_not`), its cell, and its
    state's nest with the rank of each tensor in it."""

    cell: str | None
    access: str | None
    why_not: str
    state_spec: Any
    state_ranks: tuple[int, ...]


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return str(tuple(shape)) if shape is not None else f"a {type(value).__name__}"


def _check_forward(out: Any, call: str, batch: int, time: int) -> tuple[torch.Tensor, Any]:
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = f"a {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, tuple | list) else "")
        raise AdapterError(f"{call} returned {got}; forward must return (y, state) like nn.LSTM")
    y, state = out
    expected = (batch, time, PROBE_HIDDEN)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        raise AdapterError(
            f"{call} returned y of shape {_shape(y)}; expected {expected} = (batch, time, hidden_size), "
            "batch first like nn.LSTM(batch_first=True)"
        )
    leaves = pytree.tree_leaves(state)
    if state is None or not leaves or not all(isinstance(t, torch.Tensor) for t in leaves):
        kinds = ", ".join(sorted({type(t).__name__ for t in leaves}))
        raise AdapterError(f"{call} returned a state of {kinds or 'nothing'}; it must be a tensor or a nest of tensors")
    if any(batch not in tuple(s.shape) for s in leaves):
        raise AdapterError(
            f"{call} returned a state of shape(s) {[tuple(s.shape) for s in leaves]}, without the batch size {batch}: "
            "is x read as (time, batch, features)? forward must be batch first, like nn.LSTM(batch_first=True)"
        )
    return y, state


def probe_module(factory: Factory, target: str) -> ModuleInfo:
    """Build the module once at the probe's sizes and run it: the factory's signature, the
    forward's output shape and the state handed back are checked here, each failure one
    AdapterError that says what was expected and what came back. Global RNG state is left as it was."""
    i, h, b, t = PROBE_INPUT, PROBE_HIDDEN, PROBE_BATCH, PROBE_TIME
    made = f"{target}({i}, {h})"
    with torch.random.fork_rng():
        try:
            module = factory(i, h)
        except TypeError as exc:
            raise AdapterError(
                f"calling {made} raised {first_line(exc)}; a torch factory is factory(input_size, hidden_size)"
            ) from None
        except Exception as exc:
            raise AdapterError(f"calling {made} raised {first_line(exc)}") from None
        if not isinstance(module, nn.Module):
            raise AdapterError(f"{made} returned {type(module).__name__}, not a torch.nn.Module")
        if not any(p.requires_grad for p in module.parameters()):
            raise AdapterError(f"{made} has no trainable parameters")
        x = torch.randn(b, t, i)
        x_text = f"x of shape {(b, t, i)}"
        calls = [
            (f"{made}.forward({x_text})", lambda: module(x)),
            (f"{made}.forward({x_text}, None)", lambda: module(x, None)),
        ]
        for call, run in calls:
            try:
                out = run()
            except Exception as exc:
                raise AdapterError(f"{call} raised {first_line(exc)}") from None
            _, state = _check_forward(out, call, b, t)
        call = f"{made}.forward(x of shape {(b, 1, i)}, state) with the state forward(x) returned"
        try:
            out = module(x[:, :1], state)
        except Exception as exc:
            raise AdapterError(f"the state is not accepted back: {call} raised {first_line(exc)}") from None
        _, again = _check_forward(out, call, b, 1)
        leaves, spec = pytree.tree_flatten(state)
        if pytree.tree_structure(again) != spec or [a.shape for a in pytree.tree_leaves(again)] != [
            s.shape for s in leaves
        ]:
            raise AdapterError(
                f"{call} returned a state of another structure or shape ({_describe(again)}) than the one given "
                f"({_describe(state)}); the state must keep its form from call to call"
            )
        access, cell, why_not = _weight_access(module, i, h)
        ranks = tuple(s.dim() for s in leaves)
        if access is not None and cell is not None:
            layout = [(1, b, h), (b, h)]
            if len(leaves) != N_STATES[cell] or any(tuple(s.shape) not in layout for s in leaves):
                access, why_not = (
                    None,
                    (
                        f"its weights read as a{'n' if cell in ('lstm', 'rnn') else ''} {cell.upper()}, but its state "
                        f"({_describe(state)}) is not {'(h, c)' if N_STATES[cell] == 2 else 'h'} as (1, batch, hidden) "
                        "or (batch, hidden) tensors like nn.LSTM's"
                    ),
                )
        return ModuleInfo(cell if access else None, access, why_not, spec, ranks)


def _describe(state: Any) -> str:
    leaves = pytree.tree_leaves(state)
    return f"{type(state).__name__} of {len(leaves)} tensor(s) of shape(s) {[tuple(s.shape) for s in leaves]}"


def _weight_access(module: nn.Module, input_size: int, hidden_size: int) -> tuple[str | None, str | None, str]:
    names = {name: tuple(p.shape) for name, p in module.named_parameters()}
    if set(STANDARD_NAMES) <= set(names):
        rows = names["weight_ih_l0"][0]
        cell = cell_from_rows(rows, hidden_size)
        expected: dict[str, tuple[int, ...]] = {"weight_ih_l0": (rows, input_size), "weight_hh_l0": (rows, hidden_size)}
        expected |= {"bias_ih_l0": (rows,), "bias_hh_l0": (rows,)}
        extra = sorted(set(names) - set(STANDARD_NAMES))
        if extra:
            return (
                None,
                None,
                (
                    f"it has PyTorch's standard parameter names but also {', '.join(extra)}: not a plain LSTM/GRU/RNN "
                    "cell, so the reference equations do not apply"
                ),
            )
        if cell is None or any(names[k] != s for k, s in expected.items()):
            return (
                None,
                None,
                (
                    f"its standard parameters have shapes {names} for input {input_size}, hidden {hidden_size}; "
                    "weight_ih_l0 must be (4H|3H|H, input) for an LSTM|GRU|RNN"
                ),
            )
        return "standard", cell, ""
    if callable(getattr(module, "export_weights", None)) and callable(getattr(module, "import_weights", None)):
        try:
            exported = cast(Any, module).export_weights()
        except Exception as exc:
            return None, None, f"its export_weights() raised {first_line(exc)}"
        cell, problem = cell_from_keys(exported, input_size, hidden_size)
        return ("export", cell, "") if cell else (None, None, f"its {problem}")
    return (
        None,
        None,
        (
            f"its module has neither PyTorch's standard parameter names ({', '.join(STANDARD_NAMES)}; it has "
            f"{', '.join(names) or 'none'}) nor export_weights()/import_weights() in the canonical layout of "
            "adapters/reference.py"
        ),
    )


# --- conformance: a bare layer and whole-model weights in the canonical layout ----------------
# (adapters/reference.py documents the layout; benchmarks/conformance.py checks it)


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
        out[name] = np.zeros(tuple(p.shape), np.float32) if value is None else value.detach().cpu().numpy().copy()
    return out


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array of its own, from whatever device it is on."""
    return t.detach().cpu().numpy().copy()


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


def export_weights(module: nn.Module, cell: str, access: str) -> Weights:
    """A module's recurrent weights in the canonical layout (`access` from `probe_module`)."""
    if access == "export":
        exported = cast(Any, module).export_weights().items()
        return {k: _numpy(v) if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in exported}
    return _canonical(cell, _numpy_params(module))


def import_weights(module: nn.Module, cell: str, access: str, weights: Mapping[str, np.ndarray]) -> None:
    if access == "export":
        cast(Any, module).import_weights(dict(weights))
    else:
        _load_rnn(module, cell, weights)


class TorchLayer:
    """A bare module (batch-first, float32, on the run's device) behind the conformance `Layer`
    API: numpy in and out, canonical state `(h, c)`/`h`, converted to and from the module's nest."""

    def __init__(
        self, module: nn.Module, info: ModuleInfo, input_size: int, hidden_size: int, device: torch.device
    ) -> None:
        assert info.cell is not None and info.access is not None
        self.module, self.info, self.device = module.to(device), info, device
        self.cell, self.access = info.cell, info.access
        self.input_size, self.hidden_size = input_size, hidden_size

    def _inputs(self, x: np.ndarray, state: Any) -> tuple[torch.Tensor, Any]:
        xt = torch.from_numpy(check_input(x, self.input_size).copy()).to(self.device)
        if state is None:
            return xt, None
        arrays = check_state(self.cell, state, len(xt), self.hidden_size)
        tensors = [
            torch.from_numpy(np.asarray(a, np.float32).reshape((1, *a.shape) if rank == 3 else a.shape).copy())
            for a, rank in zip(arrays, self.info.state_ranks, strict=True)
        ]
        return xt, pytree.tree_unflatten([t.to(self.device) for t in tensors], self.info.state_spec)

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        xt, st = self._inputs(x, state)
        with torch.no_grad():
            y, final = self.module(xt, st)
        arrays = [_numpy(s).reshape(len(xt), self.hidden_size) for s in pytree.tree_leaves(final)]
        return _numpy(y), pack_state(self.cell, arrays)

    def gradients(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Weights]:
        xt, st = self._inputs(x, state)
        xt.requires_grad_(True)
        self.module.zero_grad(set_to_none=True)
        y, _ = self.module(xt, st)
        y.sum().backward()
        assert xt.grad is not None
        grads = _numpy_params(self.module, grad=True)
        if self.access == "standard":
            return _numpy(xt.grad), _canonical(self.cell, grads, gradient=True)
        dw = canonical_gradients(
            self.cell, self.input_size, self.hidden_size, grads, self.import_weights,
            lambda: _numpy_params(self.module), self.export_weights(),
        )  # fmt: skip
        return _numpy(xt.grad), dw

    def export_weights(self) -> Weights:
        return export_weights(self.module, self.cell, self.access)

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights)
        import_weights(self.module, self.cell, self.access, checked)


class TorchAdapter:
    """Wraps a module factory: the built-ins pass `adapters.torch_rnn:lstm` (etc.), `--adapter
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
        self.cell = self.info.cell
        weight_io = self.info.access is not None
        self.device = select_device()
        self.capabilities = Capabilities(stateful_training=True, variable_length=False, weight_io=weight_io, gpu=True)
        #: Why a capability is missing, for the skip reason of the checks that need it.
        self.capability_notes = {} if weight_io else {"weight_io": self.info.why_not}

    def build(self, spec: ModelSpec, seed: int) -> TorchModel:
        return TorchModel(spec, self.factory, seed, self.device)

    def versions(self) -> dict[str, str]:
        return {"torch": str(torch.__version__)}

    def compute_path(self) -> dict[str, str]:
        on_gpu = self.device.type == "cuda"
        return {
            "device": torch.cuda.get_device_name(self.device) if on_gpu else "cpu",
            "threads": str(torch.get_num_threads()),
            "mkldnn": str(torch.backends.mkldnn.is_available()),
            "cudnn": str(on_gpu and torch.backends.cudnn.is_available()),
            "tf32": str(on_gpu and torch.backends.cuda.matmul.allow_tf32),
        }

    def _weights(self) -> tuple[str, str]:
        if self.cell is None or self.info.access is None:
            raise AdapterError(f"{self.name}: no weight import/export: {self.info.why_not}")
        return self.cell, self.info.access

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> TorchLayer:
        """A bare module for conformance, weights in the canonical layout."""
        self._weights()
        torch.manual_seed(seed)
        return TorchLayer(self.factory(input_size, hidden_size), self.info, input_size, hidden_size, self.device)

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
        weights = match_shapes(shapes, weights, "model weights")
        net = model.net
        rnn_weights = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
        import_weights(net.rnn, cell, access, rnn_weights)
        with torch.no_grad():
            for name in ("proj", "head"):
                linear = getattr(net, name)
                if linear is not None:
                    linear.weight.copy_(
                        torch.from_numpy(np.ascontiguousarray(np.asarray(weights[f"{name}.kernel"]).T, np.float32))
                    )
                    linear.bias.copy_(torch.from_numpy(np.asarray(weights[f"{name}.bias"], np.float32)))
