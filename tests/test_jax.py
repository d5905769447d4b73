"""The JAX adapter (adapters/on_jax): `jax:pkg.module:factory` with a Flax NNX module.

The load-time probe's one-line errors; the model's contract (shapes, the state handed back, seeding,
a train step, UNSCORED targets, the clip norm); a correct hand-written NNX LSTM (tests/jax_modules.py:
a `jax.lax.scan` loop, no validation of its own, its weights through export_weights()/import_weights(),
padded batches through seq_lengths) passes count_steps at smoke and every conformance check that
applies; planted defects (a dropped state, swapped gates, a backward stopped at the carry, padded
steps that update the state) fail the check that is there to catch them, and the built-ins flax-lstm
and flax-gru pass those checks; flax-gru's transplant names the direction its form cannot hold; the
probe's one-line reasons for turning weight_io or variable_length off. Skipped without jax.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

from rnn_behaviour.adapters import AdapterError, resolve
from rnn_behaviour.benchmarks.conformance import (
    CHECKS,
    CHECKS_BY_NAME,
    Subject,
    counterpart_name,
    run,
    skip_reason,
)
from rnn_behaviour.benchmarks.matrix import Cell, Matrix
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.base import UNSCORED, Budget

HAND = "hand=jax:tests.jax_modules:lstm"
FLAX = "jax:rnn_behaviour.adapters.on_jax.builtins:flax_lstm"


@functools.cache
def adapter(spec: str) -> Any:
    return resolve(spec).load()


def test_the_jax_prefix_wraps_a_factory_in_the_jax_adapter() -> None:
    ref = resolve("jax:tests.jax_modules:lstm")
    assert (ref.name, ref.framework, ref.target) == ("lstm", "jax", "rnn_behaviour.adapters.on_jax.model:JaxAdapter")
    mine = adapter(HAND)
    assert mine.framework == "jax" and mine.name == "hand"
    assert set(mine.versions()) == {"jax", "jaxlib", "flax", "optax"}
    assert mine.compute_path()["platform"] == "cpu"


def test_cuda_without_a_gpu_is_an_adapter_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import jax

    from rnn_behaviour.adapters.base import DEVICE_VARIABLE
    from rnn_behaviour.adapters.on_jax.model import select_device

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("jax sees a GPU here")
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda")
    with pytest.raises(AdapterError, match=r"--device cuda, but jax .* sees no GPU"):
        select_device()
    monkeypatch.setenv(DEVICE_VARIABLE, "auto")
    assert select_device().platform == "cpu"


# --- the load-time probe -------------------------------------------------------------------------

JAX_BAD = [
    ("no_arguments", "no_arguments(5, 8, rngs=nnx.Rngs(0)) raised TypeError: no_arguments() got an unexpected keyword "
     "argument 'rngs'; a jax factory is factory(input_size, hidden_size, *, rngs) -> nnx.Module"),
    ("no_rngs", "a jax factory is factory(input_size, hidden_size, *, rngs)"),
    ("NOT_CALLABLE", "tests.jax_modules:NOT_CALLABLE is a int, not a callable factory"),
    ("not_a_module", "returned str, not a flax.nnx.Module"),
    ("doubles_hidden", "returned y of shape (3, 7, 16); expected (3, 7, 8) = (batch, time, hidden_size)"),
    ("only_y", "returned a jax.Array alone; the module must return (y, state)"),
    ("no_state_argument", "(x of shape (3, 7, 5), None) raised TypeError: NoStateArgument.__call__() takes 2 "
     "positional arguments but 3 were given; the module is called module(x, state=None)"),
    ("rejects_state", "the state is not accepted back: tests.jax_modules:rejects_state(5, 8, rngs=nnx.Rngs(0))(x of "
     "shape (3, 1, 5), state) with the state module(x) returned raised ValueError: this module takes no initial state"),
    ("reshapes_state", "returned a state of another structure or shape (tuple of 2 array(s) of shape(s) [(3, 8), "
     "(3, 8)]) than the one given (ArrayImpl of 1 array(s) of shape(s) [(2, 3, 8)])"),
    ("time_first", "returned a state of shape(s) [(7, 8), (7, 8)], without the batch size 3: is x read as (time, "
     "batch, features)?"),
    ("eager_only", "does not run under jax.jit and jax.grad as training takes it"),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "message"), JAX_BAD)
def test_a_bad_jax_factory_is_one_line_naming_it_at_load(factory: str, message: str) -> None:
    with pytest.raises(AdapterError) as info:
        resolve(f"jax:tests.jax_modules:{factory}").load()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# --- the model's contract ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def count_steps() -> tuple[Any, Any, Budget]:
    task = TASKS["count_steps"]
    return task, task.generate(np.random.default_rng(0), "smoke"), task.budget("smoke")


@pytest.mark.parametrize("spec", [HAND, FLAX])
def test_predict_hands_the_state_out_and_back(spec: str, count_steps) -> None:
    task, data, _ = count_steps
    model = adapter(spec).build(task.spec, seed=0)
    x = data.test.x[:4]
    whole, state = model.predict(x)
    assert whole.shape == (4, x.shape[1], 1) and all(isinstance(s, np.ndarray) for s in _leaves(state))
    first, carried = model.predict(x[:, :5])
    rest, _ = model.predict(x[:, 5:], carried)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-6)
    cold, _ = model.predict(x[:, 5:])
    assert np.abs(cold - whole[:, 5:]).max() > 1e-3  # so the carried state made a difference
    last, _ = model.predict_last(x)
    np.testing.assert_allclose(last, whole[:, -1], atol=1e-6)
    with pytest.raises(AdapterError, match="features per step"):
        model.predict(np.zeros((2, 3, 4), np.float32))
    twin, _ = model.float64_twin().predict(x)  # the rounding checks' float64 copy
    assert twin.dtype == np.float64 and 0 < np.abs(twin - whole).max() < 1e-5


def _leaves(nest: Any) -> list[Any]:
    return list(nest) if isinstance(nest, tuple | list) else [nest]


def test_same_seed_same_training_bit_for_bit_other_seed_other_model(count_steps) -> None:
    task, data, budget = count_steps
    train = replace(data.train, x=data.train.x[:96], y=data.train.y[:96])
    runs = []
    for seed in (0, 0, 1):
        model = adapter(HAND).build(task.spec, seed=seed)
        log = model.fit(train, data.valid, replace(budget, max_epochs=2), stop=lambda m: False)
        assert log.epochs == 2 and log.stop_reason == "max_epochs" and len(log.loss_history) == 2
        runs.append((log.loss_history, model.predict(data.test.x[:8])[0]))
    assert runs[0][0] == runs[1][0] and runs[0][0] != runs[2][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    log = adapter(HAND).build(task.spec, seed=0).fit(train, data.valid, budget, stop=lambda m: True)
    assert log.epochs == 1 and log.stop_reason == "criterion"


def test_a_train_step_alone_learns(count_steps) -> None:
    task, data, budget = count_steps
    step = adapter(HAND).build(task.spec, seed=0).make_train_step(budget)
    losses = [step(data.train.x[:32], data.train.y[:32]) for _ in range(5)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_unscored_targets_are_left_out_of_the_loss() -> None:
    """As torch's ignore_index=-100: scoring only the first step of the whole sequence gives the
    loss of that first step alone (the model is causal), and the mean is over scored targets."""
    task = TASKS["copy_memory"]
    data = task.generate(np.random.default_rng(0), "smoke")
    x, y = data.train.x[:32], data.train.y[:32].copy()
    y[:, 0] = np.arange(32) % 10
    y[:, 1:] = UNSCORED
    budget = task.budget("smoke")
    whole = adapter(HAND).build(task.spec, seed=0).make_train_step(budget)(x, y)
    first = adapter(HAND).build(task.spec, seed=0).make_train_step(budget)(x[:, :1], y[:, :1])
    assert np.isfinite(whole) and whole == pytest.approx(first, rel=1e-5)


def test_the_clip_norm_rescales_the_gradient_before_adam(count_steps) -> None:
    """Adam's first step is lr * g / (|g| + eps) per weight: unclipped about lr; with the gradient
    clipped to a global norm far below eps, far smaller."""
    task, data, budget = count_steps
    moved = []
    for clip in (None, 1e-12):
        model = adapter(HAND).build(task.spec, seed=0)
        before = [np.array(p) for p in _params(model)]
        model.make_train_step(replace(budget, clip_norm=clip))(data.train.x[:32], data.train.y[:32])
        moved.append(max(float(np.abs(np.array(a) - b).max()) for a, b in zip(_params(model), before, strict=True)))
    assert moved[0] > 0.5 * budget.learning_rate and moved[1] < 0.01 * moved[0]


def _params(model: Any) -> list[Any]:
    import jax

    return jax.tree.leaves(model.params)


# --- behaviour and conformance -------------------------------------------------------------------


@functools.cache
def _trained(spec: str) -> Any:
    name = spec.split("=")[0]
    matrix = Matrix(tier="smoke", seeds=1, adapters={name: resolve(spec)}, tasks=TASKS)
    return matrix, matrix.train(Cell(name, "count_steps", "fit"))[0]


def _check(spec: str, check: str) -> Any:
    matrix, trained = _trained(spec)
    task = TASKS["count_steps"]
    return task.evaluate(check, trained.model, matrix.data(task, 0), "smoke")


@pytest.mark.parametrize("check", ["fit", "shorter", "carry_state", "cold_start"])
def test_a_handwritten_nnx_lstm_passes_count_steps(check: str) -> None:
    result = _check(HAND, check)
    assert result.passed, result.detail


def test_a_dropped_state_fails_carry_state() -> None:
    result = _check("dropped=jax:tests.jax_modules:dropped_state", "carry_state")
    assert not result.passed and "the state handed back in is ignored" in result.detail, result.detail


#: Why a check cannot apply to the hand-written LSTM (and what must say so): it takes neither of
#: nn.LSTM's stacking keywords, and device_parity is PyTorch's.
NOT_APPLICABLE = {
    "stacked": "takes no num_layers keyword (nn.LSTM's); nothing to stack",
    "bidirectional": "takes no bidirectional keyword (nn.LSTM's); nothing to stack",
    "device_parity": "this adapter is not PyTorch",
    "export_parity": "not an inference-engine row",
}


def _outcome(mine: Any, check: str) -> tuple[str | None, Any]:
    """(why the check does not apply, None) or (None, its outcome), its counterpart (torch's built-in
    of the same cell: the triangle's next from flax-*, the one a user adapter is compared with) loaded."""
    reason = skip_reason(check, mine.name, mine.capabilities, mine.capability_notes, mine)
    if reason is not None:
        return reason, None
    counterpart = None
    if "counterpart" in CHECKS_BY_NAME[check].needs:
        pytest.importorskip("torch")
        counterpart = adapter(str(counterpart_name(mine)))
    outcome = run(check, Subject(mine.name, mine, counterpart))
    return outcome.skipped or None, outcome


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_a_handwritten_nnx_lstm_passes_every_conformance_check_that_applies(check: str) -> None:
    """Its export_weights()/import_weights() (the canonical layout, no bh_*) and seq_lengths give
    it every weight check and variable_length; those that do not apply say why."""
    reason, outcome = _outcome(adapter(HAND), check)
    if check in NOT_APPLICABLE:
        assert reason is not None and NOT_APPLICABLE[check] in reason, reason
        return
    assert reason is None, reason
    assert outcome.passed, outcome.detail


#: Each planted defect (tests/jax_modules.py, one bug each), the check that must catch it and what
#: its detail must say is wrong.
PLANTED = [
    ("dropped=jax:tests.jax_modules:dropped_state", "streaming", "the state passed in is dropped"),
    ("swapped=jax:tests.jax_modules:swapped_gates", "forward_parity",
     "the gates permuted (i reads f, f reads i): the layer does not read the canonical gate order i, f, g, o"),
    ("swapped=jax:tests.jax_modules:swapped_gates", "gate_order", "the gates permuted (i reads f, f reads i)"),
    ("stopped=jax:tests.jax_modules:stopped_carry", "gradients", "no gradient reaches the initial state"),
    ("stopped=jax:tests.jax_modules:stopped_carry", "self_gradients", "autograd's d/dx there is exactly 0"),
    ("padded=jax:tests.jax_modules:padded_steps", "variable_length",
     "it is the state after all 12 steps, padding included (h_T), not the one at its last valid step 5: the padded "
     "steps are run"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "check", "says"), PLANTED)
def test_a_planted_jax_defect_fails_its_check(spec: str, check: str, says: str) -> None:
    mine = adapter(spec)
    assert mine.capabilities.weight_io and mine.capabilities.variable_length  # so each check runs
    outcome = run(check, Subject(mine.name, mine))
    assert not outcome.skipped and not outcome.passed and says in outcome.detail, outcome.detail


@pytest.mark.parametrize("check", sorted({check for _, check, _ in PLANTED}))
@pytest.mark.parametrize("name", ["flax-lstm", "flax-gru"])
def test_the_flax_builtins_pass_the_checks_that_catch_the_planted_defects(name: str, check: str) -> None:
    """What the planted defects fail, Flax's own cells pass (the hand-written LSTM: above, with every
    other check); flax-gru in its no_bhn form."""
    reason, outcome = _outcome(adapter(name), check)
    assert reason is None, reason
    assert outcome.passed, outcome.detail
    if name == "flax-gru" and "weight_io" in CHECKS_BY_NAME[check].needs:
        assert outcome.detail.startswith("[no_bhn GRU] "), outcome.detail


def test_flax_gru_transplants_into_torch_and_names_the_direction_it_cannot_hold() -> None:
    """torch-gru's initial bias_hh has a b_hn nnx.GRUCell has no place for: that direction is not
    judged, and its detail says why (google/flax#5594); the other is, and passes."""
    pytest.importorskip("torch")
    mine = adapter("flax-gru")
    assert counterpart_name(mine) == "torch-gru"
    outcome = run("transplant", Subject(mine.name, mine, adapter("torch-gru")))
    assert outcome.passed and not outcome.skipped, outcome.detail
    assert "flax-gru -> torch-gru max |diff|" in outcome.detail, outcome.detail
    assert "torch-gru -> flax-gru not judged: the no_bhn GRU (Flax's nnx.GRUCell)" in outcome.detail, outcome.detail
    assert "google/flax#5594" in outcome.detail and "|bh_n| up to" in outcome.detail, outcome.detail


# --- the probe's one-line reasons for a capability it turns off ------------------------------------

#: A module the probe accepts with weight_io (and with it variable_length) off, and why.
NO_WEIGHTS = {
    "two_cells": "its module has 2 of Flax's cells (LSTMCell, OptimizedLSTMCell, GRUCell, SimpleCell) where weight "
    "conformance needs exactly one holding all its parameters, and no export_weights()/import_weights()",
    "extra_scale": "it has parameters outside its LSTMCell (453 in all, 448 in the cell): the reference's equations "
    "do not apply",
}


@pytest.mark.parametrize("factory", list(NO_WEIGHTS))
def test_a_module_beside_or_beyond_one_flax_cell_gets_weight_io_off_with_the_reason(factory: str) -> None:
    mine = adapter(f"jax:tests.jax_modules:{factory}")
    assert not mine.capabilities.weight_io and not mine.capabilities.variable_length
    assert mine.info.access is None and NO_WEIGHTS[factory] in mine.capability_notes["weight_io"]
    reason = str(skip_reason("forward_parity", mine.name, mine.capabilities, mine.capability_notes, mine))
    assert reason.startswith(f"{factory}: no weight conformance: ") and NO_WEIGHTS[factory] in reason, reason
    assert "\n" not in reason
    assert mine.capabilities.state and mine.capabilities.native_module  # the checks without weights still run


def test_a_module_whose_call_takes_no_seq_lengths_gets_variable_length_off_with_the_reason() -> None:
    mine = adapter("jax:tests.jax_modules:no_lengths")
    assert mine.capabilities.weight_io and (mine.info.access, mine.cell) == ("flax", "lstm")
    assert not mine.capabilities.variable_length
    reason = str(skip_reason("variable_length", mine.name, mine.capabilities, mine.capability_notes, mine))
    assert reason == (
        "no_lengths: no variable-length check: its module's __call__ takes no seq_lengths keyword (nnx.RNN's), so "
        "no padded batch can be handed in"
    )


def test_the_handwritten_lstm_is_reached_through_its_export_with_padded_batches() -> None:
    mine = adapter(HAND)
    assert (mine.info.access, mine.cell, mine.info.recurrent_bias, mine.variant) == ("export", "lstm", False, "")
    assert mine.capabilities.weight_io and mine.capabilities.variable_length and mine.capability_notes == {}


def test_device_cuda_on_a_jax_without_a_gpu_is_one_line_for_a_jax_row_and_a_skip_for_the_flax_builtins() -> None:
    """A `jax:` row under --device cuda where jax sees no GPU stops the run before anything
    trains; beside a torch that the run also uses, the flax built-ins are skipped with the reason
    (DeviceUnavailable), not failed."""
    import jax

    from rnn_behaviour.adapters.base import DeviceUnavailable
    from rnn_behaviour.adapters.on_jax.model import select_device
    from rnn_behaviour.environment import device_problem

    try:
        jax.devices("gpu")
        pytest.skip("jax sees a GPU here")
    except RuntimeError:
        pass
    line = device_problem("cuda", ["mine=jax:examples.jax_lstm:jax_lstm"])
    assert line is not None and "jax" in line and "sees no GPU" in line and "jax[cuda12]" in line
    assert device_problem("cpu", ["jax:examples.jax_lstm:jax_lstm"]) is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNN_BEHAVIOUR_DEVICE", "cuda")
        with pytest.raises(DeviceUnavailable, match="sees no GPU"):
            select_device()


def _cache_dir(env: dict[str, str]) -> str:
    import os
    import subprocess
    import sys

    code = "from rnn_behaviour.adapters import resolve; print(resolve('flax-lstm').load().cache)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "RNN_BEHAVIOUR_JAX"))}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_the_compilation_cache_is_on_unless_turned_off_or_the_users_own(tmp_path: Any) -> None:
    """Flax models compile once per machine, not once per run: the persistent cache is in the
    suite's cache directory, off with RNN_BEHAVIOUR_JAX_CACHE=off, and a user's own is kept."""
    assert _cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "rnn-behaviour" / "jax")
    assert _cache_dir({"RNN_BEHAVIOUR_JAX_CACHE": str(tmp_path / "mine")}) == str(tmp_path / "mine")
    assert _cache_dir({"RNN_BEHAVIOUR_JAX_CACHE": "off"}) == "None"
    assert _cache_dir({"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "theirs")}) == str(tmp_path / "theirs")


def test_a_compiled_epoch_makes_the_updates_of_one_step_per_batch(count_steps) -> None:
    """`fit` runs each epoch as one `jax.lax.scan` over its minibatches: the same updates, in the
    same order, as the jitted step called once per batch (`make_train_step`), to float32 rounding."""
    from rnn_behaviour.adapters.base import epoch_batches

    task, data, budget = count_steps
    budget = replace(budget, max_epochs=2, clip_norm=1.0)
    n = 8 * budget.batch_size + 5  # a remainder, dropped by both
    train = replace(data.train, x=data.train.x[:n], y=data.train.y[:n])
    scanned = adapter(FLAX).build(task.spec, seed=3)
    log = scanned.fit(train, data.valid, budget, stop=lambda m: False)
    stepped = adapter(FLAX).build(task.spec, seed=3)
    step = stepped.make_train_step(budget)
    for epoch in range(2):
        losses = [
            step(train.x[idx], train.y[idx]) for idx in epoch_batches(n, budget.batch_size, budget.shuffle, stepped.rng)
        ]
        assert log.loss_history[epoch] == pytest.approx(float(np.mean(losses)), rel=1e-5)
    for a, b in zip(_params(scanned), _params(stepped), strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6)


def test_a_process_crowded_with_compiled_programs_drops_them_and_computes_the_same(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """adapters/on_jax/mappings.py: every program XLA compiles on the CPU stays mapped into the process
    while JAX caches it; past the kernel's limit on mappings (vm.max_map_count) mapping fails and the
    process dies (`-k flax- -n 0` at smoke: "LLVM compilation error: Cannot allocate memory", then a
    segfault). A crowded process drops JAX's caches before its next model, and the model computes the
    same as before."""
    import jax
    import jax.numpy as jnp

    from rnn_behaviour.adapters.on_jax import mappings

    if mappings.count() is None or mappings.limit() is None:
        pytest.skip("no /proc here: the guard does nothing")

    @jax.jit
    def walk(x: Any) -> Any:
        return jax.lax.scan(lambda c, a: (jnp.tanh(c + a), c), jnp.zeros(x.shape[1:]), x)[1]

    monkeypatch.setattr(mappings, "_floor", [0])
    before = mappings.count()
    for length in range(1, 41):  # a program per shape, as the suite's curves and chunked streams make
        walk(jnp.zeros((length, 2, 3)))
    crowded = mappings.count()
    assert crowded is not None and before is not None and crowded > before + 100
    assert not mappings.release_if_crowded(share=(crowded + 1000) / mappings.limit())  # below the share: kept
    assert mappings.release_if_crowded(share=crowded / (2 * mappings.limit()))  # "crowded": dropped
    after = mappings.count()
    assert after is not None and after < crowded - 100
    # crowded by what it cannot drop (nothing compiled since): not dropped again at every model
    assert not mappings.release_if_crowded(share=1 / mappings.limit())

    with monkeypatch.context() as patch:
        patch.setattr(mappings, "LIMIT", tmp_path / "absent")
        assert not mappings.release_if_crowded(share=0.0)  # no limit to read: left alone

    adapter = resolve("flax-lstm").load()
    task = TASKS["count_steps"]
    x = np.random.default_rng(0).normal(size=(2, 7, task.spec.input_size)).astype(np.float32)
    y = adapter.build(task.spec, 0).predict(x)[0]
    dropped, clear = [], jax.clear_caches
    monkeypatch.setattr(mappings.jax, "clear_caches", lambda: (dropped.append(1), clear()))
    monkeypatch.setattr(mappings, "SHARE", 0.0)  # every build now drops the caches first
    assert np.array_equal(adapter.build(task.spec, 0).predict(x)[0], y) and dropped == [1]
