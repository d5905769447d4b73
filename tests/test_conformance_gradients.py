"""The backward checks (`gradients`, `chunked_gradients`), the canonical layout's two biases and the
GRU's reset-before variant: the built-ins and the hand-written LSTM/GRU pass, each planted defect of
tests/planted_gradients.py fails the check it must with a message that names what is wrong."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.benchmarks.conformance import CHECKS, Subject, counterpart_skip, run
from rnn_behaviour.tasks.base import ModelSpec
from tests import fake_layers
from tests.conformance_subjects import adapter, check

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
BACKWARD = ("gradients", "chunked_gradients")
PLANTED = "torch:tests.planted_gradients:"
RESET_BEFORE = "keras:rnn_behaviour.adapters.on_keras.model:gru_reset_before"

# --- the reference's own layers ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ref.CELLS)
@pytest.mark.parametrize("name", BACKWARD)
def test_the_reference_passes_the_backward_checks(kind: str, name: str) -> None:
    layers = type("Ref", (fake_layers.FakeLayers,), {"cell": kind})()
    outcome = run(name, Subject("ref", layers))
    assert outcome.passed and outcome.value < 1e-12, outcome.detail


def test_a_stateless_fake_fails_the_chunked_gradients() -> None:
    outcome = run("chunked_gradients", Subject("stateless", fake_layers.StatelessLSTM()))
    assert not outcome.passed and "chained through the carried state" in outcome.detail


# --- built-ins and the hand-written modules pass -----------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=needs_keras if s.startswith("keras") else needs_torch)
        for s in ("torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn",
                  "torch:tests.handwritten:lstm", "torch:tests.handwritten:gru")
    ],
)  # fmt: skip
def test_builtins_and_handwritten_modules_pass_the_backward_checks(spec: str) -> None:
    for name in BACKWARD:
        outcome = check(spec, name)
        assert outcome.passed, outcome.detail


# --- each planted defect fails the right check, named ------------------------------------------


@needs_torch
@pytest.mark.parametrize(
    ("factory", "words"),
    [
        ("time_reversed", "upstream gradient reversed in time"),
        ("batch_shuffled", "upstream gradient's batch rows shuffled"),
        ("detached_initial_state", "no gradient reaches the initial state"),
        ("cut_carried_gradient", "the final state the layer returns carries no gradient back"),
    ],
)
def test_a_wrong_backward_with_an_exact_forward_fails_gradients_named(factory: str, words: str) -> None:
    assert check(PLANTED + factory, "forward_parity").passed, "the planted defect is in the backward pass only"
    outcome = check(PLANTED + factory, "gradients")
    assert not outcome.passed and outcome.value > 1e-2
    assert words in outcome.detail and "d/d" in outcome.detail and "off by" in outcome.detail
    if factory == "detached_initial_state":
        assert "d/d initial c off by" in outcome.detail and "d/d initial h off by" in outcome.detail


@needs_torch
@pytest.mark.parametrize("factory", ["detached_initial_state", "cut_carried_gradient", "time_reversed"])
def test_a_gradient_lost_across_chunks_fails_chunked_gradients(factory: str) -> None:
    outcome = check(PLANTED + factory, "chunked_gradients")
    assert not outcome.passed and outcome.value > 1e-2
    assert (
        "chained through the carried state" in outcome.detail and "differ from the whole sequence's" in outcome.detail
    )


@needs_torch
@pytest.mark.parametrize(
    ("factory", "parity_words"),
    [
        ("drops_bias_hh", "without the recurrent bias bh (PyTorch's bias_hh is not used)"),
        ("doubles_bias_hh", "the recurrent bias bh doubled"),
        ("gru_drops_bias_hh", "without the recurrent bias bh"),
    ],
)
def test_a_misused_bias_hh_fails_parity_and_gradients_named(factory: str, parity_words: str) -> None:
    parity = check(PLANTED + factory, "forward_parity")
    assert not parity.passed and parity_words in parity.detail
    outcome = check(PLANTED + factory, "gradients")
    assert not outcome.passed and "d/d bh_" in outcome.detail
    if "drops" in factory:
        assert "bh gets no gradient" in outcome.detail


# --- the two biases move between frameworks -----------------------------------------------------


@needs_torch
def test_torch_exports_both_biases_and_imports_them_apart() -> None:
    layer = adapter("torch-lstm").build_layer(3, 4, 0)
    exported = layer.export_weights()
    params = dict(layer.module.named_parameters())
    np.testing.assert_array_equal(exported["bh_f"], params["bias_hh_l0"].detach().numpy()[4:8])
    weights = ref.rounded(ref.random_weights("lstm", 3, 4, np.random.default_rng(0)))
    layer.import_weights(weights)
    np.testing.assert_array_equal(params["bias_hh_l0"].detach().numpy()[:4], weights["bh_i"])
    np.testing.assert_array_equal(params["bias_ih_l0"].detach().numpy()[:4], weights["b_i"])


@needs_torch
@needs_keras
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_a_whole_model_moves_from_torch_into_keras_folding_bias_hh(cell: str) -> None:
    spec = ModelSpec(input_size=2, output_size=3, hidden_size=5, input_projection=4, return_sequences=True)
    torch_adapter, keras_adapter = adapter(f"torch-{cell}"), adapter(f"keras-{cell}")
    source, target = torch_adapter.build(spec, 0), keras_adapter.build(spec, 1)
    weights = torch_adapter.export_model(source)
    assert "rnn.bh_h" in weights or "rnn.bh_i" in weights
    keras_adapter.import_model(target, weights)
    assert not ref.has_recurrent_bias(
        {k.removeprefix("rnn."): v for k, v in keras_adapter.export_model(target).items()}
    )
    x = np.random.default_rng(1).normal(size=(2, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(target.predict(x)[0], source.predict(x)[0], atol=1e-5)
    back = torch_adapter.build(spec, 2)
    torch_adapter.import_model(back, keras_adapter.export_model(target))
    np.testing.assert_allclose(back.predict(x)[0], source.predict(x)[0], atol=1e-5)


@needs_torch
def test_a_canonical_export_without_bh_gets_folded_weights_and_passes() -> None:
    spec = PLANTED + "folded_lstm"
    assert adapter(spec).capabilities.weight_io and not adapter(spec).info.recurrent_bias
    for name in ("forward_parity", "round_trip", "gate_order", *BACKWARD):
        outcome = check(spec, name)
        assert outcome.passed, outcome.detail


# --- the GRU's reset-before variant ---------------------------------------------------------------


@needs_keras
def test_a_reset_before_keras_gru_is_checked_in_its_variant_and_labelled() -> None:
    gru = adapter(RESET_BEFORE)
    assert gru.capabilities.weight_io and gru.cell == "gru" and gru.variant == "reset_before"
    assert gru.compute_path()["variant"] == "reset_before"
    # every check that reads the weights, each against the reset-before reference
    weight_checks = [c.name for c in CHECKS if "weight_io" in c.needs and "counterpart" not in c.needs]
    assert {"regimes", "variable_length", "low_precision", "stacked", "bidirectional"} <= set(weight_checks)
    for name in weight_checks:
        outcome = check(RESET_BEFORE, name)
        assert outcome.passed and not outcome.skipped, f"{name}: {outcome.detail} {outcome.skipped}"
        assert outcome.detail.startswith("[reset_before GRU] ")
    assert "bh_z" not in gru.build_layer(3, 4, 0).export_weights()


@needs_keras
def test_a_transplant_between_the_two_gru_forms_is_skipped_with_the_reason() -> None:
    reason = counterpart_skip(adapter(RESET_BEFORE), adapter("keras-gru"))
    assert reason is not None and "reset_before" in reason and "compute differently on any weights" in reason
    assert counterpart_skip(adapter("keras-gru"), adapter("keras-gru")) is None


def test_a_gru_in_the_other_form_than_it_claims_is_diagnosed() -> None:
    before = run("forward_parity", Subject("claims_after", fake_layers.ResetBeforeGRULayers()))
    assert not before.passed and "it is the reset-before GRU" in before.detail
    after = run("forward_parity", Subject("claims_before", fake_layers.ResetAfterClaimsBeforeGRU()))
    assert not after.passed and "it is the reset-after GRU" in after.detail and "reset_before" in after.detail
    assert run("forward_parity", Subject("ok", fake_layers.ReferenceResetBeforeGRU())).passed
