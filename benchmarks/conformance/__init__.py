"""Numerical conformance (DESIGN §5): every adapter against the float64 reference, no training.

Each check is a function of a `Subject` (the adapter, and for transplants its counterpart in the
other framework) that returns an `Outcome`: the largest error measured, pass or fail, and a line
that says what was measured and, on failure, what is most likely wrong. The checks live in one
module per family (`weights`, `regimes`, `state`, `selfconsistency`, `gradients`, `precision`,
`stacks`, `training`, `caller`, `robustness`, `device`; helpers in `common`); `CHECKS` here is the
one registry the plugin parametrises from (`test_conformance[torch-gru-forward_parity]`), in
report order. Checks that need the bare layer and its weights (`Capabilities.weight_io`), padded batches
(`variable_length`), the module itself (`native_module`) or a GPU are skipped with the reason on
adapters without them, and a check that finds out only while running that it cannot run
(`Outcome.skipped`) is skipped with its reason; the rest run on every adapter. Generated shapes,
chunk cuts, permutations and positions come from Hypothesis, derandomized: the same cases every
run. This package imports no framework.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.base import DEVICE_VARIABLE, Capabilities
from rnn_behaviour.benchmarks.conformance import (
    caller,
    conversion,
    device,
    gradients,
    precision,
    regimes,
    robustness,
    selfconsistency,
    selfgrad,
    stacks,
    state,
    training,
    weights,
)
from rnn_behaviour.benchmarks.conformance.common import (
    GATES,
    GPU_SCALE,
    SWAP_MARGIN,
    TASK,
    TOL,
    VERSION,
    ConformanceCheck,
    Outcome,
    Subject,
    on_gpu,
)
from rnn_behaviour.benchmarks.records import new_record

#: The registry, in report order.
ORDER = (
    "forward_parity", "regimes", "round_trip", "transplant", "gate_order", "streaming", "batch_independence",
    "causality", "long_calls", "random_states", "saturation", "variable_length", "gradients", "chunked_gradients",
    "self_gradients", "state_precision", "caller_data", "low_precision", "stacked", "bidirectional", "determinism",
    "bad_input", "trained_transplant", "export_parity", "device_parity",
)  # fmt: skip
FAMILIES = (
    weights,
    regimes,
    state,
    selfconsistency,
    gradients,
    selfgrad,
    caller,
    precision,
    stacks,
    training,
    robustness,
    conversion,
    device,
)
_ALL = {c.name: c for family in FAMILIES for c in family.CHECKS}
assert set(_ALL) == set(ORDER), sorted(set(_ALL) ^ set(ORDER))
CHECKS: tuple[ConformanceCheck, ...] = tuple(_ALL[name] for name in ORDER)
CHECKS_BY_NAME = {check.name: check for check in CHECKS}

__all__ = [
    "CHECKS", "CHECKS_BY_NAME", "SWAP_MARGIN", "TASK", "VERSION", "Conformance", "ConformanceCheck", "Outcome",
    "Subject", "counterpart_name", "counterpart_names", "counterpart_skip", "run", "skip_reason",
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
        return new_record(
            self.adapter, TASK, self.check, VERSION, tier, check.metric, check.threshold, False,
            capability="numerical conformance",
        )  # fmt: skip


#: The transplant triangle: each framework's built-ins move to the next one's, and the last one's to
#: the first, so that every pair is covered once, each way; a user adapter moves to torch's.
TRIANGLE = ("torch", "keras", "flax")


def counterpart_names(adapter: Any) -> list[str]:
    """The built-ins an adapter's transplants go to, in order of preference: the next framework's
    in `TRIANGLE` with the same cell (torch-X -> keras-X -> flax-X -> torch-X), then the one after
    it (when the next one's framework is missing or the run leaves it out); a user adapter's are
    torch-X, keras-X, flax-X. Empty when the adapter does not say its cell."""
    cell = getattr(adapter, "cell", None)
    if cell not in GATES:
        return []
    name = str(getattr(adapter, "name", ""))
    own = next((f for f in TRIANGLE if name == f"{f}-{cell}"), None)
    k = -1 if own is None else TRIANGLE.index(own)
    order = [TRIANGLE[(k + step) % len(TRIANGLE)] for step in range(1, len(TRIANGLE) + 1)]
    return [f"{f}-{cell}" for f in order if f != own]


def counterpart_name(adapter: Any) -> str | None:
    """The first of `counterpart_names`, or None."""
    return next(iter(counterpart_names(adapter)), None)


def skip_reason(
    check: str, name: str, capabilities: Capabilities, notes: Mapping[str, str] | None = None, adapter: Any = None
) -> str | None:
    """Why `check` cannot run on this adapter (a missing capability), or None. `notes` is the
    adapter's own word on why a capability is missing (`capability_notes`, e.g. a wrapped module
    with neither standard parameter names nor a canonical export)."""
    needs = CHECKS_BY_NAME[check].needs
    notes = notes or {}
    if "state" in needs and not capabilities.state:
        return (
            f"{name}: {notes.get('state') or 'it has no state (Capabilities.state is False)'}; {check} hands one back"
        )
    if "weight_io" in needs and not capabilities.weight_io:
        if notes.get("weight_io"):
            return f"{name}: no weight conformance: {notes['weight_io']}; the checks that need the weights are skipped"
        return (
            f"{name} declares no weight import/export in the canonical layout (Capabilities.weight_io is "
            "False); the checks that need the bare layer and its weights are skipped"
        )
    if "variable_length" in needs and not capabilities.variable_length:
        if notes.get("variable_length"):
            return f"{name}: no variable-length check: {notes['variable_length']}"
        return (
            f"{name} declares no variable-length support (Capabilities.variable_length is False): no "
            "padding/masking to check"
        )
    for capability, what in (("training", "train"), ("gradients", "compute gradients")):
        if capability in needs and not getattr(capabilities, capability):
            why = notes.get(capability) or f"Capabilities.{capability} is False"
            return f"{name} does not {what} ({why}); {check} needs it"
    if "native_module" in needs and not capabilities.native_module:
        return (
            f"{name} hands conformance no module of its own (Capabilities.native_module is False): {check} "
            "calls the module itself with its framework's tensors"
        )
    if "conversion" in needs and not hasattr(adapter, "convert"):
        return f"{name} is not an inference-engine row: nothing of it is exported ({check} needs a conversion)"
    if "gpu" in needs:
        return device.skip_reason(adapter, os.environ.get(DEVICE_VARIABLE, "cpu"))
    return None


def counterpart_skip(adapter: Any, counterpart: Any) -> str | None:
    """Why a transplant between the two cannot be, either way: their cells are in forms that
    compute differently on any weights (a reset-before and a reset-after GRU), or None. A default
    GRU and a no_bhn one can: the no_bhn one's weights move into the default form (bh_n = 0), and
    the transplant checks judge each direction that holds and say why the other does not."""
    mine, theirs = (str(getattr(a, "variant", "") or "") for a in (adapter, counterpart))
    cell = str(getattr(adapter, "cell", ""))
    if mine == theirs or not ref.holds(cell, mine, theirs) or not ref.holds(cell, theirs, mine):
        return None
    cell = getattr(adapter, "cell", "cell")
    default = "reset_after, the default form" if cell == "gru" else "the default form"
    name = lambda a, v: f"{getattr(a, 'name', 'adapter')} ({v or default})"  # noqa: E731
    return (
        f"no transplant between {name(adapter, mine)} and {name(counterpart, theirs)}: the two forms of the "
        f"{cell} compute differently on any weights, so none can move across"
    )


def run(check: str, subject: Subject) -> Outcome:
    """Run one check with the float32 tolerances of the adapter's device (`TOL`: scaled on a
    GPU); on a cell in a named variant, the detail says which (e.g. reset_before GRU)."""
    spec = CHECKS_BY_NAME[check]
    TOL.scale = GPU_SCALE if on_gpu(subject.adapter) else 1.0
    try:
        outcome = spec.run(subject)
    finally:
        scale, TOL.scale = TOL.scale, 1.0
    if scale != 1.0 and spec.device_scaled and outcome.threshold is None:
        outcome.threshold = spec.threshold * scale
        outcome.detail += f" (tolerances x{scale:g} on a GPU)"
    notes = getattr(subject.adapter, "notes", None)
    if not outcome.passed and not outcome.skipped and callable(notes):  # how an engine computes here, if it matters
        outcome.detail += "".join(f"; {note}" for note in notes())
    if subject.variant and "weight_io" in CHECKS_BY_NAME[check].needs:
        outcome.detail = f"[{subject.variant} {subject.cell.upper()}] {outcome.detail}"
    return outcome
