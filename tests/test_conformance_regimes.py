"""The `regimes` conformance check: the built-ins and the hand-written LSTM/GRU pass it, and each
planted defect of tests/planted_regimes.py passes `forward_parity` (today's suite is blind to it)
but fails `regimes` with a message that names the regime, the shape and where the error starts."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_behaviour.adapters import BUILTINS, resolve
from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.base import Adapter
from rnn_behaviour.benchmarks.conformance import Outcome, Subject, regimes, run
from tests import fake_layers

HANDWRITTEN = {"hand-lstm": "torch:tests.handwritten:lstm", "hand-gru": "torch:tests.handwritten:gru"}


def _load(spec: str, name: str | None = None) -> Adapter:
    try:
        return resolve(spec, name).load()
    except ImportError as exc:
        pytest.skip(f"{spec}: framework not installed ({exc})")


def _run(adapter: Adapter, check: str = "regimes") -> Outcome:
    return run(check, Subject(adapter.name, adapter))


@pytest.mark.parametrize("name", [*BUILTINS, *HANDWRITTEN])
def test_the_builtins_and_the_handwritten_layers_pass(name: str) -> None:
    adapter = _load(HANDWRITTEN.get(name, name), name)
    if not adapter.capabilities.weight_io:  # the LiteRT rows: no bare layer
        pytest.skip(f"{name}: {getattr(adapter, 'capability_notes', {}).get('weight_io', 'no weight_io')}")
    outcome = _run(adapter)
    assert outcome.passed, outcome.detail
    assert 0 < outcome.value < 0.5, "float32 rounding should be well inside the tolerance, and not zero"
    assert set(outcome.extras) == {f"{r.name}_max_abs_err" for r in regimes.REGIMES}


@pytest.mark.parametrize("cell", ref.CELLS)
def test_the_reference_passes_exactly(cell: str) -> None:
    outcome = _run(type("Ref", (fake_layers.FakeLayers,), {"cell": cell})())
    assert outcome.passed and outcome.value == 0.0, outcome.detail


#: Each defect: the regimes it must fail (the first is the one it was planted for), and the words
#: of that regime's message: shape and where the error starts.
PLANTED = {
    "time_tile": (
        ("long", "long_counter"),
        "at B=2, T=257, input 5, hidden 32", "outputs: the first 256 steps agree, first off at step 257 (1-based)",
        "the state carried across a time tile", "also off at T=1031",
    ),
    "hidden_tail": (
        ("odd_sizes",),
        "at B=5, T=40, input 7, hidden 33", "outputs: off from step 1,",
        "only hidden units 32..32 of 0..32 (the tail beyond a multiple of 32)",
        "also off at T=40, hidden 67 (only hidden units 64..66 of 0..66 (the tail beyond a multiple of 32))",
    ),
    "clipped_cell": (
        ("saturating", "long_counter"),
        "at B=4, T=48, input 3, hidden 16", "the outputs agree at every step", "final c: ",
        "only where |c| is large", "is the cell state clipped",
    ),
}  # fmt: skip


@pytest.mark.parametrize("defect", list(PLANTED))
def test_each_planted_defect_passes_parity_and_fails_its_regime(defect: str) -> None:
    adapter = _load(f"torch:tests.planted_regimes:{defect}")
    assert _run(adapter, "forward_parity").passed, "the planted defect must be invisible to forward_parity"
    outcome = _run(adapter)
    assert not outcome.passed and outcome.value > 100, outcome.detail
    failing, *words = PLANTED[defect]
    assert [r.name for r in regimes.REGIMES if f"regime {r.name} (" in outcome.detail] == list(failing)
    planted_for = outcome.detail.split(f"regime {failing[0]} (")[1].split(". regime ")[0]
    for phrase in words:
        assert phrase in planted_for, (phrase, outcome.detail)


def test_the_clipped_cell_is_located_by_the_size_of_c() -> None:
    detail = _run(_load("torch:tests.planted_regimes:clipped_cell")).detail
    smaller, larger = (float(detail.split(key)[1].split(" ")[0]) for key in ("with |c| <= ", "off have |c| >= "))
    assert smaller < 8.0 < larger, detail


def test_saturating_weights_grow_the_cell_state_to_tens() -> None:
    for seed in range(5):
        g = np.random.default_rng(seed)
        weights = ref.saturating_weights("lstm", 3, 16, g)
        _, (h, c) = ref.forward("lstm", g.normal(0.0, 1.0, (4, 48, 3)), weights)
        assert np.abs(c).max() >= 30 and np.abs(c).min() < 8, "tens in some units, a few in others"
        for cell in ("gru", "rnn"):
            _, h = ref.forward(cell, g.normal(0.0, 1.0, (4, 48, 3)), ref.saturating_weights(cell, 3, 16, g))
            assert np.median(np.abs(h)) > 0.95


def test_a_case_that_does_not_saturate_is_an_error_of_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regimes, "SATURATED_C", 1000.0)
    with pytest.raises(AssertionError, match=r"saturating weights reach max \|c\| .* only"):
        _run(fake_layers.ReferenceLSTM())


def test_units_in_words() -> None:
    tail = np.zeros(67, bool)
    tail[64:] = True
    assert regimes.units(tail, 67) == "only hidden units 64..66 of 0..66 (the tail beyond a multiple of 32)"
    tail[:] = False
    tail[40:] = True
    assert regimes.units(tail, 67) == "only hidden units 40..66 of 0..66 (the tail beyond a multiple of 8)"
    assert regimes.units(np.ones(5, bool), 5) == "in every hidden unit"
    assert regimes.units(np.array([1, 0, 1, 0, 0], bool), 5) == "in 2 of 5 hidden units (0, 2)"
