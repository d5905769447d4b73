"""The canonical weight layout of the reference (adapters/reference.py) and of conformance: which
keys and shapes a cell's weights have, how the frameworks' stacked blocks map onto them, and the
state's form. This module imports no framework.

Everywhere but in a reset-after GRU the two biases only ever appear summed, so the recurrent-side
`bh_<gate>` is optional there (as in ONNX, whose Wb/Rb are these b/bh): a layout without it (Keras's
LSTM, one bias) is the same maths with bh = 0, and `to_layout` folds bh into b to bring full weights
into it. `random_weights` and `canary_weights` give every cell its bh, so that parity with PyTorch's
two biases exercises both.

Canonical layout: a dict of float arrays, one entry per gate and role, gates named as above —
LSTM (i, f, g, o), GRU (z, r, n), RNN (h):

    W_<gate>   (input_size, hidden_size)    input kernel, used as x W
    U_<gate>   (hidden_size, hidden_size)   recurrent kernel, used as h U
    b_<gate>   (hidden_size,)               input-side bias
    bh_<gate>  (hidden_size,)               recurrent-side bias: always in a reset-after GRU, else
                                            optional (all gates or none; absent means 0)

The state is `(h, c)` for the LSTM and `h` for the GRU and RNN, each (batch, hidden_size).
How the frameworks map onto it (`to_stacked` / `from_stacked` do the block work):

    PyTorch   weight_ih = [W_a; W_b; ...]ᵀ blocks in gate order i,f,g,o (LSTM), r,z,n (GRU);
              b = bias_ih, bh = bias_hh (every cell: export and import keep both).
    Keras     kernel = [W_a | W_b | ...] in gate order i,f,c,o (LSTM, c is g), z,r,h (GRU, h is n);
              LSTM/RNN and GRU(reset_after=False): bias = b, no bh (import folds b + bh);
              GRU (reset_after=True): bias = [b; bh], shape (2, 3H).

So an LSTM moves between the two as kernel = weight_ihᵀ, bias = bias_ih + bias_hh, and a GRU by
swapping the z and r blocks and keeping both biases.

A whole model ([proj] -> rnn -> head, see `tasks.base.ModelSpec`) exports as
`proj.kernel` (in, out), `proj.bias`, `rnn.<canonical key>`, `head.kernel`, `head.bias`
(`model_to_layout` folds its rnn part like `to_layout`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import AdapterError

Weights = dict[str, np.ndarray]

CELLS: tuple[str, ...] = ("lstm", "gru", "rnn")


GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n"), "rnn": ("h",)}


N_STATES: dict[str, int] = {"lstm": 2, "gru": 1, "rnn": 1}

#: Each cell's forms: "" is the default (the GRU's reset-after), the rest are named variants:
#: "reset_before" (Keras's GRU(reset_after=False)) and "no_bhn", the reset-after GRU without the
#: candidate's recurrent bias (n = tanh(x W_n + b_n + r ⊙ (h U_n)): Flax's nnx.GRUCell, which
#: has no place for bh_n; google/flax#5594).
VARIANTS: dict[str, tuple[str, ...]] = {"lstm": ("",), "gru": ("", "reset_before", "no_bhn"), "rnn": ("",)}
#: Why a no_bhn GRU cannot hold a bh_n that is not 0.
NO_BHN = (
    "the no_bhn GRU (Flax's nnx.GRUCell) has no recurrent bias for the candidate gate, so bh_n (PyTorch's "
    "b_hn, the last block of bias_hh) must be 0 (open upstream: google/flax#5594, PR #5595)"
)


class CannotHold(AdapterError):
    """A layer's form has no place for some of the weights it is given (e.g. a no_bhn GRU and a
    bh_n that is not 0): a limit of the form, not a defect of the implementation."""


def in_form(cell: str, weights: Mapping[str, Any], variant: str = "") -> Weights:
    """The weights as a cell of `variant` computes with them: a no_bhn GRU has no bh_n (0 in its
    maths); every other form uses every weight. Conformance draws its weights through this."""
    out = dict(weights)
    if cell == "gru" and variant == "no_bhn" and "bh_n" in out:
        out["bh_n"] = np.zeros(np.shape(out["bh_n"]))
    return out


def holds(cell: str, target: str, source: str) -> str:
    """Why a layer in form `target` cannot in general hold weights of a layer in form `source`
    ("" when it can): a reset-before and a reset-after GRU compute differently on any weights; a
    default GRU holds a no_bhn one's (bh_n = 0), but not the other way round."""
    if target == source or (cell == "gru" and target == "" and source == "no_bhn"):
        return ""
    if cell == "gru" and target == "no_bhn" and source == "":
        return NO_BHN
    forms = f"{target or 'default'} and {source or 'default'}"
    return f"the two forms of the {cell} ({forms}) compute differently on any weights"


def _check_cell(cell: str, variant: str = "") -> None:
    if cell not in GATES:
        raise AdapterError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
    if variant not in VARIANTS[cell]:
        forms = ", ".join(repr(v) for v in VARIANTS[cell])
        raise AdapterError(f"unknown variant {variant!r} of the {cell}; choose from {forms}")


def needs_recurrent_bias(cell: str, variant: str = "") -> bool:
    """Whether the layout must have bh_*: only the reset-after GRU keeps it apart from b (the
    no_bhn one has none, and its bh_z, bh_r fold into b)."""
    return cell == "gru" and variant not in ("reset_before", "no_bhn")


def has_recurrent_bias(weights: Mapping[str, Any]) -> bool:
    """Whether a set of canonical weights (or gradients) is in the layout with bh_*."""
    return any(str(k).startswith("bh_") for k in weights)


def weight_shapes(
    cell: str, input_size: int, hidden_size: int, recurrent_bias: bool = True
) -> dict[str, tuple[int, ...]]:
    """Every canonical key of `cell` with its shape, bh_* included unless `recurrent_bias` is False."""
    _check_cell(cell)
    shapes: dict[str, tuple[int, ...]] = {}
    for gate in GATES[cell]:
        shapes[f"W_{gate}"] = (input_size, hidden_size)
        shapes[f"U_{gate}"] = (hidden_size, hidden_size)
        shapes[f"b_{gate}"] = (hidden_size,)
        if recurrent_bias:
            shapes[f"bh_{gate}"] = (hidden_size,)
    return shapes


def check_weights(
    cell: str, input_size: int, hidden_size: int, weights: Mapping[str, Any], variant: str = ""
) -> Weights:
    """The weights as arrays, or an AdapterError naming each missing, extra or misshapen key. The
    layout is the one with bh_* when any bh_ key is there or the form needs it, else the one without."""
    _check_cell(cell, variant)
    with_bh = needs_recurrent_bias(cell, variant) or has_recurrent_bias(weights)
    shapes = weight_shapes(cell, input_size, hidden_size, with_bh)
    label = f"{cell}{f' ({variant})' if variant else ''}"
    return match_shapes(shapes, weights, f"{label} weights for input {input_size}, hidden {hidden_size}")


def to_layout(cell: str, weights: Mapping[str, np.ndarray], recurrent_bias: bool, variant: str = "") -> Weights:
    """Canonical weights (either layout) in the layout with bh_* (`recurrent_bias`; bh = 0 where
    there was none) or without (b + bh folded into b, in float64): the same maths either way. A
    reset-after GRU cannot lose its bh (r multiplies it): an AdapterError says so."""
    has = has_recurrent_bias(weights)
    if has == recurrent_bias:
        return dict(weights)
    if recurrent_bias:
        out = dict(weights)
        for gate in GATES[cell]:
            out[f"bh_{gate}"] = np.zeros(np.shape(weights[f"b_{gate}"]))
        return out
    if needs_recurrent_bias(cell, variant):
        raise CannotHold(
            "a reset-after GRU's recurrent bias bh cannot be folded into b (the reset gate multiplies it): "
            "this layer cannot hold these weights"
        )
    out = {k: v for k, v in weights.items() if not k.startswith("bh_")}
    gates = GATES[cell]
    if cell == "gru" and variant == "no_bhn":  # bh_n has no place: it must be 0, never dropped silently
        largest = float(np.max(np.abs(np.asarray(weights["bh_n"], np.float64)), initial=0.0))
        if largest != 0.0:
            raise CannotHold(f"{NO_BHN}; these weights have |bh_n| up to {largest:.3g}")
        gates = ("z", "r")
    for gate in gates:
        out[f"b_{gate}"] = np.asarray(weights[f"b_{gate}"], np.float64) + np.asarray(weights[f"bh_{gate}"], np.float64)
    return out


def model_to_layout(cell: str, weights: Mapping[str, np.ndarray], recurrent_bias: bool, variant: str = "") -> Weights:
    """A whole model's weights with their `rnn.` part brought into a layout as by `to_layout`."""
    rnn = {k.removeprefix("rnn."): v for k, v in weights.items() if k.startswith("rnn.")}
    rest = {k: v for k, v in weights.items() if not k.startswith("rnn.")}
    if not rnn:
        return dict(weights)
    try:
        moved = to_layout(cell, rnn, recurrent_bias, variant)
    except KeyError:  # not canonical at all: let the caller's shape check name it
        return dict(weights)
    return {**rest, **{f"rnn.{k}": v for k, v in moved.items()}}


def match_shapes(shapes: Mapping[str, tuple[int, ...]], weights: Mapping[str, Any], what: str) -> Weights:
    """`weights` as arrays when its keys and shapes are exactly `shapes`; else an AdapterError
    that starts with `what` and names each missing, extra or misshapen key."""
    problems = [f"missing {key}" for key in shapes if key not in weights]
    problems += [f"unexpected {key}" for key in weights if key not in shapes]
    out = {}
    for key, shape in shapes.items():
        if key in weights:
            value = np.asarray(weights[key])
            if value.shape != tuple(shape):
                problems.append(f"{key} has shape {value.shape}, expected {tuple(shape)}")
            out[key] = value
    if problems:
        raise AdapterError(f"{what}: {'; '.join(problems)}")
    return out


def permute_gates(cell: str, weights: Mapping[str, np.ndarray], order: Sequence[str]) -> Weights:
    """The weights an implementation would use if it read gate `order[k]` where gate k belongs."""
    out = dict(weights)
    for gate, source in zip(GATES[cell], order, strict=True):
        for role in ("W", "U", "b", "bh"):
            if f"{role}_{source}" in weights:
                out[f"{role}_{gate}"] = weights[f"{role}_{source}"]
    return out


def gate_permutations(cell: str) -> Iterator[tuple[str, ...]]:
    """Every order of the gates but the right one."""
    for order in itertools.permutations(GATES[cell]):
        if order != GATES[cell]:
            yield order


def describe_permutation(cell: str, order: Sequence[str]) -> str:
    """Which gate reads which, e.g. `i reads f, f reads i` for an i/f swap."""
    moved = [f"{gate} reads {source}" for gate, source in zip(GATES[cell], order, strict=True) if gate != source]
    return ", ".join(moved)


def check_state(cell: str, state: Any, batch: int, hidden_size: int) -> list[np.ndarray]:
    """The state as a list of (batch, hidden) arrays (zeros for None), or an AdapterError that says
    what was expected."""
    n = N_STATES[cell]
    expected = f"{'(h, c), each' if n == 2 else 'h'} of shape ({batch}, {hidden_size})"
    if state is None:
        return [np.zeros((batch, hidden_size)) for _ in range(n)]
    parts = list(state) if isinstance(state, tuple | list) else [state]
    arrays = [np.asarray(p) for p in parts]
    if len(arrays) != n or any(a.shape != (batch, hidden_size) for a in arrays):
        got = [a.shape for a in arrays]
        raise AdapterError(f"{cell} state must be {expected}; got {len(arrays)} array(s) of shape(s) {got}")
    return arrays


def pack_state(cell: str, arrays: Sequence[np.ndarray]) -> Any:
    return (arrays[0], arrays[1]) if N_STATES[cell] == 2 else arrays[0]


def to_stacked(
    cell: str, order: Sequence[str], weights: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(kernel (I, G·H), recurrent kernel (H, G·H), bias (G·H,), recurrent bias (G·H,) or None) with
    the gate blocks in a framework's `order`; the recurrent bias when the weights have bh_*."""
    blocks = [GATES[cell].index(gate) for gate in order]
    names = GATES[cell]
    kernel = np.concatenate([np.asarray(weights[f"W_{names[k]}"]) for k in blocks], axis=1)
    recurrent = np.concatenate([np.asarray(weights[f"U_{names[k]}"]) for k in blocks], axis=1)
    bias = np.concatenate([np.asarray(weights[f"b_{names[k]}"]) for k in blocks])
    recurrent_bias = None
    if has_recurrent_bias(weights):
        recurrent_bias = np.concatenate([np.asarray(weights[f"bh_{names[k]}"]) for k in blocks])
    return kernel, recurrent, bias, recurrent_bias


def from_stacked(
    cell: str,
    order: Sequence[str],
    kernel: np.ndarray,
    recurrent: np.ndarray,
    bias: np.ndarray,
    recurrent_bias: np.ndarray | None = None,
) -> Weights:
    """The inverse of `to_stacked`: split a framework's stacked blocks (given in `order`) by gate;
    bh_* when a recurrent bias is given."""
    hidden = recurrent.shape[0]
    out: Weights = {}
    for k, gate in enumerate(order):
        block = slice(k * hidden, (k + 1) * hidden)
        out[f"W_{gate}"] = np.array(kernel[:, block])
        out[f"U_{gate}"] = np.array(recurrent[:, block])
        out[f"b_{gate}"] = np.array(bias[block])
        if recurrent_bias is not None:
            out[f"bh_{gate}"] = np.array(recurrent_bias[block])
    return {key: out[key] for key in weight_shapes(cell, kernel.shape[0], hidden, recurrent_bias is not None)}
