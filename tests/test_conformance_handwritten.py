"""The issue's bar for a false alarm: a correct hand-written PyTorch LSTM and GRU (tests/handwritten.py:
a time-step loop, nn.LSTM's names, torch's own errors on bad input) pass every conformance check
that applies to them, and each check that does not apply is skipped for a reason that is true.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

pytest.importorskip("torch")

from adapters import resolve
from benchmarks.conformance import CHECKS, CHECKS_BY_NAME, Subject, counterpart_name, run, skip_reason

#: Why a check cannot apply to the hand-written modules (and what must say so).
NOT_APPLICABLE = {
    "variable_length": "does not take a PackedSequence",  # its forward indexes x directly
    "stacked": "takes no num_layers keyword",
    "bidirectional": "takes no bidirectional keyword",
    "device_parity": "needs --device cuda",
}


@functools.cache
def adapter(spec: str) -> Any:
    return resolve(spec).load()


@pytest.mark.parametrize("spec", ["hand-lstm=torch:tests.handwritten:lstm", "hand-gru=torch:tests.handwritten:gru"])
@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_a_correct_handwritten_module_passes_every_check_that_applies(spec: str, check: str) -> None:
    mine = adapter(spec)
    reason = skip_reason(check, mine.name, mine.capabilities, getattr(mine, "capability_notes", None), mine)
    if reason is None:
        counterpart = None
        if "counterpart" in CHECKS_BY_NAME[check].needs:
            counterpart = adapter(str(counterpart_name(mine)))
        outcome = run(check, Subject(mine.name, mine, counterpart))
        reason = outcome.skipped or None  # a check may find out only while running that it cannot run
    if check in NOT_APPLICABLE:
        assert reason is not None and NOT_APPLICABLE[check] in reason, reason
        return
    assert reason is None, reason
    assert outcome.passed, outcome.detail


@pytest.mark.parametrize("check", [c.name for c in CHECKS if "counterpart" not in c.needs])
def test_a_module_with_a_dict_state_gets_a_verdict_not_a_crash(check: str) -> None:
    """The README allows any tuple/list/dict nest as a state: every check runs (or skips) on an
    nn.LSTM wrapped to return {"h": h, "rest": [c]}, and passes."""
    mine = adapter("dict=torch:tests.byo_factories:dict_state")
    reason = skip_reason(check, mine.name, mine.capabilities, getattr(mine, "capability_notes", None), mine)
    if reason is None:
        outcome = run(check, Subject(mine.name, mine))
        assert outcome.skipped or outcome.passed, outcome.detail
