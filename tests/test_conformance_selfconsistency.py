"""The self-consistency checks (`long_calls`, `random_states`, `saturation`): the built-ins, the
examples and the correct non-canonical modules of tests/ pass them; each planted defect of
tests/planted_selfconsistency.py (own parameter names: no weight conformance) passes the six
checks such a module got before (`streaming`, `batch_independence`, `causality`, `caller_data`,
`bad_input`, `determinism`) and fails the new one it was planted for, saying what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_behaviour.adapters import BUILTINS, resolve
from rnn_behaviour.adapters.base import Adapter
from rnn_behaviour.benchmarks.conformance import Outcome, Subject, nests, run, skip_reason

NEW = ("long_calls", "random_states", "saturation")
BEFORE = ("streaming", "batch_independence", "causality", "caller_data", "bad_input", "determinism")
CORRECT = {
    **{name: name for name in BUILTINS},
    "lstm_loop": "torch:examples.lstm_loop:lstm_loop",
    "peephole": "torch:examples.peephole:peephole",
    "mingru": "torch:examples.mingru:mingru",
    "keras_cell": "keras:examples.keras_cell:keras_cell",
    "hand-lstm": "torch:tests.handwritten:lstm",
    "hand-gru": "torch:tests.handwritten:gru",
    "dict_state": "torch:tests.byo_factories:dict_state",
    "time_first_glued": "torch:tests.byo_factories:time_first_glued",
    "log_scan": "torch:tests.planted_rounding:log_scan_mingru",
    "own_mingru": "torch:tests.planted_selfconsistency:own_mingru",
    "memory_state": "keras:tests.byo_keras_factories:memory_state",
}
_LOADED: dict[str, Adapter] = {}


def _load(spec: str, name: str) -> Adapter:
    if name not in _LOADED:
        try:
            _LOADED[name] = resolve(spec, name).load()
        except ImportError as exc:
            pytest.skip(f"{spec}: framework not installed ({exc})")
    return _LOADED[name]


def _run(adapter: Adapter, check: str) -> Outcome:
    return run(check, Subject(adapter.name, adapter))


@pytest.mark.parametrize("check", NEW)
@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_modules_pass(name: str, check: str) -> None:
    outcome = _run(_load(CORRECT[name], name), check)
    assert outcome.passed, outcome.detail
    assert (
        "from a state it reached" in outcome.detail
        or "states reached" in outcome.detail
        or ("states it reached" in outcome.detail)
    )


#: Each defect: the check it was planted for and the words its failure must say.
PLANTED = {
    "tile_drop": ("long_calls", ("a single call of T=257", "first off at step 257 (1-based)",
                                 "the first 256 steps agree", "a time tile that drops", "not rounding")),
    "late_position": ("long_calls", ("a single call of T=511", "first off at step 301 (1-based)",
                                     "the first 300 steps agree", "a position-dependent computation")),
    "clamped_gate": ("saturation", ("with inputs x10", "the whole sequence in one call and one step at a time",
                                    "computes otherwise when the gates saturate", "a clamp of the pre-activations")),
    "naive_sigmoid": ("saturation", ("with inputs x100", "away from the same module in float64",
                                     "an exp that overflows")),
    "state_clip": ("random_states", ("from a large state", "fed in chunks cut at",
                                     "differ from the whole sequence's", "not rounding")),
    "batch_clip": ("random_states", ("from a large state", "row 0 of the batch and that row alone",
                                     "not rounding: the float64 run differs too")),
}  # fmt: skip


@pytest.mark.parametrize("defect", list(PLANTED))
def test_each_planted_defect_fails_its_new_check_in_words(defect: str) -> None:
    adapter = _load(f"torch:tests.planted_selfconsistency:{defect}", defect)
    assert not adapter.capabilities.weight_io, "the defects have their own parameter names"
    check, words = PLANTED[defect]
    outcome = _run(adapter, check)
    assert not outcome.passed, outcome.detail
    for phrase in words:
        assert phrase in outcome.detail, (phrase, outcome.detail)


@pytest.mark.parametrize("check", BEFORE)
@pytest.mark.parametrize("defect", list(PLANTED))
def test_each_planted_defect_passes_the_checks_it_got_before(defect: str, check: str) -> None:
    adapter = _load(f"torch:tests.planted_selfconsistency:{defect}", defect)
    assert skip_reason(check, defect, adapter.capabilities, adapter.capability_notes, adapter) is None
    outcome = _run(adapter, check)
    assert outcome.passed, f"{defect} should be invisible to {check}: {outcome.detail}"


def test_a_module_without_state_keeps_the_zero_state_form_with_the_reason() -> None:
    adapter = _load("torch:tests.byo_factories:stateless", "stateless")
    outcome = _run(adapter, "random_states")
    assert outcome.passed, outcome.detail
    assert "from the zero state" in outcome.detail and "chunked" not in outcome.detail
    assert "the zero state only: rnn_behaviour_capabilities says state is off: its API runs whole" in outcome.detail
    for check in ("long_calls", "saturation"):
        reason = skip_reason(check, "stateless", adapter.capabilities, adapter.capability_notes, adapter)
        assert reason and "hands no state out" in reason


def test_the_batch_axis_is_read_from_the_module_states_own_nest() -> None:
    batch, single = 4, 1
    state = {"h": np.zeros((2, batch, 6)), "rest": [np.zeros((batch, 6)), np.zeros(())]}
    one = {"h": np.zeros((2, single, 6)), "rest": [np.zeros((single, 6)), np.zeros(())]}
    axes = nests.batch_axes(state, batch, one)
    assert axes == {"h": 1, "rest": [0, None]}
    full = {"h": np.arange(48.0).reshape(2, 4, 6), "rest": (np.arange(24.0).reshape(4, 6), np.float64(7.0))}
    axes = {"h": 1, "rest": (0, None)}
    rows = nests.state_rows(full, axes, np.array([2, 0]))
    assert isinstance(rows, dict) and isinstance(rows["rest"], tuple)
    np.testing.assert_array_equal(rows["h"], full["h"][:, [2, 0]])
    np.testing.assert_array_equal(rows["rest"][0], full["rest"][0][[2, 0]])
    assert float(rows["rest"][1]) == 7.0


@pytest.mark.parametrize("name", ["keras-lstm", "keras-gru", "keras-rnn"])
def test_a_keras_bare_layer_has_a_float64_twin_by_dtype_policy(name: str) -> None:
    from rnn_behaviour.adapters import reference as ref

    adapter = _load(name, name)
    layer = adapter.build_layer(3, 8, 0)  # type: ignore[attr-defined]
    twin = layer.float64_twin()
    x = np.asarray(np.random.default_rng(0).normal(size=(2, 30, 3)), np.float32)
    y32, _final32 = layer.forward(x)
    y64, _ = twin.forward(x)
    assert y64.dtype == np.float64
    weights = {k: np.asarray(v, np.float64) for k, v in layer.export_weights().items()}
    cell = str(adapter.cell)  # type: ignore[attr-defined]
    y_ref = ref.forward(cell, x.astype(np.float64), weights, None, variant=layer.variant or "")[0]
    assert np.abs(y64 - y_ref).max() < 1e-12, "the twin computes in float64"
    assert 1e-9 < np.abs(y64 - y32).max() < 1e-5, "and the float32 layer differs from it by rounding only"


def test_a_dropped_state_is_blamed_on_the_handoff_not_the_single_call() -> None:
    """A module that drops the state it is given (examples/forgets_state.py) fails `long_calls`;
    its chunked and step-by-step runs disagree with each other, so the message names the state
    handed between calls, not a tile or a position table of the single call."""
    outcome = _run(_load("torch:examples.forgets_state:forgets_state", "forgets_state"), "long_calls")
    assert not outcome.passed
    assert "the state handed from one call to the next does not continue the sequence" in outcome.detail
    assert "a time tile" not in outcome.detail and "position-dependent" not in outcome.detail
