"""Numerical conformance (DESIGN §5): one item per (adapter, check), parametrised by `conftest.py`.

`pytest benchmarks/test_conformance.py -k torch-gru` for one adapter, `-k gate_order` for one
check. No training to criterion except `trained_transplant` (count_steps, smoke budget); the
checks themselves live in the package `benchmarks/conformance/`.
"""

from __future__ import annotations

import pytest

from rnn_behaviour.benchmarks.conformance import (
    CHECKS_BY_NAME,
    TASK,
    Conformance,
    Subject,
    counterpart_names,
    counterpart_skip,
    run,
    skip_reason,
)
from rnn_behaviour.benchmarks.matrix import CellSkipped, Matrix
from rnn_behaviour.benchmarks.records import CELL_PROPERTY, RECORDS_PROPERTY, finite_or_none


@pytest.fixture
def subject(conformance: Conformance, matrix: Matrix, request: pytest.FixtureRequest) -> Subject:
    """The loaded adapter (and counterpart); a missing framework or capability skips at setup, so
    the skip and its reason reach the results file."""
    template = conformance.template(matrix.tier)
    request.node.user_properties.append((CELL_PROPERTY, {"template": template, "seeds": 1}))
    try:
        adapter = matrix.adapter(conformance.adapter)
    except CellSkipped as exc:
        pytest.skip(str(exc))
    notes = getattr(adapter, "capability_notes", None)
    reason = skip_reason(conformance.check, conformance.adapter, adapter.capabilities, notes, adapter)
    if reason:
        pytest.skip(reason)
    counterpart = None
    if "counterpart" in CHECKS_BY_NAME[conformance.check].needs:
        names = [n for n in counterpart_names(adapter) if n in matrix.adapters and n != conformance.adapter]
        if not names:
            pytest.skip(f"{conformance.adapter} names no cell (adapter.cell): no counterpart to transplant to")
        missing = []
        for other in names:  # the next framework's built-in, or the one after when its framework is missing
            try:
                counterpart = matrix.adapter(other)
                break
            except CellSkipped as exc:
                missing.append(f"counterpart {exc}")
        else:
            pytest.skip("; ".join(missing))
        reason = counterpart_skip(adapter, counterpart)
        if reason:
            pytest.skip(reason)
    return Subject(conformance.adapter, adapter, counterpart)


def test_conformance(
    conformance: Conformance, subject: Subject, matrix: Matrix, request: pytest.FixtureRequest
) -> None:
    check = CHECKS_BY_NAME[conformance.check]
    outcome = run(conformance.check, subject)
    if outcome.skipped:  # no record: the plugin records the skip and its reason, as for a setup skip
        pytest.skip(outcome.skipped)
    threshold = check.threshold if outcome.threshold is None else outcome.threshold
    record = {
        **conformance.template(matrix.tier),
        "threshold": threshold,
        "passed": bool(outcome.passed),
        "value": finite_or_none(outcome.value),
        "detail": outcome.detail,
        "extras": {k: finite_or_none(v) for k, v in outcome.extras.items()},
        # str(): torch.__version__ is a str subclass that pytest-xdist cannot send between processes.
        "versions": {k: str(v) for k, v in subject.adapter.versions().items()},
        "compute_path": {k: str(v) for k, v in subject.adapter.compute_path().items()},
    }
    request.node.user_properties.append((RECORDS_PROPERTY, [record]))
    if not outcome.passed:
        pytest.fail(
            f"{conformance.adapter} failed {TASK}.{conformance.check} (seed 0): {check.metric} = {outcome.value:.3g} "
            f"(tolerance {threshold:g})\n  {outcome.detail}",
            pytrace=False,
        )
