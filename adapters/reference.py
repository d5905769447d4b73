"""The float64 NumPy reference of the LSTM, GRU and tanh RNN, and the canonical weight layout.

Conformance (`benchmarks/conformance.py`, DESIGN §5) compares every adapter's recurrent layer
with these equations on the same weights, moved in and out in one gate-named layout. This module
imports no framework.

Equations (batch-first; x_t is (B, I), h and c are (B, H); σ is the logistic sigmoid, ⊙ the
elementwise product; every output y_t is h_t):

    LSTM   i = σ(x_t W_i + h U_i + b_i + bh_i)      f = σ(x_t W_f + h U_f + b_f + bh_f)
           g = tanh(x_t W_g + h U_g + b_g + bh_g)   o = σ(x_t W_o + h U_o + b_o + bh_o)
           c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')

    GRU    z = σ(x_t W_z + b_z + h U_z + bh_z)
    (reset r = σ(x_t W_r + b_r + h U_r + bh_r)
    after) n = tanh(x_t W_n + b_n + r ⊙ (h U_n + bh_n))
           h' = (1 − z) ⊙ n + z ⊙ h

    RNN    h' = tanh(x_t W_h + h U_h + b_h + bh_h)

The GRU is the reset-after ("linear before reset") form by default, the default of both PyTorch
and Keras: the reset gate multiplies the recurrent product *with* its bias, so the two candidate
biases do not add up and both are kept. Its variant `"reset_before"` (`variant=` in `forward`,
`backward`, `check_weights`; Keras's `GRU(reset_after=False)`, Keras 2 / TF1 / ONNX's default) is
n = tanh(x_t W_n + b_n + (r ⊙ h) U_n + bh_n). `VARIANTS` lists each cell's variants ("" is the
default form).

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
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adapters.base import AdapterError, Model

CELLS: tuple[str, ...] = ("lstm", "gru", "rnn")
GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n"), "rnn": ("h",)}
N_STATES: dict[str, int] = {"lstm": 2, "gru": 1, "rnn": 1}
#: Each cell's forms: "" is the default (the GRU's reset-after), the rest are named variants.
VARIANTS: dict[str, tuple[str, ...]] = {"lstm": ("",), "gru": ("", "reset_before"), "rnn": ("",)}

Weights = dict[str, np.ndarray]


@runtime_checkable
class Layer(Protocol):
    """A bare recurrent layer (batch-first), as conformance sees it: NumPy in and out.

    `forward(x, state=None) -> (y, state)`: y is (batch, time, hidden), every h_t; the state is
    `(h, c)` (LSTM) or `h`, each (batch, hidden); None means zeros. `gradients(x, state, dy,
    dfinal) -> (dx, dW, dstate)`: the gradients of the loss Σ dy ⊙ y + Σ dfinal ⊙ final state
    with respect to x, the weights (canonical keys, in the layer's own layout: bh_* when its
    export has them) and the initial state (packed like the state); dy None means ones (d Σy),
    dfinal None zeros, state None the zero state. A layer may carry `variant` (see `VARIANTS`;
    absent means ""). An adapter that declares `variable_length` also accepts
    `forward(x, state, lengths=...)`: row b is read up to `lengths[b]` steps and its final state
    is the state after them.
    """

    cell: str
    input_size: int
    hidden_size: int

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]: ...

    def export_weights(self) -> Weights: ...

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]: ...


@runtime_checkable
class LayerAdapter(Protocol):
    """What `Capabilities(weight_io=True)` promises on top of the Adapter protocol: a bare layer of
    the adapter's cell, and a whole model's weights in and out in the canonical layout. It may
    carry `variant` (absent means "")."""

    cell: str

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> Layer: ...

    def export_model(self, model: Model) -> Weights: ...

    def import_model(self, model: Model, weights: Mapping[str, np.ndarray]) -> None: ...


def _check_cell(cell: str, variant: str = "") -> None:
    if cell not in GATES:
        raise AdapterError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
    if variant not in VARIANTS[cell]:
        forms = ", ".join(repr(v) for v in VARIANTS[cell])
        raise AdapterError(f"unknown variant {variant!r} of the {cell}; choose from {forms}")


def needs_recurrent_bias(cell: str, variant: str = "") -> bool:
    """Whether the layout must have bh_*: only the reset-after GRU keeps it apart from b."""
    return cell == "gru" and variant != "reset_before"


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
        raise AdapterError(
            "a reset-after GRU's recurrent bias bh cannot be folded into b (the reset gate multiplies it): "
            "this layer cannot hold these weights"
        )
    out = {k: v for k, v in weights.items() if not k.startswith("bh_")}
    for gate in GATES[cell]:
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


def random_weights(cell: str, input_size: int, hidden_size: int, rng: np.random.Generator) -> Weights:
    """Normal weights, float64: kernels of standard deviation 1/sqrt(fan-in) (the recurrent ones
    0.7/sqrt(hidden), a contracting recurrence), both biases 0.35 (their sum about 0.5), every cell
    with its bh so that both of PyTorch's biases are exercised. Pre-activations come out around 1:
    the gates work in their curved range, and rounding is not amplified from step to step, so a
    float32 layer can be held to the reference over 64 steps (a chaotic recurrence could not)."""
    out = {}
    for key, shape in weight_shapes(cell, input_size, hidden_size).items():
        std = {"W": 1.0 / np.sqrt(input_size), "U": 0.7 / np.sqrt(hidden_size)}.get(key.split("_")[0], 0.35)
        out[key] = rng.normal(0.0, std, shape)
    return out


def canary_weights(cell: str, input_size: int, hidden_size: int, rng: np.random.Generator) -> Weights:
    """Weights whose gates are far apart (own bias level and own kernel scale per gate), so that any
    implementation reading the gates in another order is off by much more than rounding. Every
    cell has its bh, apart from b (the GRU's pulls against b's level, the others' is noise)."""
    gates = GATES[cell]
    levels = np.linspace(-1.5, 1.5, len(gates))
    scales = np.linspace(0.5, 1.2, len(gates))
    out = {}
    for k, gate in enumerate(gates):
        out[f"W_{gate}"] = rng.normal(0.0, scales[k] / np.sqrt(input_size), (input_size, hidden_size))
        out[f"U_{gate}"] = rng.normal(0.0, 0.7 * scales[k] / np.sqrt(hidden_size), (hidden_size, hidden_size))
        out[f"b_{gate}"] = levels[k] + rng.normal(0.0, 0.1, hidden_size)
        level = -0.5 * levels[k] if cell == "gru" else 0.0
        out[f"bh_{gate}"] = level + rng.normal(0.0, 0.3 if cell != "gru" else 0.1, hidden_size)
    return out


def saturating_weights(cell: str, input_size: int, hidden_size: int, rng: np.random.Generator) -> Weights:
    """Weights of a trained counter (a model that counts to 40): the LSTM's forget gate near 1
    (bias 8), its input gate open (bias 6) and its candidate at a steady ±0.02 to ±0.95, each unit at
    its own rate, so over 48 steps |c| grows to about 45 in some units and stays below a few in
    others; the GRU's and RNN's candidates are driven to ±1 by biases of 2 to 4 (h near ±1, the
    GRU's update gate near 0.1 to 0.9). Small kernels keep the biases in charge, the recurrent ones
    weakest (0.1/sqrt(hidden)): with f near 1 the cell state forgets nothing, and a stronger
    feedback amplifies float32 rounding itself past any fair tolerance on some draws (0.3/sqrt(hidden)
    gave 2e-4 on one seed of 20 over 1031 steps). Float32 loses absolute precision as |c| grows (an
    ulp of 4e-6 at 40): the regime where a kernel that clips or rescales its state, or accumulates
    rounding, shows."""
    shapes = weight_shapes(cell, input_size, hidden_size)
    out = {}
    for key, shape in shapes.items():
        std = {"W": 0.3 / np.sqrt(input_size), "U": 0.1 / np.sqrt(hidden_size)}.get(key.split("_")[0], 0.1)
        out[key] = rng.normal(0.0, std, shape)
    signs = rng.choice([-1.0, 1.0], hidden_size)
    if cell == "lstm":
        out["b_f"] += 8.0
        out["b_i"] += 6.0
        out["b_g"] += signs * np.arctanh(np.linspace(0.02, 0.95, hidden_size))[rng.permutation(hidden_size)]
        out["b_o"] += rng.normal(0.0, 1.0, hidden_size)
    else:
        candidate = "n" if cell == "gru" else "h"
        out[f"b_{candidate}"] += signs * rng.uniform(2.0, 4.0, hidden_size)
        if cell == "gru":
            out["b_z"] += rng.uniform(-2.0, 2.0, hidden_size)
            out["b_r"] += 3.0
    return out


def rounded(weights: Mapping[str, np.ndarray], dtype: Any = np.float32) -> Weights:
    """The weights as a `dtype` layer holds them, back in float64: what the reference should run."""
    return {k: np.asarray(v).astype(dtype).astype(np.float64) for k, v in weights.items()}


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


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _prepare(
    cell: str, x: np.ndarray, weights: Mapping[str, np.ndarray], state: Any, variant: str
) -> tuple[np.ndarray, Weights, list[np.ndarray]]:
    """x, the weights in the full layout (bh = 0 where absent) and the state parts, all float64."""
    _check_cell(cell, variant)
    x = np.asarray(x, np.float64)
    if x.ndim != 3:
        raise AdapterError(f"input must be (batch, time, features); got shape {x.shape}")
    hidden_size = np.asarray(weights[f"U_{GATES[cell][0]}"]).shape[0]
    checked = check_weights(cell, x.shape[-1], hidden_size, weights, variant)
    w = {k: np.asarray(v, np.float64) for k, v in to_layout(cell, checked, True).items()}
    parts = [np.asarray(s, np.float64) for s in check_state(cell, state, x.shape[0], hidden_size)]
    return x, w, parts


def _step(cell: str, xt: np.ndarray, w: Weights, h: np.ndarray, c: Any, reset_after: bool) -> dict[str, Any]:
    """One step from (h, c): the new h (and c) and what the backward pass needs."""
    if cell == "lstm":
        i, f, o = (_sigmoid(xt @ w[f"W_{k}"] + h @ w[f"U_{k}"] + w[f"b_{k}"] + w[f"bh_{k}"]) for k in "ifo")
        g = np.tanh(xt @ w["W_g"] + h @ w["U_g"] + w["b_g"] + w["bh_g"])
        c_new = f * c + i * g
        return {"h": o * np.tanh(c_new), "c": c_new, "i": i, "f": f, "g": g, "o": o}
    if cell == "gru":
        z = _sigmoid(xt @ w["W_z"] + w["b_z"] + h @ w["U_z"] + w["bh_z"])
        r = _sigmoid(xt @ w["W_r"] + w["b_r"] + h @ w["U_r"] + w["bh_r"])
        if reset_after:
            hn = h @ w["U_n"] + w["bh_n"]
            n = np.tanh(xt @ w["W_n"] + w["b_n"] + r * hn)
        else:
            hn = None
            n = np.tanh(xt @ w["W_n"] + w["b_n"] + (r * h) @ w["U_n"] + w["bh_n"])
        return {"h": (1.0 - z) * n + z * h, "z": z, "r": r, "n": n, "hn": hn}
    return {"h": np.tanh(xt @ w["W_h"] + h @ w["U_h"] + w["b_h"] + w["bh_h"])}


def forward(
    cell: str,
    x: np.ndarray,
    weights: Mapping[str, np.ndarray],
    state: Any = None,
    reset_after: bool = True,
    variant: str = "",
) -> tuple[np.ndarray, Any]:
    """Run the reference in float64: `x` (batch, time, input) from `state` (None = zeros); returns
    every h_t as (batch, time, hidden) and the final state. `variant="reset_before"` (or, the same,
    `reset_after=False`) runs the reset-before GRU."""
    x, w, parts = _prepare(cell, x, weights, state, variant)
    reset_after = reset_after and variant != "reset_before"
    h, c = parts[0], (parts[1] if len(parts) > 1 else None)
    ys = []
    for t in range(x.shape[1]):
        out = _step(cell, x[:, t], w, h, c, reset_after)
        h, c = out["h"], out.get("c")
        ys.append(h)
    y = np.stack(ys, axis=1) if ys else np.zeros((x.shape[0], 0, h.shape[1]))
    return y, pack_state(cell, [h] if c is None else [h, c])


def backward(
    cell: str,
    x: np.ndarray,
    weights: Mapping[str, np.ndarray],
    state: Any = None,
    dy: np.ndarray | None = None,
    dfinal: Any = None,
    variant: str = "",
) -> tuple[np.ndarray, Weights, Any]:
    """The analytic float64 backward pass (BPTT) of the loss Σ dy ⊙ y + Σ dfinal ⊙ final state:
    (dx, dW, dstate); dy None means ones, dfinal None zeros. It lives in `adapters/backprop.py`."""
    from adapters import backprop  # imported here: backprop builds on this module

    return backprop.backward(cell, x, weights, state, dy, dfinal, variant)


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


class ReferenceLayer:
    """The reference as a `Layer` (float64) in the full layout, in its cell's `variant`; it takes
    weights in either layout. Conformance's own tests build deliberately broken layers on top of it."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, seed: int = 0, variant: str = "") -> None:
        _check_cell(cell, variant)
        self.cell, self.input_size, self.hidden_size, self.variant = cell, input_size, hidden_size, variant
        self.weights = random_weights(cell, input_size, hidden_size, np.random.default_rng(seed))

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        x = np.asarray(x, np.float64)
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise AdapterError(f"input must be (batch, time, {self.input_size}); got shape {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise AdapterError(f"input is empty: shape {x.shape}")
        return forward(self.cell, x, self.weights, state, variant=self.variant)

    def export_weights(self) -> Weights:
        return {k: v.copy() for k, v in self.weights.items()}

    def import_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = check_weights(self.cell, self.input_size, self.hidden_size, weights, self.variant)
        self.weights = {k: np.array(v, np.float64) for k, v in checked.items()}

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        return backward(self.cell, x, self.weights, state, dy, dfinal, self.variant)
