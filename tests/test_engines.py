"""Inference-engine rows (adapters/engines): ONNX Runtime running a torch row's exported model.

The built-in rows pass the checks that judge the engine (its ONNX node against the reference) and
the conversion (`export_parity`, the exported model against its source); each planted defect of
tests/planted_engines.py fails the check there to catch it, with the cause in words; a graph that
fixes the example's length is refused at conversion with the exporter's part in it (nn.RNN under
the default exporter, measured); the matrix trains the source row's model once for both rows; an
engine row shares its source row's behaviour expectations. Skipped without onnxruntime or torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("torch")

from rnn_behaviour.adapters import AdapterError, resolve
from rnn_behaviour.adapters.engines import from_torch
from rnn_behaviour.adapters.engines.graph import ConversionError
from rnn_behaviour.adapters.engines.model import RuntimeAdapter
from rnn_behaviour.benchmarks.conformance import Subject, run, skip_reason
from rnn_behaviour.benchmarks.expectations import expected_failure
from rnn_behaviour.benchmarks.matrix import Cell, Matrix
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.base import ModelSpec
from tests import planted_engines as planted

SPEC = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)


def judge(adapter: Any, check: str) -> Any:
    return run(check, Subject(adapter.name, adapter))


# --- the built-ins pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("check", ["forward_parity", "gate_order", "variable_length", "regimes", "export_parity"])
def test_ort_rnn_passes(check: str) -> None:
    outcome = judge(resolve("ort-rnn").load(), check)
    assert outcome.passed, outcome.detail


def test_ort_lstm_export_parity_under_the_default_exporter() -> None:
    adapter = resolve("ort-lstm").load()
    outcome = judge(adapter, "export_parity")
    assert outcome.passed, outcome.detail
    assert "torch.onnx.export(dynamo=True)" in outcome.detail


def test_engine_rows_skip_what_needs_training_or_gradients() -> None:
    adapter = resolve("ort-gru").load()
    for check, words in (("gradients", "inference only"), ("determinism", "inference-only row"),
                         ("trained_transplant", "inference-only row")):  # fmt: skip
        reason = skip_reason(check, adapter.name, adapter.capabilities, adapter.capability_notes, adapter)
        assert reason is not None and words in reason, reason
    torch_row = resolve("torch-gru").load()
    assert "not an inference-engine row" in str(skip_reason("export_parity", "torch-gru", torch_row.capabilities,
                                                             {}, torch_row))  # fmt: skip


def test_engine_model_does_not_train_and_names_a_bad_state() -> None:
    adapter = resolve("ort-lstm").load()
    model = adapter.convert(adapter.source.build(SPEC, 0))
    with pytest.raises(AdapterError, match="does not train"):
        model.fit(None, None, None, None)  # type: ignore[arg-type]
    x = np.zeros((2, 4, 3), np.float32)
    _, state = model.predict(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(AdapterError, match="do not fit a batch of 2"):
        model.predict(x, state)
    assert adapter.compute_path()["trained_by"] == "torch-lstm"


# --- planted defects fail, naming the cause ------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "check", "words"),
    [
        (planted.torch_order_lstm, "forward_parity", "gates permuted"),
        (planted.torch_order_lstm, "gate_order", "gates permuted"),
        (planted.ignored_lengths_gru, "variable_length", "the padded steps are run"),
        (planted.reset_before_gru, "export_parity", "linear_before_reset=0"),
        (planted.dropped_c_lstm, "export_parity", "c state passed in zeroed"),
        (planted.dropped_c_lstm, "export_parity", "has no initial_c input"),
        (planted.reversed_lstm, "export_parity", "read backwards"),
        (planted.reversed_lstm, "export_parity", "direction='reverse'"),
    ],
)
def test_planted_defect_fails(factory: Any, check: str, words: str) -> None:
    outcome = judge(factory(), check)
    assert not outcome.passed
    assert words in outcome.detail, outcome.detail


def test_a_graph_unrolled_for_a_fixed_length_is_refused_at_load() -> None:
    """The planted exporter leaves T static: the row's load-time probe (a user's exporter) says so."""
    with pytest.raises(AdapterError, match="failed at load: the exported graph fixes its input's time at 7"):
        planted.fixed_time_lstm()


def test_planted_defects_pass_what_they_do_not_break() -> None:
    """The exporters' defects are in the exported model only: the engine's node (built from canonical
    weights) is right, so the bare-layer checks pass; sharpness is the conversion check's."""
    assert judge(planted.reset_before_gru(), "forward_parity").passed
    assert judge(planted.torch_order_lstm(), "export_parity").passed


# --- exporters: the default one and nn.RNN, and one export after another ----------------------


def test_default_exporter_unrolls_nn_rnn_and_the_conversion_says_so() -> None:
    """Finding (torch 2.13): torch.onnx.export(dynamo=True) of nn.RNN fixes T at the example's length
    despite dynamic_shapes, so ort-rnn goes through dynamo=False; the conversion names the cause."""
    adapter = RuntimeAdapter("torch-rnn", exporter="dynamo")
    with pytest.raises(ConversionError) as info:
        adapter.convert(adapter.source.build(SPEC, 0))
    assert "fixes its input's time at 7" in str(info.value)
    assert "pytorch/pytorch#184872" in str(info.value)


def test_every_dynamo_export_in_a_process_keeps_time_dynamic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding (torch 2.13): without clearing aten::lstm's dispatch cache, every dynamo export after
    the first in a process silently fixes T (`from_torch.fresh_rnn_dispatch`). With it, two in a row
    keep it; without it the second is refused at conversion. When this test fails because the second
    one keeps T too, torch fixed it: drop the workaround."""
    adapter = RuntimeAdapter("torch-lstm")
    for seed in (0, 1):
        adapter.convert(adapter.source.build(SPEC, seed))
    monkeypatch.setattr(from_torch, "fresh_rnn_dispatch", lambda: None)
    with pytest.raises(ConversionError, match="fixes its input's time"):  # the third export of the process
        adapter.convert(adapter.source.build(SPEC, 2))


def test_a_users_exporter_and_its_error() -> None:
    def broken(module: Any, args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("no translation for aten::foo")

    with pytest.raises(
        AdapterError,
        match=r"converting torch-gru's model failed at load: the export .*broken. failed: RuntimeError: no translation",
    ):
        RuntimeAdapter("torch-gru", exporter=broken, name="mine")
    with pytest.raises(AdapterError, match="unknown torch exporter 'onnx2'"):
        RuntimeAdapter("torch-gru", exporter="onnx2")


# --- the matrix and the expectations ----------------------------------------------------------------


def test_the_matrix_trains_the_source_once_for_both_rows() -> None:
    adapters = {name: resolve(name) for name in ("torch-lstm", "ort-lstm")}
    matrix = Matrix(tier="smoke", seeds=1, adapters=adapters, tasks={"count_steps": TASKS["count_steps"]})
    cells = matrix.cells()
    assert {c.group for c in cells} == {"torch-lstm-count_steps"}
    matrix.expect(cells)
    (engine,) = matrix.train(Cell("ort-lstm", "count_steps", "fit", "torch-lstm"))
    (source,) = matrix.train(Cell("torch-lstm", "count_steps", "fit"))
    assert engine.log is source.log and engine.model is not source.model
    (record,) = matrix.evaluate(Cell("ort-lstm", "count_steps", "fit", "torch-lstm"), [engine])
    assert record["compute_path"]["trained_by"] == "torch-lstm" and record["passed"]
    for cell in cells:
        matrix.done(cell)
    assert not matrix._trained


def test_engine_rows_share_their_source_rows_expectations() -> None:
    for task, check in (("sine_rollout", "rollout"), ("parity", "fit")):
        mine = expected_failure("ort-rnn", task, check, "smoke", trained_by="torch-rnn")
        assert mine is not None and mine == expected_failure("torch-rnn", task, check, "smoke")
    assert "clip_add_bias" in str(
        expected_failure("ort-gru", "conformance", "bad_input", "smoke", trained_by="torch-gru")
    )
    assert expected_failure("ort-rnn", "conformance", "bad_input", "smoke", trained_by="torch-rnn") is None


def test_openvino_default_precision_is_named_when_it_fails() -> None:
    """Finding (this machine, avx512_bf16): OpenVINO's CPU default is bf16; the built-in ov rows pin f32.
    A row left at the default fails parity, and the failure says why and what fixes it."""
    pytest.importorskip("openvino")
    adapter = planted.default_precision_lstm()
    if "bf16" not in adapter.engine.default_precision():
        pytest.skip(f"this CPU's OpenVINO default precision is {adapter.engine.default_precision()}, not bf16")
    outcome = judge(adapter, "regimes")
    assert not outcome.passed
    assert "INFERENCE_PRECISION_HINT=f32 computes in float32" in outcome.detail, outcome.detail
    pinned = resolve("ov-lstm").load()
    assert judge(pinned, "regimes").passed and pinned.compute_path()["precision"] == "f32"


def test_openvino_ignores_sequence_lens_with_dynamic_shapes() -> None:
    """Finding (openvino 2026.4.1): padded rows run their padding into Y_h; an expected failure with its cause."""
    pytest.importorskip("openvino")
    outcome = judge(resolve("ov-gru").load(), "variable_length")
    assert not outcome.passed and "the padded steps are run" in outcome.detail
    assert "openvinotoolkit/openvino#10710" in str(
        expected_failure("ov-gru", "conformance", "variable_length", "smoke")
    )


def test_a_broken_engine_row_is_one_usage_error_line(pytester: pytest.Pytester) -> None:
    """Given with --adapter, a row whose exporter cannot export stops the run before anything trains."""
    pytester.makepyfile(
        myrows="""
from rnn_behaviour.adapters.engines.model import RuntimeAdapter

def broken(module, args, **kwargs):
    raise RuntimeError("no translation for aten::foo")

def row():
    return RuntimeAdapter("torch-gru", exporter=broken)
"""
    )
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess("-p", "rnn_behaviour.plugin", "--adapter", "mine=myrows:row", "--co", "-q")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: --adapter mine=myrows:row: converting torch-gru's model failed at load: the export (broken) failed: *"]
    )


@pytest.mark.parametrize("source", ["keras-lstm", "keras-gru", "keras-rnn"])
def test_keras_trained_weights_through_the_node_builder(source: str) -> None:
    """exporter="nodes": a Keras model's canonical weights as MatMul/Add, ONNX's own node and the head."""
    pytest.importorskip("keras")
    adapter = RuntimeAdapter(source, exporter="nodes", name=f"ort-nodes-{source}")
    outcome = judge(adapter, "export_parity")
    assert outcome.passed, outcome.detail


def test_the_node_builder_names_a_state_in_another_order() -> None:
    """flax-lstm's carry is (c, h): through "nodes" (which reads (h, c)) export_parity says so."""
    pytest.importorskip("flax")
    outcome = judge(RuntimeAdapter("flax-lstm", exporter="nodes", name="ort-nodes-flax-lstm"), "export_parity")
    assert not outcome.passed and "final state's parts come back swapped (c, h for h, c)" in outcome.detail


@pytest.mark.parametrize("source", ["torch-lstm", "torch-gru", "torch-rnn"])
def test_openvino_from_the_torch_module(source: str) -> None:
    """exporter="openvino": `ov.convert_model` of the torch module itself (OpenVINO's PyTorch frontend, no ONNX)."""
    pytest.importorskip("openvino")
    adapter = RuntimeAdapter(source, runtime="openvino", exporter="openvino", name=f"ovt-{source}")
    outcome = judge(adapter, "export_parity")
    assert outcome.passed, outcome.detail
    assert "openvino.convert_model" in outcome.detail
    with pytest.raises(AdapterError, match="exporter 'openvino' makes an OpenVINO model, which onnxruntime cannot"):
        RuntimeAdapter(source, exporter="openvino")


def test_a_users_engine_row_joins_its_sources_groups(pytester: pytest.Pytester) -> None:
    """Given with --adapter, an engine row's cells are scheduled with its source row's, as the built-ins'."""
    pytester.makepyfile(
        myrows="""
from rnn_behaviour.adapters.engines.model import RuntimeAdapter

def row():
    return RuntimeAdapter("torch-rnn", exporter="torchscript")
"""
    )
    pytester.makeconftest("""
def pytest_collection_finish(session):
    from rnn_behaviour.plugin import MATRIX
    groups = {c.group for c in session.config.stash[MATRIX].cells() if c.adapter == "mine"}
    print("GROUPS", sorted(groups)[:2])
""")
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess(
        "-p", "rnn_behaviour.plugin", "--adapter", "mine=myrows:row", "--co", "-q", "-s", "-k", "mine-count_steps"
    )
    assert "GROUPS ['torch-rnn-adding', 'torch-rnn-adjacent_sum']" in result.stdout.str()


def test_a_correct_users_exporter_passes() -> None:
    """A user's exporter function (the legacy exporter called as the contract says) is judged like the built-ins'."""
    import io

    import torch

    def legacy(module: Any, args: Any, **kwargs: Any) -> bytes:
        buffer = io.BytesIO()
        torch.onnx.export(module, args, buffer, dynamo=False, **kwargs)
        return buffer.getvalue()

    outcome = judge(RuntimeAdapter("torch-gru", exporter=legacy, name="mine"), "export_parity")
    assert outcome.passed, outcome.detail
    assert "legacy" in outcome.detail
