"""ONNX LSTM/GRU/RNN nodes built from canonical weights (adapters/engines/nodes.py), run by ONNX Runtime,
against the float64 reference: the bare layer and the stacks, variable lengths, the weights' round trip,
and one test per mistake a node graph must not make, each shown to move the outputs well past the
parity tolerance (so a planted defect of that kind is caught by the parity tests above it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters import reference_stack as refstack
from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.engines import nodes
from rnn_behaviour.adapters.engines.runtimes import runtime
from rnn_behaviour.adapters.layout import CannotHold

ATOL = 1e-5
#: How far a planted mistake must move the outputs: far beyond ATOL, so parity cannot miss it.
SHARP = 1e-2
I, H = 5, 8  # noqa: E741 (input and hidden size, as in the papers)
FORMS = [("lstm", ""), ("gru", ""), ("gru", "reset_before"), ("gru", "no_bhn"), ("rnn", "")]
FORM_IDS = [f"{c}-{v}" if v else c for c, v in FORMS]


@pytest.fixture(scope="module")
def rt() -> Any:
    return runtime("onnxruntime")


def leaves(a: Any) -> list[np.ndarray]:
    return [np.asarray(p, np.float64) for p in (a if isinstance(a, tuple | list) else (a,))]


def max_err(a: Any, b: Any) -> float:
    return max(float(np.max(np.abs(p - q))) for p, q in zip(leaves(a), leaves(b), strict=True))


def weights(cell: str, variant: str, seed: int = 1, input_size: int = I) -> ref.Weights:
    """Reference weights as a float32 layer of `variant` holds them (rounded; the no_bhn GRU's bh_n 0)."""
    w = ref.rounded(ref.random_weights(cell, input_size, H, np.random.default_rng(seed)))
    if cell == "gru" and variant == "no_bhn":
        w["bh_n"] = np.zeros(H)
    return w


def state(cell: str, batch: int, g: np.random.Generator) -> Any:
    h = np.tanh(g.normal(size=(batch, H))).astype(np.float32)
    return (h, g.normal(size=(batch, H)).astype(np.float32)) if cell == "lstm" else h


def layer(rt: Any, cell: str, variant: str, w: ref.Weights | None = None) -> nodes.OnnxLayer:
    out = nodes.OnnxLayer(cell, I, H, rt, variant=variant)
    out.import_weights(weights(cell, variant) if w is None else w)
    return out


def parity(rt: Any, cell: str, variant: str, batch: int = 3, length: int = 7) -> float:
    """The layer's max |error| against the reference on one draw, from a random state."""
    g = np.random.default_rng(10 * batch + length)
    x = g.normal(size=(batch, length, I)).astype(np.float32)
    s = state(cell, batch, g)
    y, final = layer(rt, cell, variant).forward(x, s)
    y_ref, final_ref = ref.forward(cell, x, weights(cell, variant), s, variant=variant)
    return max(max_err(y, y_ref), max_err(final, final_ref))


# --- the bare layer --------------------------------------------------------------------------


@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "state"])
@pytest.mark.parametrize("length", [1, 7, 300])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("cell", "variant"), FORMS, ids=FORM_IDS)
def test_layer_matches_reference(rt: Any, cell: str, variant: str, batch: int, length: int, with_state: bool) -> None:
    g = np.random.default_rng(batch * 1000 + length)
    x = g.normal(size=(batch, length, I)).astype(np.float32)
    s = state(cell, batch, g) if with_state else None
    y, final = layer(rt, cell, variant).forward(x, s)
    assert y.dtype == np.float32 and y.shape == (batch, length, H)
    assert all(p.dtype == np.float32 and p.shape == (batch, H) for p in (final if cell == "lstm" else [final]))
    y_ref, final_ref = ref.forward(cell, x, weights(cell, variant), s, variant=variant)
    assert max_err(y, y_ref) < ATOL
    assert max_err(final, final_ref) < ATOL


@pytest.mark.parametrize("length", [7, 300])
@pytest.mark.parametrize(("cell", "variant"), FORMS, ids=FORM_IDS)
def test_lengths_match_each_row_trimmed(rt: Any, cell: str, variant: str, length: int) -> None:
    """Row b read up to lengths[b]: its valid outputs and final state are the reference's on the row
    cut to that length (ORT writes 0 at the padded steps; not compared)."""
    g = np.random.default_rng(length)
    x = g.normal(size=(3, length, I)).astype(np.float32)
    s = state(cell, 3, g)
    n = np.array([length, 1, length // 2 + 1])
    y, final = layer(rt, cell, variant).forward(x, s, lengths=n)
    w = weights(cell, variant)
    for b, steps in enumerate(n):
        row_state = ref.pack_state(cell, [p[b : b + 1] for p in leaves(s)])
        y_ref, final_ref = ref.forward(cell, x[b : b + 1, :steps], w, row_state, variant=variant)
        assert max_err(y[b : b + 1, :steps], y_ref) < ATOL
        assert max_err([p[b : b + 1] for p in leaves(final)], final_ref) < ATOL


def test_lengths_are_used(rt: Any) -> None:
    """The same padded rows read in full end elsewhere: the trimmed comparison above is sharp."""
    g = np.random.default_rng(0)
    x = g.normal(size=(2, 20, I)).astype(np.float32)
    n = np.array([5, 20])
    _, final = layer(rt, "lstm", "").forward(x, None, lengths=None)
    _, final_ref = ref.forward("lstm", x[:1, :5], weights("lstm", ""), None)
    assert max_err([p[:1] for p in final], final_ref) > SHARP
    _, trimmed = layer(rt, "lstm", "").forward(x, None, lengths=n)
    assert max_err([p[:1] for p in trimmed], final_ref) < ATOL


@pytest.mark.parametrize("bad", [[0, 3], [4, 3], [1.0, 2.0], [1, 2, 3]])
def test_bad_lengths_refused(rt: Any, bad: list[Any]) -> None:
    with pytest.raises(AdapterError, match="lengths"):
        layer(rt, "gru", "").forward(np.zeros((2, 3, I), np.float32), None, lengths=np.array(bad))


def test_bad_input_and_state_refused(rt: Any) -> None:
    lstm = layer(rt, "lstm", "")
    with pytest.raises(AdapterError, match="features"):
        lstm.forward(np.zeros((2, 3, I + 1), np.float32))
    with pytest.raises(AdapterError, match="state"):
        lstm.forward(np.zeros((2, 3, I), np.float32), np.zeros((2, H), np.float32))


# --- weights in and out ---------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "variant"), FORMS, ids=FORM_IDS)
def test_round_trip_is_bitwise(rt: Any, cell: str, variant: str) -> None:
    w = {k: v.astype(np.float32) for k, v in weights(cell, variant, seed=4).items()}
    onnx_layer = nodes.OnnxLayer(cell, I, H, rt, variant=variant)
    onnx_layer.import_weights(w)
    again = onnx_layer.export_weights()
    assert again.keys() == w.keys()
    for k in w:
        assert again[k].dtype == np.float32 and np.array_equal(again[k], w[k]), k
    first = onnx_layer.export_weights()
    assert all(np.array_equal(first[k], v) for k, v in onnx_layer.export_weights().items())
    exported = nodes.OnnxLayer(cell, I, H, rt, variant=variant, seed=3).export_weights()
    ref.check_weights(cell, I, H, exported, variant)  # the initial weights are canonical too, with bh
    assert ref.has_recurrent_bias(exported)


@pytest.mark.parametrize(("cell", "variant"), [("lstm", ""), ("gru", "reset_before"), ("rnn", "")])
def test_import_without_bh_is_bh_zero(rt: Any, cell: str, variant: str) -> None:
    w = weights(cell, variant)
    folded = ref.to_layout(cell, w, False, variant)
    onnx_layer = layer(rt, cell, variant, folded)
    stored = onnx_layer.export_weights()
    assert all(not stored[k].any() for k in stored if k.startswith("bh_"))
    assert all(np.array_equal(stored[k], np.float32(folded[k])) for k in folded)
    x = np.random.default_rng(0).normal(size=(2, 9, I)).astype(np.float32)
    assert max_err(onnx_layer.forward(x)[0], ref.forward(cell, x, w, variant=variant)[0]) < ATOL


def test_import_refusals(rt: Any) -> None:
    no_bhn = nodes.OnnxLayer("gru", I, H, rt, variant="no_bhn")
    with pytest.raises(CannotHold, match="bh_n"):
        no_bhn.import_weights(weights("gru", ""))  # bh_n drawn, not 0
    reset_after = nodes.OnnxLayer("gru", I, H, rt)
    without_bh = {k: v for k, v in weights("gru", "").items() if not k.startswith("bh_")}
    with pytest.raises(AdapterError, match="missing bh_"):
        reset_after.import_weights(without_bh)
    with pytest.raises(AdapterError, match="W_i has shape"):
        nodes.OnnxLayer("lstm", I, H, rt).import_weights(weights("lstm", "", input_size=I + 1))


def test_graph_form(rt: Any) -> None:
    """One node per layer, opset 14, batch and time symbolic, batch-first edges."""
    w = weights("lstm", "")
    upper = ref.rounded(ref.random_weights("lstm", 2 * H, H, np.random.default_rng(0)))
    model = nodes.graph("lstm", [[w, w], [upper, upper]], H, bidirectional=True, lengths=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == 2
    assert model.opset_import[0].version == nodes.OPSET
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims == {"x": ["batch", "time", I], "initial_h": [4, "batch", H], "initial_c": [4, "batch", H],
                    "sequence_lens": ["batch"]}  # fmt: skip
    with pytest.raises(AdapterError, match="direction"):
        nodes.graph("lstm", [[w]], H, bidirectional=True)


def test_lower_opset_same_outputs(rt: Any) -> None:
    """Opset 10 (Slice with input bounds; no `layout` attribute before 14) builds the same computation."""
    w = stack_weights("gru", "", 2, False)
    x = np.random.default_rng(0).normal(size=(2, 5, I)).astype(np.float32)
    feeds = {"x": x, "initial_h": np.zeros((2, 2, H), np.float32)}
    ys = [rt.session(nodes.graph("gru", [[w["l0"]], [w["l1"]]], H, opset=o)).run(feeds)["y"] for o in (10, 14)]
    assert np.array_equal(ys[0], ys[1])


# --- stacks -----------------------------------------------------------------------------------


STACKS = [(2, False), (1, True), (2, True)]


@pytest.mark.parametrize(("num_layers", "bidirectional"), STACKS, ids=["2-layers", "bi", "bi-2-layers"])
@pytest.mark.parametrize(("cell", "variant"), FORMS, ids=FORM_IDS)
def test_stack_matches_reference(rt: Any, cell: str, variant: str, num_layers: int, bidirectional: bool) -> None:
    g = np.random.default_rng(7)
    w = stack_weights(cell, variant, num_layers, bidirectional)
    stack = nodes.OnnxStack(cell, I, H, num_layers, bidirectional, rt, variant)
    stack.import_weights(w)
    x = g.normal(size=(3, 11, I)).astype(np.float32)
    for s in (None, refstack.random_stack_state(cell, 3, H, num_layers, bidirectional, g)):
        y, final = stack.forward(x, s)
        y_ref, final_ref = refstack.forward(cell, x, w, s, num_layers, bidirectional, variant)
        assert y.shape == (3, 11, (2 if bidirectional else 1) * H)
        assert max_err(y, y_ref) < ATOL and max_err(final, final_ref) < ATOL


def stack_weights(cell: str, variant: str, num_layers: int, bidirectional: bool) -> refstack.StackWeights:
    drawn = refstack.random_stack_weights(cell, I, H, num_layers, bidirectional, np.random.default_rng(2))
    return {s: ref.in_form(cell, ref.rounded(w), variant) for s, w in drawn.items()}


def test_bidirectional_stack_with_lengths(rt: Any) -> None:
    """The backward direction of a short row starts at its last valid step, as PyTorch's packed one."""
    g = np.random.default_rng(3)
    w = stack_weights("gru", "", 2, True)
    stack = nodes.OnnxStack("gru", I, H, 2, True, rt)
    stack.import_weights(w)
    x = g.normal(size=(3, 13, I)).astype(np.float32)
    s = refstack.random_stack_state("gru", 3, H, 2, True, g)
    n = np.array([13, 4, 1])
    y, final = stack.forward(x, s, lengths=n)
    for b, steps in enumerate(n):
        y_ref, final_ref = refstack.forward("gru", x[b : b + 1, :steps], w, s[:, b : b + 1], 2, True)
        assert max_err(y[b : b + 1, :steps], y_ref) < ATOL and max_err(final[:, b : b + 1], final_ref) < ATOL


def test_stack_round_trip_and_refusals(rt: Any) -> None:
    w = {s: {k: v.astype(np.float32) for k, v in ws.items()} for s, ws in stack_weights("lstm", "", 2, True).items()}
    stack = nodes.OnnxStack("lstm", I, H, 2, True, rt)
    stack.import_weights(w)
    assert all(np.array_equal(stack.export_weights()[s][k], v) for s in w for k, v in w[s].items())
    with pytest.raises(AdapterError, match="missing l1_reverse"):
        stack.import_weights({s: v for s, v in w.items() if s != "l1_reverse"})
    with pytest.raises(AdapterError, match="stack state"):
        stack.forward(np.zeros((3, 2, I), np.float32), (np.zeros((2, 3, H)), np.zeros((2, 3, H))))
    no_bhn = nodes.OnnxStack("gru", I, H, 1, True, rt, "no_bhn")
    with pytest.raises(CannotHold):
        no_bhn.import_weights(refstack.random_stack_weights("gru", I, H, 1, True, np.random.default_rng(0)))


# --- mistakes the nodes must not make: each moves the outputs far past ATOL -----------------------


@pytest.mark.parametrize(("cell", "order"), [("lstm", ("i", "f", "g", "o")), ("gru", ("r", "z", "n"))])
def test_sharp_on_pytorch_gate_order(rt: Any, monkeypatch: pytest.MonkeyPatch, cell: str, order: tuple) -> None:
    """PyTorch's gate blocks (LSTM i,f,g,o; GRU r,z,n) written into ONNX's W/R/B without reordering."""
    monkeypatch.setitem(nodes.ONNX_GATES, cell, order)
    assert parity(rt, cell, "") > SHARP


@pytest.mark.parametrize("variant", ["", "reset_before"])
def test_sharp_on_linear_before_reset(rt: Any, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """The GRU's other form: ONNX's default linear_before_reset=0 for PyTorch's reset-after GRU, or back."""
    monkeypatch.setitem(nodes.LINEAR_BEFORE_RESET, variant, 1 - nodes.LINEAR_BEFORE_RESET[variant])
    assert parity(rt, "gru", variant) > SHARP


def test_sharp_on_swapped_biases(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """b and bh swapped (Wb <-> Rb): invisible to every cell but the reset-after GRU, where r scales bh_n."""
    real = nodes.node_weights

    def swapped(cell: str, w: Any, variant: str = "", order: Any = None) -> tuple[np.ndarray, ...]:
        kernel, recurrent, bias = real(cell, w, variant, order)
        return kernel, recurrent, np.concatenate(np.split(bias, 2)[::-1])

    monkeypatch.setattr(nodes, "node_weights", swapped)
    assert parity(rt, "gru", "") > SHARP
    assert parity(rt, "lstm", "") < ATOL  # the sums are the same: not a defect there


def test_sharp_on_unzeroed_bhn(rt: Any) -> None:
    """A no_bhn node that keeps Rb_n (a reset-after node given bh_n != 0) against the no_bhn reference."""
    w = weights("gru", "")
    x = np.random.default_rng(0).normal(size=(3, 7, I)).astype(np.float32)
    y_ref, _ = ref.forward("gru", x, w, variant="no_bhn")
    kept = rt.session(nodes.graph("gru", [[w]], H, variant=""))
    zeroed = rt.session(nodes.graph("gru", [[w]], H, variant="no_bhn"))
    zeros = {"initial_h": np.zeros((1, 3, H), np.float32)}
    assert max_err(kept.run({"x": x, **zeros})["y"], y_ref) > SHARP
    assert max_err(zeroed.run({"x": x, **zeros})["y"], y_ref) < ATOL


def test_sharp_on_transposed_kernels(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each gate's U block not transposed (U_g where ONNX wants U_gᵀ): square, so no shape error hides it."""
    real = nodes.node_weights

    def untransposed(cell: str, w: Any, variant: str = "", order: Any = None) -> tuple[np.ndarray, ...]:
        kernel, recurrent, bias = real(cell, w, variant, order)
        blocks = np.split(recurrent, recurrent.shape[0] // recurrent.shape[1])
        return kernel, np.ascontiguousarray(np.concatenate([blk.T for blk in blocks])), bias

    monkeypatch.setattr(nodes, "node_weights", untransposed)
    assert parity(rt, "rnn", "") > SHARP


def test_sharp_on_swapped_directions(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forward and backward directions' weights (and so state rows) swapped in a bidirectional node."""
    monkeypatch.setattr(nodes, "suffix", lambda layer, direction: refstack.suffix(layer, 1 - direction))
    w = stack_weights("lstm", "", 1, True)
    stack = nodes.OnnxStack("lstm", I, H, 1, True, rt)
    stack.import_weights(w)
    x = np.random.default_rng(0).normal(size=(3, 7, I)).astype(np.float32)
    assert max_err(stack.forward(x)[0], refstack.forward("lstm", x, w, None, 1, True)[0]) > SHARP
