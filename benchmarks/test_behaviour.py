"""The behaviour matrix: one item per (adapter, task, check), parametrised by `conftest.py`.

Run `pytest benchmarks -k torch-gru` for one adapter's row, `-k carry_state` for one check.
"""

from __future__ import annotations

import pytest

from rnn_behaviour.benchmarks.matrix import Cell, Matrix, Trained, score


def test_check(cell: Cell, matrix: Matrix, trained: list[Trained], request: pytest.FixtureRequest) -> None:
    score(cell, matrix, trained, request)
