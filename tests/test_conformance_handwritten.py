"""The issue's bar for a false alarm: a correct hand-written PyTorch LSTM and GRU (tests/handwritten.py:
a time-step loop, nn.LSTM's names, torch's own errors on bad input) pass every conformance check
that applies to them, and each check that does not apply is skipped for a reason that is true.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

pytest.importorskip("torch")

from rnn_behaviour.adapters import resolve
from rnn_behaviour.benchmarks.conformance import CHECKS, CHECKS_BY_NAME, Subject, counterpart_name, run, skip_reason

#: Why a check cannot apply to the hand-written modules (and what must say so).
NOT_APPLICABLE = {
    "variable_length": "does not take a PackedSequence",  # its forward indexes x directly
    "stacked": "takes no num_layers keyword",
    "bidirectional": "takes no bidirectional keyword",
    "device_parity": "needs --device cuda",
    "export_parity": "not an inference-engine row",
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


#: Correct modules that are not nn.LSTM, each with the one skip reason it must get where it has one.
NOT_LSTM = {
    "dict=torch:tests.byo_factories:dict_state": None,  # an nn.LSTM returning {"h": h, "rest": [c]}
    "time-first=torch:tests.byo_factories:time_first_glued": None,  # 2-layer time-first GRU + BatchFirst glue
    "log-scan=torch:tests.planted_rounding:log_scan_mingru": None,  # chunked vs whole: float32 rounding only
    "no-state=torch:tests.byo_factories:stateless": "hands no state out",  # forward(x) -> y, declared
}


@pytest.mark.parametrize("spec", list(NOT_LSTM))
@pytest.mark.parametrize("check", [c.name for c in CHECKS if "counterpart" not in c.needs])
def test_a_module_that_is_not_nn_lstm_gets_a_verdict_not_a_crash(spec: str, check: str) -> None:
    """The README's three shapes of a module that is not nn.LSTM (a dict state, a time-first
    module with two layers behind its glue, no state at all) and a log-space scan: every check
    runs and passes, or is skipped; where the module has no state, for that reason."""
    mine = adapter(spec)
    reason = skip_reason(check, mine.name, mine.capabilities, getattr(mine, "capability_notes", None), mine)
    if reason is None:
        outcome = run(check, Subject(mine.name, mine))
        assert outcome.skipped or outcome.passed, outcome.detail
    elif check in ("streaming", "variable_length") and NOT_LSTM[spec]:
        assert str(NOT_LSTM[spec]) in reason, reason
