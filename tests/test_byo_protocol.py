"""Bring your own RNN, the protocol's newer requirements: the Keras layer must run in the suite's
own model (symbolic input of unknown length, traced steps, a stateful twin with the same weights),
and a factory or its module may declare the capabilities it does not have
(`rnn_behaviour_capabilities`, adapters/custom.py), so that the checks needing them are skipped
with its reason. In-process, one load per case.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from adapters import AdapterError, resolve
from benchmarks.conformance import skip_reason
from tasks import TASKS

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
    from adapters.keras_probe import probe_layer

    probe_layer(importlib.import_module("tests.byo_keras_factories").__dict__[spec.rsplit(":", 1)[1]], spec)
    with pytest.raises(AdapterError) as info:
        resolve(spec).load()
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


# --- declared capabilities: rnn_behaviour_capabilities on the factory or its module -------------


@needs_torch
def test_a_declared_stateless_module_is_skipped_with_its_reason() -> None:
    from benchmarks.matrix import Cell, CellSkipped, Matrix

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
        ("torch:tests.byo_factories:unknown_capability", "names 'stateless', not one of stateful_training, variable"),
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
