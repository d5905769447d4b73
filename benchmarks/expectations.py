"""Known limitations, as data: (adapter pattern, task, check) -> reason, applied as `xfail`.

An implementation that beats one shows as XPASS and is reported as "better than expected", never
as a failure. Patterns are `fnmatch` patterns over adapter names, so `*` covers adapters users
bring too. Each reason says why the failure is expected; the calibration table in
`tasks/README.md` shows how often it happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Expectation:
    adapter: str
    task: str
    check: str
    reason: str


EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "*",
        "count_last",
        "lengths",
        "trained on length 20 only with the sum at the last step; seed 000 investigation 1: "
        "accuracy drops away from length 20",
    ),
    Expectation(
        "*",
        "count_steps",
        "longer",
        "no training data beyond length 20; seed 000 investigation 2: counts past 20 are not learned",
    ),
)


def expected_failure(adapter: str, task: str, check: str) -> str | None:
    """The reason this cell is expected to fail, or None."""
    for e in EXPECTATIONS:
        if fnmatchcase(adapter, e.adapter) and e.task == task and e.check == check:
            return e.reason
    return None
