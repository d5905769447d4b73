"""Numerical conformance (DESIGN §5): every adapter against the float64 reference, no training.

Each check is a function of a `Subject` (the adapter, and for transplants its counterpart in the
other framework) that returns an `Outcome`: the largest error measured, pass or fail, and a line
that says what was measured and, on failure, what is most likely wrong. The checks live in one
module per family (`weights`, `state`, `training`, `caller`, `robustness`; helpers in `common`);
`CHECKS` here is the one registry the plugin parametrises from
(`test_conformance[torch-gru-forward_parity]`), in report order. Checks that need the bare layer
and its weights (`Capabilities.weight_io`), padded batches (`variable_length`) or the module
itself (`native_module`) are skipped with the reason on adapters without them; the rest run on
every adapter. Generated shapes, chunk cuts, permutations and positions come from Hypothesis,
derandomized: the same cases every run. This package imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Capabilities
from benchmarks.conformance import caller, robustness, state, training, weights
from benchmarks.conformance.common import (
    GATES,
    SWAP_MARGIN,
    TASK,
    VERSION,
    ConformanceCheck,
    Outcome,
    Subject,
)
from benchmarks.matrix import new_record

#: The registry, in report order.
ORDER = (
    "forward_parity", "round_trip", "transplant", "gate_order", "streaming", "batch_independence", "causality",
    "variable_length", "gradients", "caller_data", "determinism", "bad_input", "trained_transplant",
)  # fmt: skip
_ALL = {c.name: c for family in (weights, state, training, caller, robustness) for c in family.CHECKS}
assert set(_ALL) == set(ORDER), sorted(set(_ALL) ^ set(ORDER))
CHECKS: tuple[ConformanceCheck, ...] = tuple(_ALL[name] for name in ORDER)
CHECKS_BY_NAME = {check.name: check for check in CHECKS}

__all__ = [
    "CHECKS", "CHECKS_BY_NAME", "SWAP_MARGIN", "TASK", "VERSION", "Conformance", "ConformanceCheck", "Outcome",
    "Subject", "counterpart_name", "run", "skip_reason",
]  # fmt: skip


@dataclass(frozen=True)
class Conformance:
    """One pytest item: an adapter and a conformance check."""

    adapter: str
    check: str

    @property
    def id(self) -> str:
        return f"{self.adapter}-{self.check}"

    def template(self, tier: str) -> dict[str, Any]:
        """The item's record before it ran: what a skip, an error or a crash reports."""
        check = CHECKS_BY_NAME[self.check]
        return new_record(self.adapter, TASK, self.check, VERSION, tier, check.metric, check.threshold, False)


def counterpart_name(adapter: Any) -> str | None:
    """The built-in of the other framework with the same cell: torch-X <-> keras-X; a user adapter
    is compared with torch-X. None when the adapter does not say its cell."""
    cell = getattr(adapter, "cell", None)
    if cell not in GATES:
        return None
    return f"keras-{cell}" if getattr(adapter, "framework", "") == "torch" else f"torch-{cell}"


def skip_reason(
    check: str, name: str, capabilities: Capabilities, notes: Mapping[str, str] | None = None
) -> str | None:
    """Why `check` cannot run on this adapter (a missing capability), or None. `notes` is the
    adapter's own word on why a capability is missing (`capability_notes`, e.g. a wrapped module
    with neither standard parameter names nor a canonical export)."""
    needs = CHECKS_BY_NAME[check].needs
    notes = notes or {}
    if "weight_io" in needs and not capabilities.weight_io:
        if notes.get("weight_io"):
            return f"{name}: no weight conformance: {notes['weight_io']}; {check} needs the weights"
        return (
            f"{name} declares no weight import/export in the canonical layout (Capabilities.weight_io is "
            f"False); {check} needs the bare layer and its weights"
        )
    if "variable_length" in needs and not capabilities.variable_length:
        if notes.get("variable_length"):
            return f"{name}: no variable-length check: {notes['variable_length']}"
        return (
            f"{name} declares no variable-length support (Capabilities.variable_length is False): no "
            "padding/masking to check"
        )
    if "native_module" in needs and not capabilities.native_module:
        return (
            f"{name} hands conformance no module of its own (Capabilities.native_module is False): {check} "
            "calls the module itself with its framework's tensors"
        )
    return None


def run(check: str, subject: Subject) -> Outcome:
    return CHECKS_BY_NAME[check].run(subject)
