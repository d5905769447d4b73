"""Bring your own RNN: `--adapter` specs, the load-time probe's errors, and the examples.

In-process and fast: each example is built, run on a small batch and fed in chunks with its own
state; each way a spec or a factory can be wrong gives one AdapterError naming it. The plugin
end of it (usage error, ids, entry points) runs in a pytester subprocess, collection only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rnn_behaviour.adapters import BUILTINS, AdapterError, default_name, resolve
from rnn_behaviour.benchmarks.conformance import Subject, skip_reason
from rnn_behaviour.benchmarks.conformance.gradients import gradients
from rnn_behaviour.benchmarks.conformance.weights import round_trip
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.counting import RunningSum, StateReset

ROOT = Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None
HAS_JAX = all(importlib.util.find_spec(m) is not None for m in ("jax", "flax", "optax"))
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")

#: Every example: spec, whether weight conformance runs on it, its cell when it does.
EXAMPLES = {
    "lstm_loop": ("torch:examples.lstm_loop:lstm_loop", "lstm"),
    "peephole": ("torch:examples.peephole:peephole", None),
    "mingru": ("torch:examples.mingru:mingru", None),
    "keras_cell": ("keras:examples.keras_cell:keras_cell", "lstm"),
    "forgets_state": ("torch:examples.forgets_state:forgets_state", "gru"),
    "jax_lstm": ("jax:examples.jax_lstm:jax_lstm", "lstm"),
}


# --- spec grammar ------------------------------------------------------------------------------


def test_factory_specs_name_the_row_after_the_factory() -> None:
    ref = resolve("torch:examples.peephole:peephole")
    assert (ref.name, ref.framework, ref.target) == (
        "peephole",
        "torch",
        "rnn_behaviour.adapters.on_torch.model:TorchAdapter",
    )
    assert ref.kwargs == {"factory": "examples.peephole:peephole", "name": "peephole"} and not ref.builtin
    assert resolve("mine=keras:examples.keras_cell:keras_cell").name == "mine"
    assert resolve("keras:examples.keras_cell:keras_cell").framework == "keras"
    assert default_name("mypkg.rnn.peephole:build") == "peephole"
    assert default_name("mypkg.rnn:Factory") == "rnn"
    assert resolve("tests.fakes:CountingOracle").framework == "user"


def test_the_builtins_are_factories_too() -> None:
    assert BUILTINS["torch-gru"].kwargs["factory"] == "rnn_behaviour.adapters.on_torch.model:gru"
    assert BUILTINS["keras-rnn"].kwargs["factory"] == "keras.layers:SimpleRNN"
    assert BUILTINS["flax-lstm"].kwargs["factory"] == "rnn_behaviour.adapters.on_jax.builtins:flax_lstm"
    assert {ref.target for ref in BUILTINS.values()} == {
        "rnn_behaviour.adapters.on_torch.model:TorchAdapter",
        "rnn_behaviour.adapters.on_keras.model:KerasAdapter",
        "rnn_behaviour.adapters.on_jax.model:JaxAdapter",
        "rnn_behaviour.adapters.engines.model:RuntimeAdapter",  # the engine rows: a framework row trains them
    }
    assert BUILTINS["ort-gru"].trained_by == "torch-gru" and BUILTINS["lite-lstm"].trained_by == "keras-lstm"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "mxnet:mypkg.rnn:lstm",
            "unknown framework prefix 'mxnet' in 'mxnet:mypkg.rnn:lstm': valid prefixes are torch:, keras:, jax:",
        ),
        ("torch-lstm=torch:examples.mingru:mingru", "adapter name 'torch-lstm' is taken by a built-in"),
        ("torch:examples.mingru", "unknown adapter 'torch:examples.mingru'"),
        ("torch:a:b:c", "unknown adapter 'torch:a:b:c'"),
    ],
)
def test_malformed_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(AdapterError) as info:
        resolve(spec)
    assert message in str(info.value)


# --- the load-time probe -----------------------------------------------------------------------

TORCH_BAD = [
    ("torch:no_such_pkg_xyz.rnn:lstm", "module 'no_such_pkg_xyz' not found"),
    ("torch:tests.byo_factories:missing", "'missing' (callables defined there: BatchFirst, CanonicalGRU"),
    ("torch:tests.byo_factories:NOT_CALLABLE", "tests.byo_factories:NOT_CALLABLE is a int, not a callable factory"),
    ("torch:tests.byo_factories:no_arguments", "calling tests.byo_factories:no_arguments(5, 8) raised TypeError"),
    ("torch:tests.byo_factories:not_a_module", "returned str, not a torch.nn.Module"),
    ("torch:tests.byo_factories:doubles_hidden", "y of shape (3, 7, 16); expected (3, 7, 8) = (batch, time, hidden"),
    ("torch:tests.byo_factories:only_y", "returned a Tensor; forward must return (y, state) like nn.LSTM"),
    ("torch:tests.byo_factories:rejects_state", "the state is not accepted back: "),
]  # fmt: skip


@needs_torch
@pytest.mark.parametrize(("spec", "message"), TORCH_BAD)
def test_a_bad_torch_factory_is_named_at_load(spec: str, message: str) -> None:
    with pytest.raises(AdapterError) as info:
        resolve(spec).load()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@needs_torch
def test_a_time_first_module_is_caught_by_its_state() -> None:
    """nn.LSTM without batch_first reads the probe's (3, 7, 5) as time 3, batch 7: y's shape agrees
    by accident, the state's batch of 7 gives it away."""
    with pytest.raises(
        AdapterError, match=r"state of shape\(s\) \[\(1, 7, 8\), \(1, 7, 8\)\], without the batch size 3"
    ):
        resolve("torch:tests.byo_factories:time_first").load()


@needs_torch
def test_a_time_first_module_with_two_layers_gets_the_same_hint() -> None:
    """Two layers: the state is (2, 7, 8); with a probe batch of 2 its first dimension passed for the
    batch and the module failed later with a reshape error instead of this hint."""
    with pytest.raises(AdapterError) as info:
        resolve("torch:tests.byo_factories:time_first_two_layers").load()
    message = str(info.value)
    assert "[(2, 7, 8), (2, 7, 8)], without the batch size 3" in message
    assert "is x read as (time, batch, features)?" in message and "\n" not in message


@needs_keras
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("keras:tests.byo_keras_factories:units_only", "raised TypeError"),
        ("keras:tests.byo_keras_factories:drops_return_state", "one tensor, where return_state=True asks for"),
    ],
)
def test_a_bad_keras_factory_is_named_at_load(spec: str, message: str) -> None:
    with pytest.raises(AdapterError) as info:
        resolve(spec).load()
    assert message in str(info.value)


# --- weight conformance: standard names, canonical export, or a skip with the reason -----------


@needs_torch
def test_a_canonical_export_gets_weight_conformance() -> None:
    adapter = resolve("torch:tests.byo_factories:canonical_gru").load()
    assert adapter.capabilities.weight_io and adapter.cell == "gru"  # type: ignore[attr-defined]
    subject = Subject("canonical_gru", adapter)
    for check in (round_trip, gradients):
        outcome = check(subject)
        assert outcome.passed, outcome.detail


@needs_torch
def test_extra_parameters_turn_weight_checks_off_with_the_reason() -> None:
    adapter = resolve("torch:tests.byo_factories:lstm_with_extra").load()
    assert not adapter.capabilities.weight_io
    reason = skip_reason("forward_parity", "x", adapter.capabilities, adapter.capability_notes)  # type: ignore[attr-defined]
    assert reason is not None and "also scale" in reason


@needs_keras
def test_a_reset_before_keras_gru_gets_weight_checks_in_its_variant() -> None:
    adapter = resolve("keras:tests.byo_keras_factories:reset_before_gru").load()
    assert adapter.capabilities.weight_io and adapter.variant == "reset_before"  # type: ignore[attr-defined]
    assert round_trip(Subject("reset_before_gru", adapter)).passed


# --- the examples ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(EXAMPLES))
def example(request: pytest.FixtureRequest):
    spec, cell = EXAMPLES[request.param]
    installed = {"keras": HAS_KERAS, "jax": HAS_JAX}.get(spec.split(":")[0], HAS_TORCH)
    if not installed:
        pytest.skip(f"{spec}: framework not installed")
    return request.param, resolve(spec).load(), cell


def test_each_example_builds_forwards_and_continues_from_its_state(example) -> None:
    name, adapter, _ = example
    assert adapter.name == name
    model = adapter.build(TASKS["count_steps"].spec, seed=0)
    x = np.random.default_rng(0).integers(0, 2, (3, 9, 1)).astype(np.float32)
    whole, whole_state = model.predict(x)
    assert whole.shape == (3, 9, 1) and np.isfinite(whole).all()
    first, state = model.predict(x[:, :4])
    second, final_state = model.predict(x[:, 4:], state)
    chunked = np.concatenate([first, second], axis=1)
    if name == "forgets_state":
        assert np.abs(chunked - whole).max() > 1e-3, "a module that drops its state must not continue"
        np.testing.assert_allclose(second, model.predict(x[:, 4:])[0], atol=1e-6)
        return
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    flat, flat_whole = _leaves(final_state), _leaves(whole_state)
    assert [a.shape for a in flat] == [a.shape for a in flat_whole] and all(type(a) is np.ndarray for a in flat)
    for a, b in zip(flat, flat_whole, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    last = adapter.build(TASKS["count_last"].spec, seed=0)
    assert last.predict(x)[0].shape == (3, 1)


def _leaves(state) -> list[np.ndarray]:
    if isinstance(state, tuple | list):
        return [leaf for part in state for leaf in _leaves(part)]
    if isinstance(state, dict):
        return [leaf for part in state.values() for leaf in _leaves(part)]
    return [state]


def test_each_example_says_whether_weight_conformance_runs(example) -> None:
    name, adapter, cell = example
    assert adapter.capabilities.weight_io == (cell is not None)
    assert adapter.cell == cell
    if cell is None:
        reason = skip_reason("forward_parity", name, adapter.capabilities, adapter.capability_notes)
        assert reason is not None and "neither" in reason and "standard parameter names" in reason


# --- the plugin end: usage errors, ids, entry points (pytester, collection only) --------------


def _collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(ROOT / "benchmarks"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "-p", "no:cacheprovider",
        "--collect-only", "-q", *args,
    )  # fmt: skip


@needs_torch
def test_a_bad_factory_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    result = _collect(pytester, "--adapter", "torch:tests.byo_factories:doubles_hidden")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--adapter torch:tests.byo_factories:doubles_hidden: " in err and "expected (3, 7, 8)" in err
    assert "Traceback" not in err and "Traceback" not in result.stdout.str()


@needs_keras
def test_an_eager_only_keras_layer_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    result = _collect(pytester, "--adapter", "keras:tests.byo_keras_factories:eager_only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--adapter keras:tests.byo_keras_factories:eager_only: " in err and "inside a tf.function" in err
    assert "Traceback" not in err and "Traceback" not in result.stdout.str()


@needs_torch
def test_an_example_row_and_an_entry_point_row_join_the_matrix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = pytester.path / "site" / "byo_demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: byo-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rnn_behaviour.adapters]\nminimal = torch:examples.mingru:mingru\n")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "site"))
    result = _collect(pytester, "--adapter", "torch:examples.peephole:peephole", "-k", "peephole- or minimal-")
    out = result.stdout.str()
    assert result.ret == 0, result.stderr.str()
    assert "test_check[peephole-count_steps-carry_state]" in out
    assert "test_conformance[peephole-forward_parity]" in out
    assert "test_check[minimal-count_steps-carry_state]" in out
    assert "test_check[torch-lstm-" not in out


# --- carry_state says which way the state went wrong -------------------------------------------


class _HalvesState(RunningSum):
    """Carries its state back, but halves it: the count is passed on and still lost."""

    def predict(self, x: np.ndarray, state=None):
        return super().predict(x, None if state is None else np.asarray(state) / 2)


@pytest.mark.parametrize(
    ("predictor", "says"),
    [
        (StateReset(per_step=True), "it counted from zero ([1.00, 1.00, 2.00] from a zero state): the state your "
         "forward/predict returns does not continue the sequence, the state handed back in is ignored"),
        (_HalvesState(per_step=True), "gave [2.50, 2.50, 3.50]; expected [4, 4, 5]: the state your forward/predict "
         "returns does not continue the sequence (handed back in, it loses the count)"),
    ],
)  # fmt: skip
def test_carry_state_says_whether_the_state_was_ignored_or_garbled(predictor: RunningSum, says: str) -> None:
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    result = task.evaluate("carry_state", predictor, data, "smoke")
    assert not result.passed
    assert "feeding [1, 1, 1] then [1, 0, 1] with the returned state gave" in result.detail
    assert says in result.detail


def test_verify_holds_an_example_row_to_its_documented_outcome() -> None:
    from examples.verify import surprises

    def rec(check: str, outcome: str, detail: str = "") -> dict:
        return {"task": "count_steps", "check": check, "outcome": outcome, "detail": detail, "reason": ""}

    row = [
        rec("fit", "passed"),
        rec("longer", "xfailed"),
        rec("carry_state", "failed", "the state handed back in is ignored"),
    ]
    assert surprises(row, {"count_steps.carry_state"}, {"count_steps.carry_state": "is ignored"}) == []
    assert surprises(row, set(), {}) == ["count_steps.carry_state failed, expected to pass"]
    assert surprises(row, {"count_steps.fit", "count_steps.carry_state"}, {}) == [
        "count_steps.fit passed, expected to fail"
    ]
    assert surprises(row, {"count_steps.carry_state"}, {"count_steps.carry_state": "dropped"}) == [
        "count_steps.carry_state failed, but not because 'dropped'"
    ]
    assert surprises(row, {"count_steps.fit"}, {"count_steps.fit": "x"}) == [
        "count_steps.carry_state failed, expected to pass",
        "count_steps.fit passed, expected to fail",
    ]
    assert surprises([], set(), {}) == ["the results file holds no records"]
    unsure = [rec("fit", "incomplete"), rec("longer", "xfailed")]
    assert surprises(unsure, set(), {}, frozenset({"count_steps.fit"})) == []
    assert surprises(unsure, set(), {}) == ["count_steps.fit inconclusive, expected to pass"]
    assert surprises(row, {"count_steps.carry_state"}, {}, frozenset({"count_steps.fit"})) == [
        "count_steps.fit passed, expected to be inconclusive"
    ]


@needs_torch
def test_any_nest_of_tensors_is_a_state() -> None:
    adapter = resolve("torch:tests.byo_factories:dict_state").load()
    model = adapter.build(TASKS["count_steps"].spec, seed=0)
    x = np.random.default_rng(2).integers(0, 2, (2, 7, 1)).astype(np.float32)
    whole, _ = model.predict(x)
    first, state = model.predict(x[:, :3])
    assert set(state) == {"h", "rest"} and isinstance(state["rest"], list)
    assert type(state["h"]) is np.ndarray and state["h"].shape == (1, 2, TASKS["count_steps"].spec.hidden_size)
    second, _ = model.predict(x[:, 3:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    assert not adapter.capabilities.weight_io  # wrapped nn.LSTM: its names are rnn.weight_ih_l0, ...
