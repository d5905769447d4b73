"""Fake adapters for `restarts` (benchmarks/restarts.py) on cycle_navigation: the automaton
exactly, or the automaton that tracks only the training length and then holds its answer (it fits
length 40 and fails `longer`, as a drifting run of a correct LSTM does)."""

from __future__ import annotations

import numpy as np

from rnn_behaviour.benchmarks.restarts import RESTART_SEED
from rnn_behaviour.tasks.base import ModelSpec
from rnn_behaviour.tasks.tracking import TRAIN_LENGTH, Automaton, CycleNavigation
from tests.fakes import CountingOracle, _FakeModel

_CYCLE = CycleNavigation()


def _automaton(horizon: int | None) -> Automaton:
    return Automaton(np.asarray(_CYCLE.moves, np.int64), _CYCLE.n_states, horizon=horizon)


class DriftsOnFirstRun(CountingOracle):
    """Its first run (the model's own seed) drifts past the training length; a restart learns the
    automaton: cycle_navigation must keep the second run and pass."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _FakeModel(_automaton(TRAIN_LENGTH if seed < RESTART_SEED else None))


class AlwaysDrifts(CountingOracle):
    """Every run drifts past the training length (a cell that cannot hold the state): restarts
    must not hide it; cycle_navigation.longer fails after all three runs."""

    def build(self, spec: ModelSpec, seed: int) -> _FakeModel:
        return _FakeModel(_automaton(TRAIN_LENGTH))
