"""The LiteRT rows (lite-lstm/gru/rnn): the Keras built-ins' models, converted with builtin ops only
(adapters/engines/from_keras.py) and run by the LiteRT interpreter (adapters/engines/litert.py),
against the Keras model's own `predict`: other batches and lengths than the conversion's, with and
without a state, the state carried across calls; the inputs fed by name (the interpreter's order
cannot matter), and planted sessions that feed by position, shown to be caught by the same
comparison."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")

from rnn_behaviour.adapters import resolve
from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.engines import from_keras
from rnn_behaviour.adapters.engines.litert import LiteRTSession, match_inputs, match_outputs, our_name
from rnn_behaviour.adapters.engines.model import RuntimeModel
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split

ATOL = 1e-5
#: How far a planted mistake moves the outputs: far past ATOL, so the comparison cannot miss it.
SHARP = 1e-2
CELLS = ("lstm", "gru", "rnn")
#: One spec per cell, so that the heads (softmax, linear, tanh), the projection and many-to-one are covered.
SPECS = {
    "lstm": ModelSpec(input_size=3, output_size=4, hidden_size=6, return_sequences=True, head="softmax",
                      input_projection=5),
    "gru": ModelSpec(input_size=3, output_size=2, hidden_size=6, return_sequences=False),
    "rnn": ModelSpec(input_size=3, output_size=2, hidden_size=6, return_sequences=True, head="tanh"),
}  # fmt: skip
#: (batch, time) other than the conversion's (PIECE, 7): one row, more rows than a piece, a remainder.
SHAPES = [(1, 1), (5, 12), (from_keras.PIECE + 9, 9)]


def leaves(a: Any) -> list[np.ndarray]:
    return [np.asarray(p, np.float64) for p in (a if isinstance(a, tuple | list) else (a,))]


def max_err(a: Any, b: Any) -> float:
    return max(float(np.max(np.abs(p - q))) for p, q in zip(leaves(a), leaves(b), strict=True))


def train_briefly(model: Any, spec: ModelSpec, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 10, spec.input_size)).astype(np.float32)
    shape = (64, 10) if spec.return_sequences else (64,)
    if spec.head == "softmax":
        y, loss = rng.integers(0, spec.output_size, size=shape), "crossentropy"
    else:
        y, loss = rng.normal(size=(*shape, spec.output_size)).astype(np.float32) * 0.5, "mse"
    budget = Budget(max_epochs=3, batch_size=16, learning_rate=1e-2, loss=loss)
    model.fit(Split(x, y), Split(x[:16], y[:16]), budget, lambda m: False)


@pytest.fixture(scope="module")
def rows() -> dict[str, Any]:
    return {cell: resolve(f"lite-{cell}").load() for cell in CELLS}


@pytest.fixture(scope="module")
def pairs(rows: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, RuntimeModel]]:
    """(cell, "untrained" | "trained") -> (the Keras model, its LiteRT conversion)."""
    out = {}
    for cell, row in rows.items():
        untrained = row.source.build(SPECS[cell], seed=0)
        out[cell, "untrained"] = (untrained, row.convert(untrained))
        trained = row.source.build(SPECS[cell], seed=0)
        train_briefly(trained, SPECS[cell])
        out[cell, "trained"] = (trained, row.convert(trained))
    return out


def random_state(keras_model: Any, batch: int, rng: np.random.Generator) -> Any:
    states = tuple(rng.normal(size=(batch, *s)).astype(np.float32) for s in keras_model.state_shapes)
    return states if len(states) > 1 else states[0]


@pytest.mark.parametrize("trained", ["untrained", "trained"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,time", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_predictions_equal_keras(pairs: Any, cell: str, trained: str, batch: int, time: int, with_state: bool) -> None:
    keras_model, lite = pairs[cell, trained]
    rng = np.random.default_rng(batch * 100 + time)
    x = rng.normal(size=(batch, time, SPECS[cell].input_size)).astype(np.float32)
    state = random_state(keras_model, batch, rng) if with_state else None
    want, got = keras_model.predict(x, state), lite.predict(x, state)
    assert got[0].shape == want[0].shape
    assert type(got[1]) is type(want[1]), "the state nest is KerasModel.predict's"
    assert max_err(got[0], want[0]) < ATOL
    assert max_err(got[1], want[1]) < ATOL


@pytest.mark.parametrize("cell", CELLS)
def test_state_carried_across_calls(pairs: Any, cell: str) -> None:
    keras_model, lite = pairs[cell, "trained"]
    x = np.random.default_rng(7).normal(size=(11, 15, SPECS[cell].input_size)).astype(np.float32)
    y_whole, s_whole = lite.predict(x)
    y1, s1 = lite.predict(x[:, :6])
    y2, s2 = lite.predict(x[:, 6:], s1)
    assert max_err(s2, s_whole) < ATOL
    assert max_err(s2, keras_model.predict(x)[1]) < ATOL
    if SPECS[cell].return_sequences:
        assert max_err(np.concatenate([y1, y2], axis=1), y_whole) < ATOL
    else:
        assert max_err(y2, y_whole) < ATOL


def test_names_and_conversion_limits(rows: dict[str, Any], pairs: Any) -> None:
    lite = pairs["lstm", "trained"][1]
    assert set(lite.session.input_names) == {"x", "state_0", "state_1"}
    assert set(lite.session.output_names) == {"y", "state_out_0", "state_out_1"}
    assert lite.session.piece == from_keras.PIECE, "the batch is static: the session runs pieces of it"
    how = rows["lstm"].compute_path()
    assert how["runtime"] == "litert" and "builtin" in how["ops"] and "static" in how["batch"]
    assert not rows["lstm"].capabilities.weight_io
    assert "bare layer" in rows["lstm"].capability_notes["weight_io"]


class ShuffledSession(LiteRTSession):
    """Reads the interpreter's inputs and outputs in another order (as another converter or version might list them)."""

    def _input_pairs(self) -> list[tuple[str, Any]]:
        got = super()._input_pairs()
        return got[1:] + got[:1]

    def _output_pairs(self) -> list[tuple[str, Any]]:
        return super()._output_pairs()[::-1]


class StatesByPosition(LiteRTSession):
    """PLANTED: x found by name, the states fed by position, in an interpreter order that lists the
    last state first (the mistake measured earlier: h and c swapped, an LSTM 0.87 off)."""

    def _input_pairs(self) -> list[tuple[str, Any]]:
        got = dict(super()._input_pairs())
        states = [got[k] for k in sorted(k for k in got if k != "x")][::-1]
        return [("x", got["x"])] + [(f"state_{k}", d) for k, d in enumerate(states)]


class AllByPosition(LiteRTSession):
    """PLANTED: every input fed by position: our order (x, state_0, ...) against the interpreter's list."""

    def _input_pairs(self) -> list[tuple[str, Any]]:
        details = self.interpreter.get_input_details()
        ours = ["x", *(f"state_{k}" for k in range(len(details) - 1))]
        return list(zip(ours, details, strict=True))


def session_of(lite: RuntimeModel, cls: type[LiteRTSession]) -> RuntimeModel:
    out = RuntimeModel(lite.exported, cls(lite.exported.blob, 1), lite.spec, lite.n_params, lite.source)
    return out


@pytest.mark.parametrize("cell", CELLS)
def test_interpreter_order_cannot_change_the_result(pairs: Any, cell: str) -> None:
    keras_model, lite = pairs[cell, "trained"]
    shuffled = session_of(lite, ShuffledSession)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 9, SPECS[cell].input_size)).astype(np.float32)
    state = random_state(keras_model, 4, rng)
    a, b = lite.predict(x, state), shuffled.predict(x, state)
    assert max_err(a[0], b[0]) == 0 and max_err(a[1], b[1]) == 0


def test_states_by_position_is_caught(pairs: Any) -> None:
    keras_model, lite = pairs["lstm", "trained"]
    planted = session_of(lite, StatesByPosition)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 9, 3)).astype(np.float32)
    state = random_state(keras_model, 5, rng)
    want = keras_model.predict(x, state)
    got = planted.predict(x, state)
    err = max(max_err(got[0], want[0]), max_err(got[1], want[1]))
    assert err > SHARP, f"h and c swapped moved the outputs only {err:.2e}"


def test_all_by_position_is_caught(pairs: Any) -> None:
    """Fed by position in the interpreter's own order, the model either runs wrong (caught by the
    comparison) or is refused (x put where a state goes): never passes."""
    keras_model, lite = pairs["lstm", "trained"]
    order = [our_name(d["name"]) for d in lite.session.interpreter.get_input_details()]
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 9, 3)).astype(np.float32)
    state = random_state(keras_model, 5, rng)
    try:
        planted = session_of(lite, AllByPosition)
        got = planted.predict(x, state)
    except AdapterError:
        assert order != ["x", "state_0", "state_1"], "refused although the orders agree"
        return
    want = keras_model.predict(x, state)
    if order != ["x", "state_0", "state_1"]:
        assert max(max_err(got[0], want[0]), max_err(got[1], want[1])) > SHARP


def test_outputs_without_names() -> None:
    """Outputs that carry no name are told apart by shape, and refused when shapes cannot."""

    def detail(index: int, *shape: int) -> dict[str, Any]:
        return {"index": index, "shape_signature": np.array(shape)}

    inputs = match_inputs(
        [("serving_default_x:0", detail(0, 8, -1, 3)), ("serving_default_state_0:0", detail(1, 8, 6))]
    )
    assert our_name("serving_default_state_0:0") == "state_0"
    out = match_outputs([("Identity", detail(5, 8, -1, 2)), ("Identity_1", detail(6, 8, 6))], inputs)
    assert out["y"]["index"] == 5 and out["state_out_0"]["index"] == 6
    inputs["state_1"] = detail(2, 8, 6)
    with pytest.raises(AdapterError, match="cannot tell which"):
        match_outputs([("Identity", detail(5, 8, -1, 2)), ("Identity_1", detail(6, 8, 6)),
                       ("Identity_2", detail(7, 8, 6))], inputs)  # fmt: skip
