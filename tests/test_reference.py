"""The float64 reference and the canonical layout (adapters/reference.py), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.backprop import numerical_gradients
from rnn_behaviour.adapters.base import AdapterError


def sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def one_by_one(cell: str, **values: float) -> dict[str, np.ndarray]:
    """Input 1, hidden 1: every weight a scalar given by name (bh_* only when given: optional but for
    the reset-after GRU)."""
    shapes = ref.weight_shapes(cell, 1, 1, recurrent_bias=any(k.startswith("bh_") for k in values))
    return {key: np.full(shape, values[key]) for key, shape in shapes.items()}


def test_lstm_step_by_hand() -> None:
    w = one_by_one("lstm", W_i=0.5, U_i=-0.3, b_i=0.1, W_f=-0.4, U_f=0.2, b_f=1.0,
                   W_g=0.9, U_g=0.6, b_g=-0.2, W_o=0.3, U_o=-0.7, b_o=0.05)  # fmt: skip
    x, h, c = 1.5, 0.4, -0.8
    i = sigmoid(0.5 * x - 0.3 * h + 0.1)
    f = sigmoid(-0.4 * x + 0.2 * h + 1.0)
    g = math.tanh(0.9 * x + 0.6 * h - 0.2)
    o = sigmoid(0.3 * x - 0.7 * h + 0.05)
    c_new = f * c + i * g
    h_new = o * math.tanh(c_new)
    y, (h_out, c_out) = ref.forward("lstm", np.full((1, 1, 1), x), w, (np.full((1, 1), h), np.full((1, 1), c)))
    assert y[0, 0, 0] == pytest.approx(h_new, abs=1e-15)
    assert h_out[0, 0] == pytest.approx(h_new, abs=1e-15) and c_out[0, 0] == pytest.approx(c_new, abs=1e-15)


def test_gru_step_by_hand_reset_after_and_before() -> None:
    w = one_by_one("gru", W_z=0.5, U_z=-0.3, b_z=0.1, bh_z=0.2, W_r=-0.4, U_r=0.8, b_r=0.3, bh_r=-0.1,
                   W_n=0.9, U_n=0.6, b_n=-0.2, bh_n=0.7)  # fmt: skip
    x, h = 1.5, -0.6
    z = sigmoid(0.5 * x + 0.1 - 0.3 * h + 0.2)
    r = sigmoid(-0.4 * x + 0.3 + 0.8 * h - 0.1)
    n_after = math.tanh(0.9 * x - 0.2 + r * (0.6 * h + 0.7))
    n_before = math.tanh(0.9 * x - 0.2 + 0.6 * (r * h) + 0.7)
    x_in, h_in = np.full((1, 1, 1), x), np.full((1, 1), h)
    after, _ = ref.forward("gru", x_in, w, h_in)
    before, _ = ref.forward("gru", x_in, w, h_in, reset_after=False)
    assert after[0, 0, 0] == pytest.approx((1 - z) * n_after + z * h, abs=1e-15)
    assert before[0, 0, 0] == pytest.approx((1 - z) * n_before + z * h, abs=1e-15)
    assert abs(after[0, 0, 0] - before[0, 0, 0]) > 1e-3


def test_rnn_two_steps_by_hand_and_zero_state_default() -> None:
    w = one_by_one("rnn", W_h=0.5, U_h=-0.9, b_h=0.1)
    h1 = math.tanh(0.5 * 1.0 + 0.1)
    h2 = math.tanh(0.5 * -2.0 - 0.9 * h1 + 0.1)
    y, h = ref.forward("rnn", np.array([[[1.0], [-2.0]]]), w)
    np.testing.assert_allclose(y[0, :, 0], [h1, h2], atol=1e-15)
    assert h[0, 0] == pytest.approx(h2, abs=1e-15)


def test_numerical_gradients_match_the_derivative_of_one_rnn_step() -> None:
    rng = np.random.default_rng(0)
    w = ref.random_weights("rnn", 2, 3, rng)
    x, h0 = rng.normal(size=(2, 1, 2)), rng.normal(size=(2, 3))
    y, _ = ref.forward("rnn", x, w, h0)
    slope = 1.0 - y[:, 0] ** 2  # d tanh(a)/da, (batch, hidden)
    dx, dw, _ = numerical_gradients("rnn", x, w, h0)
    np.testing.assert_allclose(dw["b_h"], slope.sum(axis=0), atol=1e-8)
    np.testing.assert_allclose(dw["bh_h"], slope.sum(axis=0), atol=1e-8)
    np.testing.assert_allclose(dw["W_h"], x[:, 0].T @ slope, atol=1e-8)
    np.testing.assert_allclose(dw["U_h"], h0.T @ slope, atol=1e-8)
    np.testing.assert_allclose(dx[:, 0], slope @ w["W_h"].T, atol=1e-8)


@pytest.mark.parametrize(("kind", "order"), [("lstm", ("i", "f", "g", "o")), ("gru", ("r", "z", "n")), ("rnn", ("h",))])
def test_stacked_blocks_follow_the_framework_order_and_invert(kind: str, order: tuple[str, ...]) -> None:
    w = ref.random_weights(kind, 3, 2, np.random.default_rng(1))
    kernel, recurrent, bias, recurrent_bias = ref.to_stacked(kind, order, w)
    assert kernel.shape == (3, 2 * len(order)) and recurrent.shape == (2, 2 * len(order))
    np.testing.assert_array_equal(kernel[:, :2], w[f"W_{order[0]}"])
    np.testing.assert_array_equal(bias[-2:], w[f"b_{order[-1]}"])
    assert recurrent_bias is not None  # every cell's random weights have bh
    back = ref.from_stacked(kind, order, kernel, recurrent, bias, recurrent_bias)
    assert list(back) == list(ref.weight_shapes(kind, 3, 2))
    for key in w:
        np.testing.assert_array_equal(back[key], w[key])


def test_bad_weights_and_states_name_the_problem() -> None:
    w = ref.random_weights("lstm", 3, 2, np.random.default_rng(2))
    w["W_i"] = w["W_i"].T
    del w["b_o"]
    w["peephole"] = np.zeros(2)
    problems = r"missing b_o; unexpected peephole; W_i has shape \(2, 3\), expected \(3, 2\)"
    with pytest.raises(AdapterError, match=problems):
        ref.check_weights("lstm", 3, 2, w)
    with pytest.raises(AdapterError, match=r"lstm state must be \(h, c\), each of shape \(4, 2\); got 1 array"):
        ref.check_state("lstm", np.zeros((4, 2)), 4, 2)
    with pytest.raises(AdapterError, match="unknown cell 'peephole'"):
        ref.weight_shapes("peephole", 1, 1)


def test_permuting_gates_moves_every_role_and_is_described() -> None:
    w = ref.random_weights("gru", 2, 2, np.random.default_rng(3))
    swapped = ref.permute_gates("gru", w, ("r", "z", "n"))
    for role in ("W", "U", "b", "bh"):
        np.testing.assert_array_equal(swapped[f"{role}_z"], w[f"{role}_r"])
        np.testing.assert_array_equal(swapped[f"{role}_n"], w[f"{role}_n"])
    assert ref.describe_permutation("gru", ("r", "z", "n")) == "z reads r, r reads z"
    assert len(list(ref.gate_permutations("lstm"))) == 23 and not list(ref.gate_permutations("rnn"))


@pytest.mark.parametrize(("kind", "variant"), [("lstm", ""), ("gru", ""), ("gru", "reset_before"), ("rnn", "")])
def test_backward_is_the_central_differences_of_the_loss_on_outputs_and_final_state(kind: str, variant: str) -> None:
    """The analytic BPTT against numerical differentiation of Σ dy ⊙ y + Σ dfinal ⊙ final state."""
    g = np.random.default_rng(4)
    w = ref.random_weights(kind, 3, 4, g)
    x = g.normal(size=(2, 5, 3))
    state = ref.pack_state(kind, [g.normal(size=(2, 4)) for _ in range(ref.N_STATES[kind])])
    dy = g.normal(size=(2, 5, 4))
    dfinal = ref.pack_state(kind, [g.normal(size=(2, 4)) for _ in range(ref.N_STATES[kind])])
    dx, dw, dstate = ref.backward(kind, x, w, state, dy, dfinal, variant)
    ndx, ndw, ndstate = numerical_gradients(kind, x, w, state, dy, dfinal, variant)
    np.testing.assert_allclose(dx, ndx, atol=1e-8)
    assert list(dw) == list(w)
    for key in w:
        np.testing.assert_allclose(dw[key], ndw[key], atol=1e-8, err_msg=key)
    for got, want in zip(np.atleast_3d(dstate), np.atleast_3d(ndstate), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-8)
    assert np.abs(dstate[-1] if kind == "lstm" else dstate).max() > 1e-2  # the state's gradient is not trivially 0


def test_backward_in_the_folded_layout_gives_b_the_gradient_of_both_biases() -> None:
    g = np.random.default_rng(5)
    w = ref.random_weights("lstm", 2, 3, g)
    x, dy = g.normal(size=(2, 4, 2)), g.normal(size=(2, 4, 3))
    folded = ref.to_layout("lstm", w, recurrent_bias=False)
    assert not ref.has_recurrent_bias(folded)
    np.testing.assert_allclose(folded["b_i"], w["b_i"] + w["bh_i"])
    np.testing.assert_allclose(ref.forward("lstm", x, folded)[0], ref.forward("lstm", x, w)[0], atol=1e-15)
    _, dw_full, _ = ref.backward("lstm", x, w, None, dy)
    _, dw_folded, _ = ref.backward("lstm", x, folded, None, dy)
    assert sorted(dw_folded) == sorted(folded)
    for gate in "ifgo":
        np.testing.assert_allclose(dw_folded[f"b_{gate}"], dw_full[f"bh_{gate}"], atol=1e-12)
        np.testing.assert_allclose(dw_full[f"b_{gate}"], dw_full[f"bh_{gate}"], atol=1e-12)
    with pytest.raises(AdapterError, match="reset-after GRU's recurrent bias bh cannot be folded"):
        ref.to_layout("gru", ref.random_weights("gru", 2, 3, g), recurrent_bias=False)
    back = ref.to_layout("lstm", folded, recurrent_bias=True)
    assert all(not back[f"bh_{gate}"].any() for gate in "ifgo")


def test_either_layout_is_accepted_except_a_reset_after_gru_without_bh() -> None:
    w = ref.random_weights("rnn", 2, 3, np.random.default_rng(6))
    ref.check_weights("rnn", 2, 3, w)
    ref.check_weights("rnn", 2, 3, ref.to_layout("rnn", w, recurrent_bias=False))
    gru = ref.to_layout("gru", ref.random_weights("gru", 2, 3, np.random.default_rng(7)), False, "reset_before")
    ref.check_weights("gru", 2, 3, gru, "reset_before")
    with pytest.raises(AdapterError, match="missing bh_z"):
        ref.check_weights("gru", 2, 3, gru)
    with pytest.raises(AdapterError, match="unknown variant 'reset_later' of the gru"):
        ref.check_weights("gru", 2, 3, gru, "reset_later")


# --- the no_bhn GRU (Flax's nnx.GRUCell: no recurrent bias on the candidate) ---------------------


def test_a_no_bhn_gru_cannot_hold_a_bh_n_and_says_so_naming_the_flax_issue() -> None:
    w = ref.random_weights("gru", 2, 3, np.random.default_rng(8))
    assert np.abs(w["bh_n"]).max() > 0
    with pytest.raises(ref.CannotHold) as info:
        ref.to_layout("gru", w, False, "no_bhn")
    message = str(info.value)
    assert "google/flax#5594" in message and "bh_n (PyTorch's b_hn, the last block of bias_hh) must be 0" in message
    assert f"these weights have |bh_n| up to {np.abs(w['bh_n']).max():.3g}" in message
    assert isinstance(info.value, AdapterError) and "\n" not in message  # a limit of the form, in one line


def test_a_no_bhn_gru_folds_bh_z_and_bh_r_into_b_when_bh_n_is_0() -> None:
    w = ref.in_form("gru", ref.random_weights("gru", 2, 3, np.random.default_rng(9)), "no_bhn")
    assert not w["bh_n"].any() and w["bh_z"].any() and w["bh_r"].any()
    folded = ref.to_layout("gru", w, False, "no_bhn")
    assert set(folded) == set(ref.weight_shapes("gru", 2, 3, recurrent_bias=False))
    np.testing.assert_array_equal(folded["b_z"], w["b_z"] + w["bh_z"])
    np.testing.assert_array_equal(folded["b_r"], w["b_r"] + w["bh_r"])
    np.testing.assert_array_equal(folded["b_n"], w["b_n"])
    ref.check_weights("gru", 2, 3, folded, "no_bhn")  # its layout has no bh_*
    g = np.random.default_rng(10)
    x, h = g.normal(size=(2, 4, 2)), g.normal(size=(2, 3))
    for a, b in zip(ref.forward("gru", x, folded, h, variant="no_bhn"), ref.forward("gru", x, w, h, variant="no_bhn"),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, atol=1e-15)
    # The default (reset-after) GRU cannot lose its bh at all: r multiplies bh_n.
    with pytest.raises(ref.CannotHold, match="cannot be folded into b"):
        ref.to_layout("gru", w, False)


def test_the_reference_no_bhn_gru_is_the_default_gru_with_bh_n_0() -> None:
    g = np.random.default_rng(11)
    w = ref.random_weights("gru", 3, 4, g)
    x, h = g.normal(size=(2, 6, 3)), g.normal(size=(2, 4))
    dy, dfinal = g.normal(size=(2, 6, 4)), g.normal(size=(2, 4))
    without = {**w, "bh_n": np.zeros(4)}
    y, final = ref.forward("gru", x, w, h, variant="no_bhn")
    y0, final0 = ref.forward("gru", x, without, h)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(final, final0)
    assert np.abs(y - ref.forward("gru", x, w, h)[0]).max() > 1e-3  # bh_n does move the default GRU
    dx, dw, ds = ref.backward("gru", x, w, h, dy, dfinal, variant="no_bhn")
    dx0, dw0, ds0 = ref.backward("gru", x, without, h, dy, dfinal)
    np.testing.assert_array_equal(dx, dx0)
    np.testing.assert_array_equal(ds, ds0)
    for key in dw0:
        if key != "bh_n":  # bh_n has no place in the no_bhn form
            np.testing.assert_array_equal(dw[key], dw0[key])
    assert ref.holds("gru", "", "no_bhn") == "" and "google/flax#5594" in ref.holds("gru", "no_bhn", "")
