"""The float64 reference's backward pass (backpropagation through time), analytic, and the central
differences that prove it (`tests/test_reference.py`). The equations are `adapters/reference.py`'s;
this module imports no framework."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnn_behaviour.adapters.reference import GATES, Weights, _prepare, _step, check_state, forward, pack_state


def backward(
    cell: str,
    x: np.ndarray,
    weights: Mapping[str, np.ndarray],
    state: Any = None,
    dy: np.ndarray | None = None,
    dfinal: Any = None,
    variant: str = "",
) -> tuple[np.ndarray, Weights, Any]:
    """The analytic float64 backward pass (backpropagation through time) of the loss
    Σ dy ⊙ y + Σ dfinal ⊙ final state: (dx, dW, dstate). dy None means ones, dfinal None zeros,
    state None the zero state; dW has the keys of `weights` (the gradient of a folded b is that of
    b and of bh alike), dstate is packed like the state. `tests/test_reference.py` holds it to
    central differences (`numerical_gradients`)."""
    x, w, parts = _prepare(cell, x, weights, state, variant)
    reset_after = variant != "reset_before"
    batch, steps, _ = x.shape
    hidden = parts[0].shape[1]
    dy = np.ones((batch, steps, hidden)) if dy is None else np.asarray(dy, np.float64)
    dfin = [np.zeros_like(p) for p in parts] if dfinal is None else [np.asarray(a, np.float64) for a in _parts(dfinal)]
    h, c = parts[0], (parts[1] if len(parts) > 1 else None)
    tape = []
    for t in range(steps):
        out = _step(cell, x[:, t], w, h, c, reset_after)
        tape.append((h, c, out))
        h, c = out["h"], out.get("c")
    dw = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    dh = dfin[0].copy()
    dc = dfin[1].copy() if cell == "lstm" else None
    for t in reversed(range(steps)):
        h, c, out = tape[t]
        xt = x[:, t]
        dh = dh + dy[:, t]
        pre: dict[str, np.ndarray] = {}  # d loss / d pre-activation, per gate
        if cell == "lstm":
            tc = np.tanh(out["c"])
            dc = dc + dh * out["o"] * (1.0 - tc**2)
            i, f, g, o = out["i"], out["f"], out["g"], out["o"]
            pre = {"i": dc * g * i * (1 - i), "f": dc * c * f * (1 - f), "g": dc * i * (1 - g**2),
                   "o": dh * tc * o * (1 - o)}  # fmt: skip
            dc = dc * f
            dh_prev = np.zeros_like(h)
        elif cell == "gru":
            z, r, n = out["z"], out["r"], out["n"]
            dn = dh * (1.0 - z) * (1.0 - n**2)
            pre = {"z": dh * (h - n) * z * (1 - z), "n": dn}
            dh_prev = dh * z
            if reset_after:
                dhn = dn * r
                pre["r"] = dn * out["hn"] * r * (1 - r)
                dw["U_n"] += h.T @ dhn
                dw["bh_n"] += dhn.sum(axis=0)
                dh_prev = dh_prev + dhn @ w["U_n"].T
            else:
                drh = dn @ w["U_n"].T
                pre["r"] = drh * h * r * (1 - r)
                dw["U_n"] += (r * h).T @ dn
                dw["bh_n"] += dn.sum(axis=0)
                dh_prev = dh_prev + drh * r
        else:
            pre = {"h": dh * (1.0 - out["h"] ** 2)}
            dh_prev = np.zeros_like(h)
        for gate, da in pre.items():
            dw[f"W_{gate}"] += xt.T @ da
            dw[f"b_{gate}"] += da.sum(axis=0)
            dx[:, t] += da @ w[f"W_{gate}"].T
            if cell == "gru" and gate == "n":
                continue  # its recurrent side is done above
            dw[f"U_{gate}"] += h.T @ da
            dw[f"bh_{gate}"] += da.sum(axis=0)
            dh_prev = dh_prev + da @ w[f"U_{gate}"].T
        dh = dh_prev
    dstate = pack_state(cell, [dh] if dc is None else [dh, dc])
    if cell == "gru" and variant == "no_bhn":  # bh_n is not in that form's maths: nothing depends on it
        dw["bh_n"] = np.zeros_like(dw["bh_n"])
    return dx, {k: dw[k] for k in weights}, dstate


def _parts(state: Any) -> list[Any]:
    return list(state) if isinstance(state, tuple | list) else [state]


def numerical_gradients(
    cell: str,
    x: np.ndarray,
    weights: Mapping[str, np.ndarray],
    state: Any = None,
    dy: np.ndarray | None = None,
    dfinal: Any = None,
    variant: str = "",
    eps: float = 1e-6,
) -> tuple[np.ndarray, Weights, Any]:
    """`backward`'s (dx, dW, dstate) by central differences of the reference in float64 (truncation
    error ~eps², rounding ~1e-16·|loss|/eps): slow, the proof of `backward` in the tests."""
    x = np.array(x, np.float64)
    w = {k: np.array(v, np.float64) for k, v in weights.items()}
    hidden = np.asarray(w[f"U_{GATES[cell][0]}"]).shape[0]
    s = [np.array(p, np.float64) for p in check_state(cell, state, x.shape[0], hidden)]
    dy = np.ones((x.shape[0], x.shape[1], hidden)) if dy is None else np.asarray(dy, np.float64)
    dfin = [np.zeros_like(p) for p in s] if dfinal is None else [np.asarray(a, np.float64) for a in _parts(dfinal)]

    def loss() -> float:
        y, final = forward(cell, x, w, pack_state(cell, s), variant=variant)
        return float(np.sum(dy * y) + sum(np.sum(d * f) for d, f in zip(dfin, _parts(final), strict=True)))

    def differentiate(array: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            keep = array[idx]
            array[idx] = keep + eps
            up = loss()
            array[idx] = keep - eps
            down = loss()
            array[idx] = keep
            grad[idx] = (up - down) / (2 * eps)
        return grad

    dx = differentiate(x)
    dw = {k: differentiate(w[k]) for k in w}
    return dx, dw, pack_state(cell, [differentiate(p) for p in s])
