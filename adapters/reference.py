"""The float64 NumPy reference of the LSTM, GRU and tanh RNN, the weights conformance draws, and
the `Layer` API conformance holds to it.

Conformance (`benchmarks/conformance/`, DESIGN §5) compares every adapter's recurrent layer
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
n = tanh(x_t W_n + b_n + (r ⊙ h) U_n + bh_n); its variant `"no_bhn"` (Flax's nnx.GRUCell) is
the reset-after form without bh_n (0 in its maths, whatever the weights say). `VARIANTS` lists
each cell's variants ("" is the default form).

The canonical weight layout and the state's form are in `adapters/layout.py` (re-exported here:
`reference.GATES`, `reference.check_weights`, ... still work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnn_behaviour.adapters.base import AdapterError, Model
from rnn_behaviour.adapters.layout import (
    CELLS,
    GATES,
    N_STATES,
    NO_BHN,
    VARIANTS,
    CannotHold,
    Weights,
    _check_cell,
    check_state,
    check_weights,
    describe_permutation,
    from_stacked,
    gate_permutations,
    has_recurrent_bias,
    holds,
    in_form,
    match_shapes,
    model_to_layout,
    needs_recurrent_bias,
    pack_state,
    permute_gates,
    to_layout,
    to_stacked,
    weight_shapes,
)

#: Public names, the layout's re-exported among them (`reference.GATES`, `reference.check_weights`).
__all__ = [
    "CELLS",
    "GATES",
    "NO_BHN",
    "N_STATES",
    "VARIANTS",
    "CannotHold",
    "Layer",
    "LayerAdapter",
    "ReferenceLayer",
    "Weights",
    "backward",
    "canary_weights",
    "check_state",
    "check_weights",
    "describe_permutation",
    "forward",
    "from_stacked",
    "gate_permutations",
    "has_recurrent_bias",
    "holds",
    "in_form",
    "match_shapes",
    "model_to_layout",
    "needs_recurrent_bias",
    "pack_state",
    "permute_gates",
    "random_weights",
    "rounded",
    "saturating_weights",
    "to_layout",
    "to_stacked",
    "weight_shapes",
]


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
    w = {k: np.asarray(v, np.float64) for k, v in in_form(cell, to_layout(cell, checked, True), variant).items()}
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
    from rnn_behaviour.adapters import backprop  # imported here: backprop builds on this module

    return backprop.backward(cell, x, weights, state, dy, dfinal, variant)


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
