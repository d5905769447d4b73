"""The "same computation" gates tell float32 rounding from a different result (tasks/rounding.py):
a log-space scan whose chunked and whole paths differ only by rounding passes `streaming`, its
twin with the carried state off by 1e-4 fails with the float64 run's word; the built-ins keep
passing, also with the absolute gate lowered until their own rounding is over it."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.adapters import resolve
from rnn_behaviour.adapters.base import Adapter
from rnn_behaviour.benchmarks.conformance import Outcome, Subject, common, run
from rnn_behaviour.tasks.base import ModelSpec
from rnn_behaviour.tasks.rounding import FLOAT64_RTOL, Rounding, second_opinion
from rnn_behaviour.tasks.streams import Streams, feed_one_step_at_a_time

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None
SCAN, BUG = "torch:tests.planted_rounding:log_scan_mingru", "torch:tests.planted_rounding:state_bug_mingru"
TORCH = ("torch-lstm", "torch-gru", "torch-rnn", "torch:tests.handwritten:lstm", "torch:tests.handwritten:gru")
_LOADED: dict[str, Adapter] = {}
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def check(spec: str, name: str) -> Outcome:
    if spec not in _LOADED:
        _LOADED[spec] = resolve(spec).load()
    return run(name, Subject(spec, _LOADED[spec]))


def test_the_judgement() -> None:
    whole = np.ones((1, 3)) * 0.5
    agree = second_opinion(whole + 1e-5, whole, whole + 1e-14)
    assert agree.explains(2e-5) and "float32 rounding" in agree.describe(2e-5)
    assert not agree.explains(1e-3) and "over 10x the model's own float32 error" in agree.describe(1e-3)
    differ = second_opinion(whole + 1e-5, whole, whole * (1 + 1e-4))
    assert differ.gap64 > FLOAT64_RTOL and not differ.explains(1e-5) and "differs too" in differ.describe(1e-5)
    narrow = second_opinion(whole, whole.astype(np.float32), whole)
    assert not narrow.explains(0.0) and "does not compute in float64" in narrow.describe(0.0)
    assert not Rounding(why_not="no twin").explains(0.0)


@needs_torch
class TestPlantedScan:
    def test_the_scan_differs_by_rounding_only(self) -> None:
        """The planted module is what it claims: over the absolute gate in float32, ~1e-14 in float64."""
        model = resolve(SCAN).load().build(ModelSpec(3, 3, 8, return_sequences=True), 11)
        x = np.random.default_rng(0).normal(0.0, 1.0, (2, 20, 3)).astype(np.float32)
        gaps = []
        for m in (model, model.float64_twin()):
            gaps.append(float(np.abs(feed_one_step_at_a_time(m, x, carry=True) - m.predict(x)[0]).max()))
        assert gaps[0] > common.SAME_COMPUTATION_ATOL and gaps[1] < 1e-12, gaps

    def test_the_scan_passes_streaming_as_rounding(self) -> None:
        outcome = check(SCAN, "streaming")
        assert outcome.passed, outcome.detail
        assert outcome.value > common.SAME_COMPUTATION_ATOL, "the case no longer needs the float64 run"
        assert "are float32 rounding" in outcome.detail and outcome.extras["rounding_gap_float64"] < 1e-12
        assert outcome.threshold is not None and outcome.value <= outcome.threshold

    def test_the_scan_passes_batch_independence_as_rounding(self) -> None:
        outcome = check(SCAN, "batch_independence")
        assert outcome.passed and outcome.value > common.SAME_COMPUTATION_ATOL, outcome.detail
        assert "are float32 rounding" in outcome.detail

    def test_the_state_bug_fails_streaming_with_the_float64_runs_word(self) -> None:
        outcome = check(BUG, "streaming")
        assert not outcome.passed
        assert "not rounding: the float64 run differs too" in outcome.detail, outcome.detail

    @pytest.mark.parametrize("name", ["streaming", "batch_independence"])
    def test_the_scan_and_the_torch_builtins_pass_with_the_gate_at_1e_8(
        self, monkeypatch: pytest.MonkeyPatch, name: str
    ) -> None:
        """With the absolute gate far below their float32 rounding, every gap goes to the float64
        run: each torch built-in, the hand-written modules and the scan pass on it, the bug fails."""
        monkeypatch.setattr(common, "SAME_COMPUTATION_ATOL", 1e-8)
        for spec in (*TORCH, SCAN):
            outcome = check(spec, name)
            assert outcome.passed, f"{spec}: {outcome.detail}"
        if name == "streaming":
            assert not check(BUG, name).passed

    def test_dropped_and_stale_states_still_fail(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import torch

        from tests import planted_rounding as planted

        for bug, word in (("dropped", "dropped"), ("stale", "differs too")):

            def carried(self: Any, state: Any, bug: str = bug) -> Any:
                return torch.zeros_like(state) if bug == "dropped" else state.detach().roll(1, dims=0)

            monkeypatch.setattr(planted.StateBugMinGRU, "carried", carried)
            _LOADED.pop(BUG, None)
            outcome = check(BUG, "streaming")
            assert not outcome.passed and word in outcome.detail, outcome.detail


@needs_torch
def test_online_equals_offline_judges_rounding_by_the_float64_twin() -> None:
    """The behaviour check on an untrained model: the scan's gap over 1e-5 passes as rounding, the
    state bug's fails; a model without a twin keeps the absolute gate."""
    task = Streams()
    data = task.generate(np.random.default_rng(0), "smoke")
    spec = ModelSpec(8, 8, 32, return_sequences=True, stateful=True, batch_size=400)
    scan = resolve(SCAN).load().build(spec, 0)
    result = task.evaluate("online_equals_offline", scan, data, "smoke")
    assert result.passed and result.value > 1e-5 and "float32 rounding" in result.detail, result
    assert result.threshold is not None and result.value <= result.threshold  # the record shows the gate it met
    bug = task.evaluate("online_equals_offline", resolve(BUG).load().build(spec, 0), data, "smoke")
    assert not bug.passed and "differs too" in bug.detail and bug.threshold is None, bug

    class NoTwin:
        def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
            return scan.predict(x, state)

    plain = task.evaluate("online_equals_offline", NoTwin(), data, "smoke")
    assert not plain.passed and "no float64 run" in plain.detail, plain


@pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
def test_a_keras_model_has_no_twin_and_keeps_the_absolute_gate_a_bare_layer_has_one() -> None:
    from rnn_behaviour.benchmarks.conformance.common import Runner

    model = resolve("keras:tests.byo_keras_factories:memory_state", "memory_state").load()
    assert not model.capabilities.weight_io
    assert isinstance(Runner(Subject("memory_state", model), 3, 8, 11).float64_twin(), str)
    twin = Runner(Subject("keras-gru", resolve("keras-gru").load()), 3, 8, 11).float64_twin()
    assert callable(twin)  # the float64 dtype policy (issue 24)
    y, _final = twin(np.zeros((2, 4, 3), np.float32))
    assert y.dtype == np.float64
