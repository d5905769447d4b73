"""Bring your own RNN, the protocol's newer requirements: the Keras layer must run in the suite's
own model (symbolic input of unknown length, traced steps, a stateful twin with the same weights),
and a factory or its module may declare the capabilities it does not have
(`rnn_behaviour_capabilities`, adapters/custom.py), so that the checks needing them are skipped
with its reason. In-process, one load per case.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import pytest

from rnn_behaviour.adapters import AdapterError, resolve
from rnn_behaviour.benchmarks.conformance import skip_reason
from rnn_behaviour.tasks import TASKS

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")


@needs_keras
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "keras:tests.byo_keras_factories:eager_only",
            "a traced training step of that model on x of shape (3, 7, 5) raised AttributeError: 'SymbolicTensor' "
            "object has no attribute 'numpy' (at tests/byo_keras_factories.py:",
        ),
        (
            "keras:tests.byo_keras_factories:static_length",
            "a traced predict of that model on x of shape (3, 5, 5) raised TypeError: int() argument",
        ),
        (
            "keras:tests.byo_keras_factories:grows_when_stateful",
            "stateful=True) on keras.Input(batch_shape=(3, 7, 5)) has weights of shapes [(8,), (5, 32), (8, 32), "
            "(32,)], not the layer's [(5, 32), (8, 32), (32,)]",
        ),
    ],
)
def test_a_layer_the_suites_model_cannot_run_is_refused_at_load(spec: str, message: str) -> None:
    """Each runs eagerly on a concrete array (the layer probe passes) but not in the suite's own
    model: on a symbolic input of unknown length, inside a tf.function, or as the stateful twin."""
    from rnn_behaviour.adapters.on_keras.probe import probe_layer

    probe_layer(importlib.import_module("tests.byo_keras_factories").__dict__[spec.rsplit(":", 1)[1]], spec)
    with pytest.raises(AdapterError) as info:
        resolve(spec).load()
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


# --- declared capabilities: rnn_behaviour_capabilities on the factory or its module -------------


@needs_torch
def test_a_declared_stateless_module_is_skipped_with_its_reason() -> None:
    from rnn_behaviour.benchmarks.matrix import Cell, CellSkipped, Matrix

    ref = resolve("torch:tests.byo_factories:declares_no_carry")
    adapter = ref.load()
    assert not adapter.capabilities.stateful_training and not adapter.capabilities.variable_length
    assert adapter.capabilities.weight_io  # what it does not declare stays as the probe found it
    reason = skip_reason("variable_length", "x", adapter.capabilities, adapter.capability_notes)  # type: ignore[attr-defined]
    assert reason is not None and "variable_length is off: declared False" in reason
    matrix = Matrix(tier="smoke", seeds=1, adapters={"no-carry": ref}, tasks=TASKS)
    with pytest.raises(CellSkipped, match="its API carries no state between calls"):
        matrix.train(Cell("no-carry", "streams", "carry_state"))


@needs_torch
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "torch:tests.byo_factories:claims_packed",
            "declares variable_length, but the load-time probe found otherwise: its module does not take a "
            "PackedSequence",
        ),
        (
            "torch:tests.byo_factories:unknown_capability",
            "names 'stateless', not one of state, stateful_training",
        ),
    ],
)
def test_a_declaration_the_probe_contradicts_is_a_usage_error(spec: str, message: str) -> None:
    with pytest.raises(AdapterError) as info:
        resolve(spec).load()
    assert message in str(info.value) and "\n" not in str(info.value)


@needs_keras
def test_a_keras_factory_declaring_no_stateful_training_gets_no_stateful_twin() -> None:
    """Its layer adds a weight when stateful (refused above when it does not declare so)."""
    adapter = resolve("keras:tests.byo_keras_factories:declares_no_stateful").load()
    assert not adapter.capabilities.stateful_training and adapter.capabilities.variable_length
    assert "no stateful form" in adapter.capability_notes["stateful_training"]  # type: ignore[attr-defined]


# --- a module that is not nn.LSTM: no state, a state of another shape, the task's length ---------


@needs_torch
def test_a_module_declaring_no_state_is_called_with_x_alone_and_skips_what_hands_a_state() -> None:
    """forward(x) -> y, declared with {"state": reason}: it trains and is scored; each check that
    hands a state back is skipped with the reason instead of restarting from zero and failing."""
    import numpy as np

    from rnn_behaviour.adapters.base import NoState
    from rnn_behaviour.benchmarks.matrix import Cell, CellSkipped, Matrix
    from rnn_behaviour.tasks.base import CheckNotApplicable

    ref = resolve("nostate=torch:tests.byo_factories:stateless")
    adapter = ref.load()
    caps = adapter.capabilities
    assert not caps.state and not caps.stateful_training and not caps.weight_io and caps.native_module
    task = TASKS["count_steps"]
    model = adapter.build(task.spec, 0)
    data = task.generate(np.random.default_rng(0), "smoke")
    y, state = model.predict(data.test.x[:4])
    assert y.shape == data.test.y[:4].shape and isinstance(state, NoState)
    with pytest.raises(CheckNotApplicable, match="hands no state out"):
        model.predict(data.test.x[:4], state)
    with pytest.raises(CheckNotApplicable, match="declares no state"):
        task.evaluate("carry_state", model, data, "smoke")
    assert np.isfinite(task.evaluate("fit", model, data, "smoke").value)
    matrix = Matrix(tier="smoke", seeds=1, adapters={"nostate": ref}, tasks=TASKS)
    with pytest.raises(CellSkipped, match="hands no state out, and stateful_training needs one"):
        matrix.train(Cell("nostate", "moving_average_stateful", "stateful"))
    reason = skip_reason("streaming", "nostate", caps, adapter.capability_notes)  # type: ignore[attr-defined]
    assert reason is not None and "hands no state out" in reason


@needs_torch
def test_a_module_that_says_it_has_no_state_must_still_return_y_batch_first() -> None:
    from rnn_behaviour.adapters.on_torch.probe import probe_module

    def transposed(input_size: int, hidden_size: int) -> Any:
        module = importlib.import_module("tests.byo_factories").stateless(input_size, hidden_size)
        inner = module.forward
        module.forward = lambda x: inner(x).transpose(0, 1)
        return module

    with pytest.raises(AdapterError, match=r"returned y of shape \(7, 3, 8\); expected \(3, 7, 8\)"):
        probe_module(transposed, "transposed")


@needs_keras
def test_a_keras_layer_may_not_declare_no_state() -> None:
    import keras

    def declares(units: int, **kwargs: Any) -> Any:
        layer = keras.layers.GRU(units, **kwargs)
        layer.rnn_behaviour_capabilities = {"state": "none"}
        return layer

    from rnn_behaviour.adapters.on_keras.probe import probe_layer

    with pytest.raises(AdapterError, match="supported for torch modules only"):
        probe_layer(declares, "declares")


@needs_keras
def test_a_keras_state_of_another_shape_than_units_is_read_from_the_layer() -> None:
    """An LMU-like layer: state_size [units, 3]. The model's state inputs, zero state and predict's
    check follow the layer's shapes, and a sequence continues from the state it hands back."""
    import numpy as np

    from rnn_behaviour.tasks.base import ModelSpec

    adapter = resolve("mem=keras:tests.byo_keras_factories:memory_state").load()
    assert adapter.info.state_shapes == ((8,), (3,))  # type: ignore[attr-defined]
    model = adapter.build(ModelSpec(input_size=2, output_size=1, hidden_size=6, return_sequences=True), 0)
    x = np.random.default_rng(0).normal(size=(4, 9, 2)).astype(np.float32)
    y, state = model.predict(x)
    assert [s.shape for s in state] == [(4, 6), (4, 3)]
    y1, s1 = model.predict(x[:, :5])
    y2, _ = model.predict(x[:, 5:], s1)
    assert np.allclose(np.concatenate([y1, y2], 1), y, atol=1e-5)
    with pytest.raises(AdapterError, match=r"shape\(s\) \[\(4, 6\), \(4, 3\)\]"):
        model.predict(x, (state[0], state[0]))


@needs_torch
def test_the_tasks_training_length_is_offered_to_a_factory_that_names_it() -> None:
    import torch

    from rnn_behaviour.adapters.custom import with_length
    from rnn_behaviour.benchmarks.matrix import Matrix

    factories = importlib.import_module("tests.byo_factories")
    factories.LENGTHS_SEEN.clear()
    ref = resolve("len=torch:tests.byo_factories:length_aware")
    adapter = ref.load()
    assert factories.LENGTHS_SEEN == [None]  # the probe: no task, no length
    matrix = Matrix(tier="smoke", seeds=1, adapters={"len": ref}, tasks=TASKS)
    matrix._fit(adapter, TASKS["count_steps"], 0)
    assert factories.LENGTHS_SEEN[-1] == matrix.data(TASKS["count_steps"], 0).train.x.shape[1] == 20
    assert with_length(torch.nn.LSTM, 20) is torch.nn.LSTM  # **kwargs does not count: it would refuse it


@needs_keras
def test_a_keras_factory_is_offered_the_length_only_when_it_names_it() -> None:
    import keras

    from rnn_behaviour.adapters.custom import with_length

    assert with_length(keras.layers.LSTM, 20) is keras.layers.LSTM

    def lmu(units: int, sequence_length: int = 1, **kwargs: Any) -> Any:
        return keras.layers.GRU(units, **kwargs)

    assert with_length(lmu, 20).keywords == {"sequence_length": 20}  # type: ignore[attr-defined]


@needs_torch
@pytest.mark.parametrize(
    "spec",
    [
        "dict=torch:tests.byo_factories:dict_state",
        "time-first=torch:tests.byo_factories:time_first_glued",
        "log-scan=torch:tests.planted_rounding:log_scan_mingru",
    ],
)
def test_a_correct_module_that_is_not_nn_lstm_passes_the_state_checks_of_a_task(spec: str) -> None:
    """Trained on count_steps (smoke): fed in chunks with the state it hands back, each continues
    the sequence (carry_state), and from the zero state it does not (cold_start)."""
    from rnn_behaviour.benchmarks.matrix import Cell, Matrix

    name = spec.split("=")[0]
    matrix = Matrix(tier="smoke", seeds=1, adapters={name: resolve(spec)}, tasks=TASKS)
    trained = matrix.train(Cell(name, "count_steps", "fit"))
    for check in ("fit", "carry_state", "cold_start"):
        (record,) = matrix.evaluate(Cell(name, "count_steps", check), trained)
        assert record["passed"], (check, record["value"], record["detail"])
