"""The checks that judge a module against itself (`self_gradients`, `state_precision`,
benchmarks/conformance/selfgrad.py): the built-ins, the examples and the correct modules of
tests/ pass both; each planted defect of tests/planted_selfgrad.py (modules with parameters of their
own, no canonical weights) passes the six checks that ran on such a module before issue 24 and
fails a new one, with a message that names what is wrong."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from rnn_behaviour.benchmarks.conformance import Subject, run, selfgrad, skip_reason
from tests.conformance_subjects import adapter, check

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
NEW = ("self_gradients", "state_precision")
#: What ran on a module without canonical weights before issue 24.
BEFORE = ("streaming", "batch_independence", "causality", "caller_data", "bad_input", "determinism")
PLANTED = "torch:tests.planted_selfgrad:"
CORRECT = (
    "torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn",
    "torch:examples.lstm_loop:lstm_loop", "torch:examples.peephole:peephole", "torch:examples.mingru:mingru",
    "keras:examples.keras_cell:keras_cell", "torch:tests.handwritten:lstm", "torch:tests.handwritten:gru",
    "torch:tests.byo_factories:dict_state", "torch:tests.byo_factories:time_first_glued",
    "torch:tests.planted_rounding:log_scan_mingru", PLANTED + "slow_mingru",
)  # fmt: skip


def _marks(spec: str) -> Any:
    return needs_keras if spec.startswith("keras") else needs_torch


# --- correct modules pass ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", [pytest.param(s, marks=_marks(s)) for s in CORRECT])
def test_correct_modules_pass_the_checks_against_themselves(spec: str) -> None:
    gradients = check(spec, "self_gradients")
    assert gradients.passed, gradients.detail
    assert "directional derivatives" in gradients.detail and "initial state" in gradients.detail
    precision = check(spec, "state_precision")
    assert precision.passed and precision.value == 0, precision.detail


@needs_torch
def test_a_module_without_state_gets_self_gradients_without_the_initial_state_part() -> None:
    spec = "torch:tests.byo_factories:stateless"
    outcome = check(spec, "self_gradients")
    assert outcome.passed, outcome.detail
    assert "no initial-state part: rnn_behaviour_capabilities says state is off: its API runs whole" in outcome.detail
    mine = adapter(spec)
    reason = skip_reason("state_precision", mine.name, mine.capabilities, mine.capability_notes, mine)
    assert reason and "hands no state out" in reason


@needs_torch
def test_the_float32_path_passes_a_correct_module_and_still_catches_a_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a module has no float64 copy the check runs in float32, the gate widened to the
    module's own finite-difference noise: a correct module passes, a cut gradient still fails."""
    monkeypatch.setattr(selfgrad, "FORCE_FLOAT32", True)
    for spec in ("torch-lstm", PLANTED + "slow_mingru"):
        outcome = check(spec, "self_gradients")
        assert outcome.passed and "in float32" in outcome.detail, outcome.detail
    outcome = check(PLANTED + "cut_every_32", "self_gradients")
    assert not outcome.passed and "no gradient reaches steps 0..31 of 64 from the last output" in outcome.detail


@needs_keras
def test_a_keras_cell_that_computes_in_float32_under_a_float64_policy_runs_in_float32() -> None:
    """examples/keras_cell builds its cell without the RNN's dtype: its 'float64 copy' keeps
    float32 variables, so the check says so and judges it in float32 (no false alarm)."""
    outcome = check("keras:examples.keras_cell:keras_cell", "self_gradients")
    assert outcome.passed and "variables stay in float32" in outcome.detail, outcome.detail


# --- each planted defect: the old checks pass it, a new one fails it, named --------------------


@needs_torch
@pytest.mark.parametrize("factory", ["cut_every_32", "wrong_gate_backward", "half_state", "float32_state"])
def test_the_planted_defects_pass_the_checks_that_ran_before(factory: str) -> None:
    mine = adapter(PLANTED + factory)
    assert not mine.capabilities.weight_io, "a planted module must have no canonical weights"
    for name in BEFORE:
        outcome = check(PLANTED + factory, name)
        assert outcome.passed, f"{name}: {outcome.detail}"


@needs_torch
def test_a_gradient_cut_part_way_is_named() -> None:
    outcome = check(PLANTED + "cut_every_32", "self_gradients")
    assert not outcome.passed and outcome.value > 1e-2
    assert ". no gradient reaches steps 0..31 of 64 from the last output: autograd's d/dx there is exactly 0" in (
        outcome.detail
    )  # the first of the failures listed
    assert check(PLANTED + "cut_every_32", "state_precision").passed


@needs_torch
def test_a_sign_flipped_custom_backward_is_named() -> None:
    outcome = check(PLANTED + "wrong_gate_backward", "self_gradients")
    assert not outcome.passed and outcome.value > 1e-2
    assert "d/d gate.weight: autograd" in outcome.detail and "sign flipped" in outcome.detail
    assert "d/d candidate" not in outcome.detail.split(". ", 1)[1], "the candidate's gradients are right"


@needs_torch
def test_a_state_returned_in_float16_is_named() -> None:
    outcome = check(PLANTED + "half_state", "state_precision")
    assert not outcome.passed and outcome.value == 53 - 11  # the worst: its float64 copy too
    assert "the state comes back in float16 while the module computes in float32" in outcome.detail
    assert "drifts" in outcome.detail


@needs_torch
def test_a_float64_copy_returning_a_float32_state_is_named() -> None:
    outcome = check(PLANTED + "float32_state", "state_precision")
    assert not outcome.passed and outcome.value == 53 - 24
    assert "comes back in float32 while the module (its float64 copy) computes in float64" in outcome.detail
    gradients = check(PLANTED + "float32_state", "self_gradients")  # its gradients are right
    assert gradients.passed and "gate widened" in gradients.detail, gradients.detail


@needs_keras
def test_a_keras_cell_with_a_wrong_custom_gradient_fails_self_gradients() -> None:
    spec = "keras:tests.planted_selfgrad_keras:flipped_cell"
    for name in BEFORE:
        outcome = check(spec, name)
        assert outcome.passed, f"{name}: {outcome.detail}"
    outcome = check(spec, "self_gradients")
    assert not outcome.passed and outcome.value > 1e-2
    assert "d/d initial state[1]: autograd" in outcome.detail or "kernel: autograd" in outcome.detail, outcome.detail


def test_a_native_module_without_a_differentiable_form_is_skipped_with_the_reason() -> None:
    class Plain:
        framework = "fake"

    class Fake:
        capabilities = type("C", (), {"state": True})()

        def native_module(self, *_: Any) -> Plain:
            return Plain()

    for name in NEW:
        outcome = run(name, Subject("fake", Fake()))  # type: ignore[arg-type]
        assert outcome.skipped and "has no differentiable(dtype)" in outcome.skipped
