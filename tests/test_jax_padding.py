"""The Flax built-ins' padded predictions (adapters/on_jax/model.py, `network.bucket`): a built-in's
prediction of T steps runs at the next power of two, zero-padded, its state taken after the real
last step (`nnx.RNN`'s seq_lengths) and the padded outputs cut off, so that the tasks' many chunk
lengths compile far fewer programs. It must give what the unpadded call gives: the same shapes, the
same state, and outputs to the float32 rounding of the head's product at another shape. A module
of yours is called at the lengths asked for. Skipped without jax.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")

import jax

from rnn_behaviour.adapters import resolve
from rnn_behaviour.adapters.on_jax.network import bucket
from rnn_behaviour.tasks.base import ModelSpec

SEQUENCES = ModelSpec(input_size=3, output_size=5, hidden_size=16, return_sequences=True, head="softmax")
LAST = ModelSpec(input_size=2, output_size=1, hidden_size=8, return_sequences=False, head="linear")
PROJECTED = ModelSpec(input_size=1, output_size=1, hidden_size=8, return_sequences=True, input_projection=4)


@functools.cache
def adapter(spec: str) -> Any:
    return resolve(spec).load()


def test_a_length_runs_at_the_next_power_of_two() -> None:
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, 40, 64, 65, 500)] == [1, 2, 4, 4, 8, 8, 16, 64, 64, 128, 512]


def _lengths_fed(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths the model's jitted forward is called with, from now on."""
    fed: list[int] = []
    forward = model._forward

    def spy(params: Any, rest: Any, x: Any, *args: Any) -> Any:
        fed.append(int(x.shape[1]))
        return forward(params, rest, x, *args)

    monkeypatch.setattr(model, "_forward", spy)
    return fed


@pytest.mark.parametrize("name", ["flax-lstm", "flax-gru", "flax-rnn"])
@pytest.mark.parametrize("spec", [SEQUENCES, LAST, PROJECTED], ids=["sequences", "last", "projected"])
def test_a_builtins_padded_prediction_is_the_unpadded_one(
    name: str, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = adapter(name).build(spec, 0)
    assert model.padded
    fed = _lengths_fed(model, monkeypatch)
    rng = np.random.default_rng(0)
    for length in (1, 3, 4, 5, 12):
        x = rng.normal(size=(4, length, spec.input_size)).astype(np.float32)
        for call in ("predict", "predict_last"):
            got = []
            for padded in (True, False):
                model.padded = padded
                y, state = getattr(model, call)(x)
                again, after = getattr(model, call)(x, state)  # from a state handed back
                got.append((y, state, again, after))
            (y, state, again, after), (y0, state0, again0, after0) = got
            for a, b in ((y, y0), (again, again0)):
                assert a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
            for a, b in zip(jax.tree.leaves((state, after)), jax.tree.leaves((state0, after0)), strict=True):
                np.testing.assert_array_equal(a, b)
    assert sorted(set(fed)) == [1, 3, 4, 5, 8, 12, 16]  # each padded call at its power of two, then unpadded


def test_each_power_of_two_is_one_program_whatever_length_reached_it() -> None:
    model = adapter("flax-lstm").build(SEQUENCES, 1)
    cache_size = getattr(model._forward, "_cache_size", None)
    if cache_size is None:
        pytest.skip("this jax's jitted functions do not say how many programs they hold")
    before = cache_size()  # the programs are shared by the models of one graph
    for length in (3, 4, 3, 4, 1, 2, 1):  # 3 and 4 at 4; 1 at 1 and 2 at 2, each with lengths passed
        model.predict(np.zeros((7, length, 3), np.float32))  # a batch no other test here uses
    assert cache_size() - before == 3


def test_a_module_of_yours_is_called_at_the_lengths_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    model = adapter("hand=jax:tests.jax_modules:lstm").build(SEQUENCES, 0)
    assert not model.padded
    fed = _lengths_fed(model, monkeypatch)
    for length in (3, 5, 12):
        y, _ = model.predict(np.zeros((2, length, 3), np.float32))
        assert y.shape == (2, length, 5)
    assert fed == [3, 5, 12]
