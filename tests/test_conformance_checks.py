"""The conformance checks catch what they are for, say what is wrong, and pass the reference.

Layers come from tests/fake_layers.py (the float64 reference, exact or broken on purpose), so no
framework is needed; `benchmarks/test_conformance.py` runs the same checks on the built-ins.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.base import AdapterError, Capabilities, FitLog
from rnn_behaviour.benchmarks import conformance
from rnn_behaviour.benchmarks.conformance import SWAP_MARGIN, Outcome, Subject, robustness, run
from rnn_behaviour.reports.results import load
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split
from tests import fake_layers

ROOT = Path(__file__).resolve().parent.parent
LAYER_CHECKS = (
    "forward_parity", "round_trip", "gate_order", "streaming", "batch_independence", "causality", "gradients",
)  # fmt: skip


def check(adapter: Any, name: str) -> Outcome:
    return run(name, Subject(adapter.name, adapter))


def fake(layer: type[ref.ReferenceLayer], kind: str = "lstm", **attrs: Any) -> fake_layers.FakeLayers:
    cls = type(layer.__name__, (fake_layers.FakeLayers,), {"layer": layer, "cell": kind, **attrs})
    return cls()


@pytest.mark.parametrize("kind", ref.CELLS)
@pytest.mark.parametrize("name", LAYER_CHECKS)
def test_the_reference_passes_every_layer_check(kind: str, name: str) -> None:
    outcome = check(fake(ref.ReferenceLayer, kind), name)
    assert outcome.passed, outcome.detail
    assert outcome.value <= 1e-12 or name == "gradients"
    if name == "gate_order" and kind != "rnn":
        assert outcome.extras["closest_swap_error"] > SWAP_MARGIN


def test_swapped_gates_fail_parity_by_more_than_the_margin_and_are_named() -> None:
    swapped = fake_layers.SwappedLSTM()
    parity = check(swapped, "forward_parity")
    assert not parity.passed and parity.value > SWAP_MARGIN
    assert "the gates permuted (i reads f, f reads i)" in parity.detail
    assert "canonical gate order i, f, g, o" in parity.detail
    canary = check(swapped, "gate_order")
    assert not canary.passed and canary.value > SWAP_MARGIN and "i reads f, f reads i" in canary.detail
    gradients = check(swapped, "gradients")
    assert (
        not gradients.passed and "off by" in gradients.detail and "the forward pass already differs" in gradients.detail
    )
    for name in ("streaming", "batch_independence", "causality", "round_trip"):
        assert check(swapped, name).passed, f"{name} is not about gate order"


@pytest.mark.parametrize(("kind", "order"), [(k, o) for k in ("lstm", "gru") for o in ref.gate_permutations(k)])
def test_every_gate_order_fails_the_canary_by_more_than_the_margin(kind: str, order: tuple[str, ...]) -> None:
    layer = type("Permuted", (fake_layers.SwappedGates,), {"order": order})
    outcome = check(fake(layer, kind), "gate_order")
    assert not outcome.passed and outcome.value > SWAP_MARGIN
    assert ref.describe_permutation(kind, order) in outcome.detail


def test_a_layer_that_drops_the_carried_state_fails_streaming_and_parity() -> None:
    stateless = fake_layers.StatelessLSTM()
    streaming = check(stateless, "streaming")
    assert not streaming.passed and streaming.value > 1e-2
    assert "with the carried state, the output differs from the whole sequence's" in streaming.detail
    assert "the state passed in is dropped" in streaming.detail
    parity = check(stateless, "forward_parity")
    assert not parity.passed and "the initial state passed in is ignored" in parity.detail


def test_other_classic_mistakes_are_named() -> None:
    gru = check(fake_layers.ResetBeforeGRULayers(), "forward_parity")
    assert not gru.passed and "reset-before GRU" in gru.detail
    transposed = check(fake_layers.TransposedLSTM(), "forward_parity")
    assert not transposed.passed and "recurrent kernel transposed" in transposed.detail
    assert "the first step matches" not in transposed.detail


def test_variable_length_passes_masking_and_fails_padding_read_as_data() -> None:
    assert check(fake_layers.MaskingLSTM(), "variable_length").passed
    outcome = check(fake_layers.PaddingAsDataLSTM(), "variable_length")
    assert not outcome.passed and "padded to T=12" in outcome.detail
    assert "padding included (h_T), not the one at its last valid step 5" in outcome.detail


def test_missing_capabilities_are_skip_reasons() -> None:
    plain = Capabilities()
    assert "Capabilities.weight_io is False" in str(conformance.skip_reason("forward_parity", "mine", plain))
    with_weights = Capabilities(weight_io=True)
    assert "no variable-length support" in str(conformance.skip_reason("variable_length", "mine", with_weights))
    notes = {"variable_length": "its module does not take a PackedSequence"}
    reason = conformance.skip_reason("variable_length", "mine", with_weights, notes)
    assert reason == "mine: no variable-length check: its module does not take a PackedSequence"
    assert "Capabilities.native_module is False" in str(conformance.skip_reason("caller_data", "mine", plain))
    assert conformance.skip_reason("streaming", "mine", plain) is None
    assert conformance.counterpart_name(fake_layers.ReferenceLSTM()) == "torch-lstm"


def _named(name: str, cell: str = "lstm", variant: str = "") -> SimpleNamespace:
    return SimpleNamespace(name=name, cell=cell, variant=variant)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_transplant_counterparts_go_round_the_triangle_and_fall_back_past_a_missing_one(cell: str) -> None:
    """torch -> keras -> flax -> torch first; then the one after (taken when the next one's
    framework is missing or the run leaves it out: benchmarks/test_conformance.py's fixture)."""
    assert conformance.TRIANGLE == ("torch", "keras", "flax")
    for own, following, after in (("torch", "keras", "flax"), ("keras", "flax", "torch"), ("flax", "torch", "keras")):
        names = conformance.counterpart_names(_named(f"{own}-{cell}", cell))
        assert names == [f"{following}-{cell}", f"{after}-{cell}"]
        assert conformance.counterpart_name(_named(f"{own}-{cell}", cell)) == f"{following}-{cell}"
    # A user adapter: torch's built-in, then keras's, then flax's.
    assert conformance.counterpart_names(_named("mine", cell)) == [f"torch-{cell}", f"keras-{cell}", f"flax-{cell}"]
    assert conformance.counterpart_name(_named("mine", "mingru")) is None  # a cell the reference does not know


def test_a_default_and_a_no_bhn_gru_can_transplant_but_two_forms_that_compute_differently_cannot() -> None:
    torch_gru, flax_gru = _named("torch-gru", "gru"), _named("flax-gru", "gru", "no_bhn")
    assert conformance.counterpart_skip(torch_gru, flax_gru) is None  # each direction judged where it holds
    assert conformance.counterpart_skip(flax_gru, torch_gru) is None
    reason = conformance.counterpart_skip(_named("keras-gru-rb", "gru", "reset_before"), torch_gru)
    assert reason == (
        "no transplant between keras-gru-rb (reset_before) and torch-gru (reset_after, the default form): the two "
        "forms of the gru compute differently on any weights, so none can move across"
    )
    assert conformance.counterpart_skip(torch_gru, _named("keras-gru-rb", "gru", "reset_before")) is not None
    assert conformance.counterpart_skip(flax_gru, _named("keras-gru-rb", "gru", "reset_before")) is not None
    assert conformance.counterpart_skip(_named("torch-lstm"), _named("flax-lstm")) is None


def _clean(x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
    x = np.asarray(x)
    if x.shape[-1] != 3:
        raise AdapterError(f"input has {x.shape[-1]} features; expected 3")
    if x.shape[1] == 0:
        raise AdapterError("input is empty")
    if state is not None and np.shape(state)[0] != len(x):
        raise AdapterError("state has the wrong batch size")
    return np.cumsum(x, axis=1), x[:, -1]


def test_bad_input_judgement(monkeypatch: pytest.MonkeyPatch) -> None:
    judged = {case.name: robustness._judge(case) for case in robustness._bad_cases(_clean, 3)}
    assert all(ok for ok, _ in judged.values()), judged
    assert all("consider a clearer one" not in note for _, note in judged.values()), judged

    def obscure(x: np.ndarray, state: Any = None) -> Any:
        return np.zeros((len(x), 5, 3)) @ np.zeros((4, 2)), None

    def case(name: str, call: Any, behaviour: Any = None) -> tuple[bool, str]:
        return robustness._judge(robustness.BadCase(name, call, ("feature",), "the feature size", behaviour))

    ok, note = case("wrong features", lambda: obscure(np.zeros((2, 5, 4))))
    assert ok, "raising any error is right"
    assert "raised ValueError: matmul" in note and "(the message does not name the feature size: consider" in note
    ok, note = case("wrong state", lambda: (np.zeros((2, 5, 3)), None))
    assert not ok and "accepted silently (no error; it returned y of shape (2, 5, 3))" in note
    nan_x = np.zeros((2, 5, 3))
    nan_x[0, 2, 0] = np.nan
    nan_case = next(c for c in robustness._bad_cases(_clean, 3) if c.name.startswith("NaN"))
    for forward, problem in (
        (lambda x: (np.nan_to_num(np.cumsum(x, axis=1)), None), "was swallowed"),
        (lambda x: (np.cumsum(x, axis=1) + np.sum(x), None), "NaN in row 0 spread to other rows"),
        (lambda x: (np.cumsum(x, axis=1)[:, ::-1], None), "made earlier outputs non-finite"),
    ):
        ok, note = robustness._judge(robustness.BadCase("NaN", lambda f=forward: f(nan_x), (), "", nan_case.behaviour))
        assert not ok and problem in note, note
    monkeypatch.setattr(robustness, "HANG_SECONDS", 0.05)
    ok, note = case("NaN", lambda: time.sleep(1))
    assert not ok and "no answer in 0.05 s" in note


def test_an_errors_gist_drops_tensorflows_wrapping() -> None:
    message = (
        "Exception encountered when calling LSTMCell.call().\n\n\x1b[1m{{function_node __wrapped__AddV2}} "
        "Incompatible shapes: [2,16] vs. [3,16] [Op:AddV2] name: \x1b[0m\n\nArguments received by LSTMCell.call():"
    )
    assert robustness.gist(ValueError(message)) == "ValueError: Incompatible shapes: [2,16] vs. [3,16]"


class _Model:
    n_params = 1

    def __init__(self, seed: int, noisy: bool) -> None:
        self.w, self.noisy = np.random.default_rng(seed).normal(size=(3, 2)), noisy

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        noise = np.random.default_rng().normal(scale=1e-3) if self.noisy else 0.0
        self.w = self.w + 0.1 + noise
        return FitLog(epochs=1, loss_history=[float(self.w.sum())])

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return np.asarray(x) @ self.w, None


class _Trains:
    name, framework, capabilities, noisy = "trains", "numpy", Capabilities(), False

    def build(self, spec: ModelSpec, seed: int) -> _Model:
        return _Model(seed, self.noisy)


def test_determinism_fails_unseeded_training() -> None:
    assert check(_Trains(), "determinism").passed
    noisy = _Trains()
    noisy.noisy = True
    outcome = check(noisy, "determinism")
    assert not outcome.passed and outcome.value > 0


def test_conformance_items_in_the_plugin(pytester: pytest.Pytester) -> None:
    """Ids, pass/fail/skip with reasons, the failure message and the records in results.json."""
    report_dir = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        str(ROOT / "benchmarks" / "test_conformance.py"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
        "--report-dir", str(report_dir), "-p", "no:cacheprovider", "-v",
        "--adapter", "swapped=tests.fake_layers:SwappedLSTM", "--adapter", "oracle=tests.fakes:CountingOracle",
        "-k", "(swapped- or oracle-) and (forward_parity or streaming or variable_length)",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1, skipped=3)
    out = result.stdout.str()
    assert "test_conformance[swapped-forward_parity] FAILED" in out
    assert "test_conformance[oracle-streaming] PASSED" in out
    assert "swapped failed conformance.forward_parity (seed 0): max_abs_err_vs_reference = " in out
    assert "(tolerance 1e-05)" in out and "the gates permuted (i reads f, f reads i)" in out
    assert f"conformance v{conformance.VERSION}  forward_parity" in out
    records = {(r["adapter"], r["check"]): r for r in load(report_dir / "results.json")["results"]}
    checks = ("forward_parity", "streaming", "variable_length")
    assert set(records) == {(a, c) for a in ("swapped", "oracle") for c in checks}
    parity = records[("swapped", "forward_parity")]
    assert parity["outcome"] == "failed" and parity["value"] > SWAP_MARGIN and parity["threshold"] == 1e-5
    assert parity["task"] == "conformance" and parity["compute_path"] == {"device": "cpu"}
    assert records[("oracle", "streaming")]["outcome"] == "passed"
    assert "on the model (no bare layer" in records[("oracle", "streaming")]["detail"]
    skipped = records[("oracle", "forward_parity")]
    assert skipped["outcome"] == "skipped" and "Capabilities.weight_io is False" in skipped["reason"]
    assert "no variable-length support" in records[("swapped", "variable_length")]["reason"]


class _OneModel:
    """An adapter with a model only, whose predict is `predict`."""

    name, framework = "one", "numpy"
    capabilities = Capabilities()

    def __init__(self, predict: Any) -> None:
        self.predict = predict

    def build(self, spec: ModelSpec, seed: int) -> Any:
        return type("M", (), {"n_params": 1, "predict": staticmethod(self.predict)})()


def test_bad_input_gives_a_verdict_when_the_good_input_fails_or_a_case_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(x: np.ndarray, state: Any = None) -> Any:
        raise RuntimeError("kernel not built")

    outcome = run("bad_input", Subject("broken", _OneModel(broken)))  # type: ignore[arg-type]
    assert not outcome.passed and "a good input (a batch of 3) raised RuntimeError: kernel not built" in outcome.detail

    def hangs(x: np.ndarray, state: Any = None) -> Any:
        if len(x) != 3:
            time.sleep(0.5)
        return np.zeros((len(x), x.shape[1], 2)), np.zeros((len(x), 2))

    monkeypatch.setattr(robustness, "HANG_SECONDS", 0.05)
    outcome = run("bad_input", Subject("hangs", _OneModel(hangs)))  # type: ignore[arg-type]
    assert not outcome.passed and "no answer in 0.05 s" in outcome.detail
    assert outcome.detail.count("not run, the model hung on an earlier case") == 3
