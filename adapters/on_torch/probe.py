"""The load-time probe of a torch module: a bad factory, forward or state is a usage error before
anything trains, and what it learns (cell, weight access, the state's nest) drives conformance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnn_behaviour.adapters.base import (
    AdapterError,
)
from rnn_behaviour.adapters.custom import (
    PROBE_BATCH,
    PROBE_HIDDEN,
    PROBE_INPUT,
    PROBE_TIME,
    cell_from_rows,
    declared_stateless,
    export_access,
    first_line,
    has_export,
    read_declaration,
)
from rnn_behaviour.adapters.reference import N_STATES

Factory = Callable[[int, int], nn.Module]

# --- loading: the probe that makes a bad module a usage error before anything trains -----------

#: PyTorch's own parameter names of a one-layer recurrent module (nn.LSTM / GRU / RNN).
STANDARD_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
#: PyTorch's gate blocks, named canonically: LSTM i,f,g,o; GRU r,z,n.
TORCH_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}


@dataclass(frozen=True)
class ModuleInfo:
    """What the load-time probe learned: how weight conformance can reach the module's weights
    (`access` "standard" names, canonical "export", or None and `why_not`), its cell, and its
    state's nest with the rank of each tensor in it; its canonical layout has bh_*
    (`recurrent_bias`: PyTorch's names always do) and its cell's `variant` (an exporting module's
    own `variant` attribute, else "")."""

    cell: str | None
    access: str | None
    why_not: str
    state_spec: Any
    state_ranks: tuple[int, ...]
    recurrent_bias: bool = True
    variant: str = ""
    #: Why the module cannot run padded batches ("" when it takes a PackedSequence like nn.LSTM).
    packed_why_not: str = ""
    #: What the factory or its module declares (`rnn_behaviour_capabilities`, adapters/custom.py).
    declared: dict[str, bool | str] = field(default_factory=dict)


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
        declared = read_declaration(target, factory, module)
        if not any(p.requires_grad for p in module.parameters()):
            raise AdapterError(f"{made} has no trainable parameters")
        x = torch.randn(b, t, i)
        x_text = f"x of shape {(b, t, i)}"
        if (reason := declared_stateless(declared)) is not None:
            return _probe_stateless(module, f"{made}.forward({x_text})", x, declared, reason)
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
        access, cell, why_not, recurrent_bias, variant = _weight_access(module, i, h)
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
        packed_why_not = _packed_support(module, made, x, state)
        return ModuleInfo(
            cell if access else None, access, why_not, spec, ranks, recurrent_bias, variant, packed_why_not, declared
        )


def stateless_output(out: Any) -> Any:
    """y from what a module that declares no state returns: y alone, or (y, anything)."""
    return out[0] if isinstance(out, tuple | list) and out else out


def _probe_stateless(module: nn.Module, call: str, x: torch.Tensor, declared: dict[str, bool | str],
                     reason: str) -> ModuleInfo:  # fmt: skip
    """A module that declares no state is called `module(x)` only; y must be batch first."""
    try:
        y = stateless_output(module(x))
    except Exception as exc:
        raise AdapterError(
            f"{call} raised {first_line(exc)} (it declares no state, so it is called with x alone)"
        ) from None
    expected = (x.shape[0], x.shape[1], PROBE_HIDDEN)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        raise AdapterError(
            f"{call} returned y of shape {_shape(y)}; expected {expected} = (batch, time, hidden_size), batch first"
        )
    why = f"it declares no state ({reason}), and the weight checks hand one in"
    return ModuleInfo(None, None, why, None, (), packed_why_not=f"it declares no state ({reason})", declared=declared)


class Stateless(nn.Module):
    """A module that declares no state, behind the `forward(x, state=None) -> (y, None)` the suite
    calls: it is handed x alone, and a state handed in is refused (the checks that would hand one
    are skipped before they do; this is the guard)."""

    def __init__(self, inner: nn.Module, reason: str) -> None:
        super().__init__()
        self.inner, self.reason = inner, reason

    def forward(self, x: Any, state: Any = None) -> tuple[torch.Tensor, None]:
        if state is not None:
            raise ValueError(f"this module declares no state ({self.reason}); none can be handed in")
        return stateless_output(self.inner(x)), None


def stateless_factory(factory: Factory, reason: str) -> Factory:
    """`factory` with each module it makes wrapped in `Stateless`."""
    return lambda input_size, hidden_size, **kwargs: Stateless(factory(input_size, hidden_size, **kwargs), reason)


def _packed_support(module: nn.Module, made: str, x: torch.Tensor, state: Any) -> str:
    """'' when the module runs a PackedSequence of unsorted lengths (with a state) as nn.LSTM
    does: a PackedSequence back and a state of the usual form; else why not, in words."""
    b, t = x.shape[0], x.shape[1]
    lengths = [1 + (k * (t - 1)) // max(b - 1, 1) for k in range(b)]
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    call = f"{made}.forward(PackedSequence of lengths {lengths}, state)"
    try:
        out = module(packed, state)
    except Exception as exc:
        return f"its module does not take a PackedSequence ({call} raised {first_line(exc)})"
    if not isinstance(out, tuple | list) or len(out) != 2 or not isinstance(out[0], PackedSequence):
        got = type(out[0] if isinstance(out, tuple | list) and out else out).__name__
        return f"its module does not return a PackedSequence for one ({call} returned a {got})"
    try:
        y, _ = pad_packed_sequence(out[0], batch_first=True, total_length=t)
    except Exception as exc:
        return f"the PackedSequence its module returned does not unpack ({first_line(exc)})"
    leaves = pytree.tree_leaves(out[1])
    if not leaves or not all(isinstance(s, torch.Tensor) for s in leaves):
        return f"{call} returned a state of {type(out[1]).__name__}, not the tensors it returns for a padded tensor"
    if (
        tuple(y.shape) != (b, t, PROBE_HIDDEN)
        or pytree.tree_structure(out[1]) != pytree.tree_structure(state)
        or [s.shape for s in leaves] != [s.shape for s in pytree.tree_leaves(state)]
    ):
        return (
            f"{call} returned y of shape {tuple(y.shape)} (unpacked) and a state of {_describe(out[1])}, not "
            f"{(b, t, PROBE_HIDDEN)} and {_describe(state)} as for a padded tensor"
        )
    return ""


def _describe(state: Any) -> str:
    leaves = pytree.tree_leaves(state)
    return f"{type(state).__name__} of {len(leaves)} tensor(s) of shape(s) {[tuple(s.shape) for s in leaves]}"


def _weight_access(
    module: nn.Module, input_size: int, hidden_size: int
) -> tuple[str | None, str | None, str, bool, str]:
    """(access, cell, why not, recurrent bias, variant)."""
    access, cell, why_not = _access(module, input_size, hidden_size)
    if access != "export":
        return access, cell, why_not, True, ""
    return export_access(module, input_size, hidden_size)


def _access(module: nn.Module, input_size: int, hidden_size: int) -> tuple[str | None, str | None, str]:
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
    if has_export(module):
        return "export", None, ""
    return (
        None,
        None,
        (
            f"its module has neither PyTorch's standard parameter names ({', '.join(STANDARD_NAMES)}; it has "
            f"{', '.join(names) or 'none'}) nor export_weights()/import_weights() in the canonical layout of "
            "adapters/reference.py"
        ),
    )
