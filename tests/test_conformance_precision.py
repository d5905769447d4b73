"""`low_precision`, `stacked` and `bidirectional` pass the built-ins and the correct hand-written
modules, and catch the planted defects of tests/planted_precision.py with a message that says
what is wrong; a check that cannot run is a skip with its reason, in the plugin's records too."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rnn_behaviour.adapters import reference_stack as rs
from rnn_behaviour.adapters import resolve
from rnn_behaviour.adapters.base import Adapter
from rnn_behaviour.benchmarks.conformance import Outcome, Subject, run
from rnn_behaviour.benchmarks.conformance.precision import round_to
from rnn_behaviour.reports.results import load

ROOT = Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None
INSTALLED = {"torch": HAS_TORCH, "keras": HAS_KERAS}
BUILTINS = [
    pytest.param(name, marks=pytest.mark.skipif(not INSTALLED[name.split("-")[0]], reason="framework not installed"))
    for name in ("torch-lstm", "torch-gru", "torch-rnn", "keras-lstm", "keras-gru", "keras-rnn")
]
CHECKS = ("low_precision", "stacked", "bidirectional")
PLANTED = "torch:tests.planted_precision"
_LOADED: dict[str, Adapter] = {}


def check(spec: str, name: str) -> Outcome:
    if spec not in _LOADED:
        _LOADED[spec] = resolve(spec).load()
    return run(name, Subject(spec, _LOADED[spec]))


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("builtin", BUILTINS)
def test_every_builtin_passes(builtin: str, name: str) -> None:
    outcome = check(builtin, name)
    assert outcome.passed and not outcome.skipped, outcome.detail
    if name == "low_precision":  # both dtypes ran (Keras bfloat16 through mixed_bfloat16), with margin
        assert "float16:" in outcome.detail and "bfloat16" in outcome.detail and "skipped" not in outcome.detail
        assert outcome.value < 0.5, outcome.detail
    else:
        assert outcome.value < 1e-6, outcome.detail


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
class TestHandWritten:
    def test_the_hand_written_lstm_and_gru_pass_low_precision_and_skip_stacks_with_the_reason(self) -> None:
        for cell in ("lstm", "gru"):
            spec = f"torch:tests.handwritten:{cell}"
            outcome = check(spec, "low_precision")
            assert outcome.passed and not outcome.skipped, outcome.detail
            for name, keyword in (("stacked", "num_layers"), ("bidirectional", "bidirectional")):
                skipped = check(spec, name)
                assert f"takes no {keyword} keyword" in skipped.skipped

    def test_a_correct_hand_written_stack_passes(self) -> None:
        for name in ("forward_parity", *CHECKS):
            outcome = check(f"{PLANTED}:hand_stack_lstm", name)
            assert outcome.passed and not outcome.skipped, f"{name}: {outcome.detail}"

    def test_a_float32_overflow_guard_fails_in_float16_only(self) -> None:
        spec = f"{PLANTED}:float32_guard_lstm"
        assert check(spec, "forward_parity").passed
        outcome = check(spec, "low_precision")
        assert not outcome.passed and outcome.value == float("inf")
        assert "FAIL float16: output h_t at step" in outcome.detail and "is nan" in outcome.detail
        assert "not finite where the reference is: an overflow or 0/0 in float16" in outcome.detail
        assert "saturating weights" in outcome.detail and "FAIL bfloat16" not in outcome.detail
        assert outcome.extras["bfloat16_of_tolerance"] < 0.5

    def test_a_dtype_that_runs_then_raises_fails_rather_than_skips(self) -> None:
        outcome = check(f"{PLANTED}:half_crashes_on_long_input", "low_precision")
        assert not outcome.passed and not outcome.skipped, outcome.detail
        assert "float16: a forward raised RuntimeError: half kernel: tile index out of range" in outcome.detail

    def test_layer_1_from_layer_0s_initial_state_fails_stacked(self) -> None:
        spec = f"{PLANTED}:shared_initial_state_stack"
        assert check(spec, "forward_parity").passed
        outcome = check(spec, "stacked")
        assert not outcome.passed and outcome.value > 1e-2
        assert "final h row 1 (layer 1) off by" in outcome.detail
        assert "layer 1 starts from layer 0's rows of the initial state, not its own (row 1)" in outcome.detail
        bidirectional = check(spec, "bidirectional")
        assert not bidirectional.passed and "not its own (rows 2, 3)" in bidirectional.detail

    def test_backward_outputs_left_unreversed_fail_bidirectional_only(self) -> None:
        spec = f"{PLANTED}:unreversed_backward_stack"
        assert check(spec, "stacked").passed
        outcome = check(spec, "bidirectional")
        assert not outcome.passed and outcome.value > 1e-2
        assert "backward half of the outputs off by" in outcome.detail
        assert "the backward direction's outputs are not reversed back" in outcome.detail

    def test_round_to_matches_torchs_conversion(self) -> None:
        import torch

        x = np.random.default_rng(0).normal(0.0, 3.0, 10_000).astype(np.float32)
        x[:4] = [1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 65519.0]  # ties to even, float16 overflow
        for dtype in ("float16", "bfloat16"):
            expected = torch.from_numpy(x).to(getattr(torch, dtype)).double().numpy()
            np.testing.assert_array_equal(round_to(x, dtype), expected)


def test_the_stack_reference_composes_the_one_layer_reference() -> None:
    """One forward layer of the stack is the reference; the backward direction of a
    palindromic input run from the same state is the forward one reversed in time."""
    g = np.random.default_rng(3)
    w = rs.random_stack_weights("gru", 3, 4, 1, True, g)
    w["l0_reverse"] = w["l0"]
    x = g.normal(0.0, 1.0, (2, 5, 3))
    x = np.concatenate([x, x[:, ::-1]], axis=1)
    state = np.repeat(rs.random_stack_state("gru", 2, 4, 1, False, g), 2, axis=0)
    y, final = rs.forward("gru", x, w, state, 1, True)
    np.testing.assert_allclose(y[..., 4:], y[:, ::-1, :4])
    np.testing.assert_allclose(final[0], final[1])
    with pytest.raises(ValueError, match="missing l1"):
        rs.check_stack_weights("gru", 3, 4, 2, False, {"l0": w["l0"]})


def test_a_check_that_cannot_run_is_a_skip_with_its_reason(pytester: pytest.Pytester) -> None:
    """The NumPy fake's build_layer takes no dtype and it has no build_stack: skipped, in the
    terminal and in results.json, with the reason."""
    report_dir = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        str(ROOT / "benchmarks" / "test_conformance.py"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
        "--report-dir", str(report_dir), "-p", "no:cacheprovider", "-v", "-rs",
        "--adapter", "ref=tests.fake_layers:ReferenceLSTM",
        "-k", "ref- and (low_precision or stacked or bidirectional)",
    )  # fmt: skip
    result.assert_outcomes(skipped=3)
    out = result.stdout.str()
    assert "takes no dtype keyword" in out and "the adapter has no build_stack()" in out
    records = {r["check"]: r for r in load(report_dir / "results.json")["results"]}
    assert set(records) == set(CHECKS)
    assert all(r["outcome"] == "skipped" for r in records.values())
    assert "float32 only" in records["low_precision"]["reason"]
    assert "no build_stack()" in records["bidirectional"]["reason"]
