"""The built-in adapters honour the contract: shapes, state hand-back, seeding, fit, bad input.

No training to criterion here (that is the benchmark's job): models are untrained or trained for
a couple of epochs on a slice of the data. A missing framework skips its adapters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rnn_behaviour.adapters import BUILTINS, AdapterError, AdapterRef, resolve
from rnn_behaviour.adapters.base import Adapter, FitLog, epoch_batches
from rnn_behaviour.benchmarks.matrix import Cell, CellSkipped, Matrix
from rnn_behaviour.tasks import TASKS
from rnn_behaviour.tasks.base import UNSCORED


def _trains(adapter: Adapter) -> None:
    if not adapter.capabilities.training:
        pytest.skip(f"{adapter.name} does not train (an inference-only row: adapters/engines)")


def _load(name: str) -> Adapter:
    try:
        return BUILTINS[name].load()
    except ImportError as exc:
        pytest.skip(f"{name}: framework not installed ({exc})")


@pytest.fixture(scope="module", params=list(BUILTINS))
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return _load(request.param)


@pytest.fixture(scope="module")
def steps_model(adapter: Adapter):
    return adapter.build(TASKS["count_steps"].spec, seed=0)


def test_predict_shapes_and_state(adapter: Adapter, steps_model) -> None:
    x = np.random.default_rng(0).integers(0, 2, (4, 9, 1)).astype(np.float32)
    y, state = steps_model.predict(x)
    assert y.shape == (4, 9, 1) and y.dtype == np.float32
    last = adapter.build(TASKS["count_last"].spec, seed=0)
    y_last, _ = last.predict(x)
    assert y_last.shape == (4, 1)
    assert state is not None
    assert steps_model.n_params > 0


def test_chunks_with_returned_state_equal_the_whole_sequence(steps_model) -> None:
    x = np.random.default_rng(1).integers(0, 2, (3, 12, 1)).astype(np.float32)
    whole, whole_state = steps_model.predict(x)
    first, state = steps_model.predict(x[:, :5])
    second, state = steps_model.predict(x[:, 5:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    for a, b in zip(_arrays(state), _arrays(whole_state), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _arrays(state) -> tuple[np.ndarray, ...]:
    return state if isinstance(state, tuple) else (state,)


def test_zero_state_is_the_default(steps_model) -> None:
    x = np.ones((2, 4, 1), np.float32)
    _, state = steps_model.predict(x)
    zeros = tuple(np.zeros_like(s) for s in _arrays(state))
    zeros = zeros if isinstance(state, tuple) else zeros[0]
    np.testing.assert_array_equal(steps_model.predict(x, zeros)[0], steps_model.predict(x)[0])


def test_same_seed_same_model_other_seed_other_model(adapter: Adapter) -> None:
    spec = TASKS["count_steps"].spec
    x = np.ones((1, 5, 1), np.float32)
    a, b, c = (adapter.build(spec, seed).predict(x)[0] for seed in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_runs_to_the_budget_or_the_criterion(adapter: Adapter) -> None:
    _trains(adapter)
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    train = replace(data.train, x=data.train.x[:96], y=data.train.y[:96])
    budget = replace(task.budget("smoke"), max_epochs=2)
    model = adapter.build(task.spec, seed=0)
    log = model.fit(train, data.valid, budget, stop=lambda m: False)
    assert isinstance(log, FitLog) and log.epochs == 2 and log.stop_reason == "max_epochs"
    assert len(log.loss_history) == 2 and all(np.isfinite(log.loss_history)) and log.seconds > 0
    log = model.fit(train, data.valid, budget, stop=lambda m: True)
    assert log.epochs == 1 and log.stop_reason == "criterion" and log.time_to_criterion_s is not None


def test_bad_input_names_the_problem(steps_model) -> None:
    with pytest.raises(AdapterError, match="3 features per step; the model expects 1"):
        steps_model.predict(np.zeros((1, 4, 3), np.float32))
    with pytest.raises(AdapterError, match="empty"):
        steps_model.predict(np.zeros((1, 0, 1), np.float32))
    with pytest.raises(AdapterError, match=r"\(batch, time, features\)"):
        steps_model.predict(np.zeros((4, 1), np.float32))


def test_versions_and_compute_path(adapter: Adapter) -> None:
    assert adapter.versions() and all(isinstance(v, str) for v in adapter.versions().values())
    assert adapter.compute_path()["device"] == "cpu"


def test_epoch_batches_drop_the_remainder_and_cover_each_index_once() -> None:
    batches = list(epoch_batches(10, 3, True, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(np.concatenate(batches).tolist())) == 9


def test_resolve_names_and_specs() -> None:
    assert resolve("torch-gru") is BUILTINS["torch-gru"]
    ref = resolve("mine=tests.fakes:CountingOracle")
    assert ref.name == "mine" and not ref.builtin and ref.load().name == "mine"
    assert resolve("tests.fakes:CountingOracle").name == "CountingOracle"
    with pytest.raises(AdapterError, match="did you mean torch-gru"):
        resolve("torch-gur")
    with pytest.raises(AdapterError, match="taken by a built-in"):
        resolve("torch-lstm=tests.fakes:CountingOracle")
    with pytest.raises(AdapterError, match="lacks"):
        resolve("tests.fakes:NotAnAdapter").load()


def test_a_missing_framework_skips_with_the_reason() -> None:
    ref = AdapterRef("ghost-lstm", "no_such_framework_xyz.adapter:Ghost")
    matrix = Matrix(tier="smoke", seeds=1, adapters={"ghost-lstm": ref}, tasks=TASKS)
    with pytest.raises(CellSkipped, match="ghost-lstm: its framework is not installed"):
        matrix.adapter("ghost-lstm")


def test_a_jax_row_without_jax_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a missing torch or TensorFlow: `jax:` rows skip, naming the import that failed (jax
    hidden here whether or not it is installed)."""
    import sys

    monkeypatch.setitem(sys.modules, "jax", None)
    for name in [m for m in sys.modules if m.startswith("rnn_behaviour.adapters.on_jax")]:
        monkeypatch.delitem(sys.modules, name)
    ref = resolve("mine=jax:tests.jax_modules:lstm")
    matrix = Matrix(tier="smoke", seeds=1, adapters={"mine": ref}, tasks=TASKS)
    with pytest.raises(CellSkipped, match=r"mine: its framework is not installed \(.*jax"):
        matrix.adapter("mine")


def _plain(value) -> bool:
    """Only the types execnet can send from an xdist worker (and JSON can hold)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_records_hold_only_plain_types(adapter: Adapter, steps_model) -> None:
    from rnn_behaviour.benchmarks.matrix import Cell, Trained
    from rnn_behaviour.tasks.base import CheckResult

    matrix = Matrix(tier="smoke", seeds=1, adapters=dict(BUILTINS), tasks=TASKS)
    trained = Trained(steps_model, FitLog(epochs=1, seconds=0.5, loss_history=[np.float32(1.0)]), adapter)
    result = CheckResult(np.float64(0.01), np.bool_(True), "d", {"e": np.float32(2.0)}, {"x": [np.float32(1.0)]})
    rec = matrix.record(Cell(adapter.name, "count_steps", "fit"), 0, result, trained)
    assert _plain(rec), rec


def test_a_stateful_task_is_skipped_without_the_capability() -> None:
    ref = resolve("oracle=tests.fakes:CountingOracle")
    matrix = Matrix(tier="smoke", seeds=1, adapters={"oracle": ref}, tasks=TASKS)
    with pytest.raises(CellSkipped, match="oracle does not declare stateful training, which streams needs"):
        matrix.train(Cell("oracle", "streams", "online_equals_offline"))


def test_same_seed_same_training_bit_for_bit(adapter: Adapter) -> None:
    """DESIGN §9: same seed, same machine, same metrics. Two trainings of two epochs from seed 0
    give the same loss history and the same outputs, to the bit."""
    _trains(adapter)
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    train = replace(data.train, x=data.train.x[:96], y=data.train.y[:96])
    budget = replace(task.budget("smoke"), max_epochs=2)
    runs = []
    for _ in range(2):
        model = adapter.build(task.spec, seed=0)
        log = model.fit(train, data.valid, budget, stop=lambda m: False)
        runs.append((log.loss_history, model.predict(data.test.x[:8])[0]))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_train_step_alone_learns(adapter: Adapter) -> None:
    """`make_train_step` (what the speed benchmark times) runs one optimizer step on one batch."""
    _trains(adapter)
    task = TASKS["count_steps"]
    data = task.generate(np.random.default_rng(0), "smoke")
    model = adapter.build(task.spec, seed=0)
    step = model.make_train_step(task.budget("smoke"))
    x, y = data.train.x[:32], data.train.y[:32]
    losses = [step(x, y) for _ in range(5)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_unscored_targets_are_left_out_of_the_loss(adapter: Adapter) -> None:
    """A crossentropy target of UNSCORED (copy_memory's non-recall steps) adds nothing to the loss:
    the models are causal, so scoring only the first step of the whole sequence gives the loss of
    that first step alone."""
    _trains(adapter)
    task = TASKS["copy_memory"]
    data = task.generate(np.random.default_rng(0), "smoke")
    x, y = data.train.x[:32], data.train.y[:32].copy()
    assert (y == UNSCORED).any()
    y[:, 0] = np.arange(32) % 10
    y[:, 1:] = UNSCORED
    budget = task.budget("smoke")
    whole = adapter.build(task.spec, seed=0).make_train_step(budget)(x, y)
    first = adapter.build(task.spec, seed=0).make_train_step(budget)(x[:, :1], y[:, :1])
    assert np.isfinite(whole) and whole == pytest.approx(first, rel=1e-5)
