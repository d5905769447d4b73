"""Small fake adapters for the plugin's own tests: exact, broken on purpose, or crashing.

They solve the counting tasks (seed 000) without a framework, so `pytester` runs of the real
plugin take seconds. Select them with `--adapter NAME=tests.fakes:Class -k "NAME-count"`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import Capabilities, FitLog, train_loop
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split
from rnn_behaviour.tasks.counting import RunningSum, StateReset


class _FakeModel:
    n_params = 0

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        return FitLog(epochs=1, seconds=0.0, loss_history=[0.0], stop_reason="criterion", time_to_criterion_s=0.0)

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self.predictor.predict(x, state)


class CountingOracle:
    """Counts exactly, carries its count as the state: passes every counting check."""

    name = "oracle"
    framework = "numpy"
    capabilities = Capabilities()
    predictor: type[RunningSum] = RunningSum

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _FakeModel(self.predictor(per_step=spec.return_sequences))

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def compute_path(self) -> dict[str, str]:
        return {"device": "cpu"}


class BuildLogging(CountingOracle):
    """Writes a line per model built to the file named by $RNN_BEHAVIOUR_TEST_BUILDS."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        with open(os.environ["RNN_BEHAVIOUR_TEST_BUILDS"], "a", encoding="utf-8") as log:
            log.write(f"H{spec.hidden_size}\n")
        return super().build(spec, seed)


class PaddedLogging(CountingOracle):
    """Its models predict padded, as the Flax built-ins' do in the checks (`padded`); each predict
    writes whether it still was to the file named by $RNN_BEHAVIOUR_TEST_BUILDS."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        model = super().build(spec, seed)
        model.padded = True  # type: ignore[attr-defined]
        predict = model.predict

        def logged(x: Any, state: Any = None) -> Any:
            with open(os.environ["RNN_BEHAVIOUR_TEST_BUILDS"], "a", encoding="utf-8") as log:
                log.write(f"padded={model.padded}\n")  # type: ignore[attr-defined]
            return predict(x, state)

        model.predict = logged  # type: ignore[method-assign]
        return model


class ForgetfulState(CountingOracle):
    """Counts exactly but drops the state it is given: must fail carry_state and cold_start."""

    predictor = StateReset


class _Crashing(_FakeModel):
    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        raise RuntimeError("boom in fit")


class CrashingFit(CountingOracle):
    """Raises in fit: every one of its cells must be an error, and the rest of the run go on."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Crashing(RunningSum(per_step=spec.return_sequences))


class NotAnAdapter:
    """Lacks the Adapter protocol: `--adapter` must refuse it before any training."""


class _Learning(_FakeModel):
    """Trains through the shared epoch loop with a loss of 0.5; an exact counter, so the task's
    criterion is met after the first epoch."""

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        return train_loop(self, train, budget, stop, lambda: 0.5)


class Learner(CountingOracle):
    """Trains through `adapters.base.train_loop`: for the progress lines at -v."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Learning(RunningSum(per_step=spec.return_sequences))


class CountingBuilds(CountingOracle):
    """The oracle, writing a line per model it builds to the file $RNN_BEHAVIOUR_BUILD_LOG: how a
    test sees how often each task's model was trained, across pytest-xdist workers."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        with open(os.environ["RNN_BEHAVIOUR_BUILD_LOG"], "a") as log:
            log.write(f"{'count_steps' if spec.return_sequences else 'count_last'} seed {seed} pid {os.getpid()}\n")
        return super().build(spec, seed)


class _Slow(_FakeModel):
    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        time.sleep(1.0)
        return super().fit(train, valid, budget, stop)


class SlowFit(CountingOracle):
    """The counting oracle with a training that takes a second, so two workers that split a
    task's checks (`--dist worksteal`) train the same model at the same time."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _Slow(self.predictor(per_step=spec.return_sequences))
