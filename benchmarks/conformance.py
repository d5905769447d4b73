"""Numerical conformance (DESIGN §5): every adapter against the float64 reference, no training.

Each check is a function of a `Subject` (the adapter, and for transplants its counterpart in the
other framework) that returns an `Outcome`: the largest error measured, pass or fail, and a line
that says what was measured and, on failure, what is most likely wrong. `CHECKS` is the registry
the plugin parametrises from (`test_conformance[torch-gru-forward_parity]`). Checks that need the
bare layer and its weights (`Capabilities.weight_io`) or masking (`variable_length`) are skipped
with the reason on adapters without them; the rest run on every adapter. Generated shapes, chunk
cuts, permutations and positions come from Hypothesis, derandomized: the same cases every run.
This module imports no framework.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings, target
from hypothesis import strategies as st

from adapters import Adapter
from adapters import reference as ref
from adapters.base import Capabilities
from adapters.reference import GATES, Layer, LayerAdapter, Weights
from benchmarks.matrix import new_record
from tasks import TASKS
from tasks.base import Budget, ModelSpec, Split

#: Bumped with a line in benchmarks/README.md whenever a check or tolerance changes.
VERSION = 1
TASK = "conformance"

PARITY_ATOL = 1e-5
SAME_COMPUTATION_ATOL = 1e-6
GRADIENT_ATOL = 1e-4
SWAP_MARGIN = 1e-2
TRAINED_RTOL = 1e-4
#: How close "the output is the reference's with <mistake>" must be to name that mistake.
DIAGNOSIS_ATOL = 1e-4
HANG_SECONDS = 60.0

INPUT_SIZE, HIDDEN_SIZE = 5, 12
BATCHES, LENGTHS = (1, 4), (1, 7, 64)
EXAMPLES = 8


@dataclass(frozen=True)
class ConformanceCheck:
    name: str
    metric: str
    threshold: float
    needs: tuple[str, ...]
    description: str


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "forward_parity", "max_abs_err_vs_reference", PARITY_ATOL, ("weight_io",),
        "same weights, random initial state: outputs and final state equal the float64 reference "
        "(B in {1,4} x T in {1,7,64}, input 5 != hidden 12, plus generated shapes)",
    ),
    ConformanceCheck(
        "round_trip", "max_abs_weight_change", 0.0, ("weight_io",),
        "export -> import into another layer -> export is bitwise the same, in the canonical keys and "
        "shapes, and the importing layer then computes what the exporting one did",
    ),
    ConformanceCheck(
        "transplant", "max_abs_diff_across_frameworks", PARITY_ATOL, ("weight_io", "counterpart"),
        "the same weights in this adapter and its counterpart in the other framework give the same "
        "outputs, moved either way",
    ),
    ConformanceCheck(
        "gate_order", "max_abs_err_vs_reference_canary", PARITY_ATOL, ("weight_io",),
        f"parity on weights whose gates are far apart: any gate swap would be off by > {SWAP_MARGIN:g}",
    ),
    ConformanceCheck(
        "streaming", "max_abs_diff_chunked_vs_whole", SAME_COMPUTATION_ATOL, (),
        "chunks fed with the carried state == the whole sequence (outputs and final state); zero state "
        "== no state; final state == last output",
    ),
    ConformanceCheck(
        "batch_independence", "max_abs_diff_alone_vs_batched", SAME_COMPUTATION_ATOL, (),
        "row i of a batch == that sample alone; permuting the batch permutes the outputs",
    ),
    ConformanceCheck(
        "causality", "max_abs_change_before_t", 0.0, (),
        "changing x_t changes no output before t (exactly), and does change y_t",
    ),
    ConformanceCheck(
        "variable_length", "max_abs_diff_padded_vs_trimmed", SAME_COMPUTATION_ATOL, ("weight_io", "variable_length"),
        "right-padded sequences with their lengths give the trimmed sequences' outputs and final state",
    ),
    ConformanceCheck(
        "gradients", "max_abs_grad_err_vs_reference", GRADIENT_ATOL, ("weight_io",),
        "d(sum y)/dx and d(sum y)/dW equal the reference's (central differences in float64)",
    ),
    ConformanceCheck(
        "determinism", "max_abs_diff_between_runs", 0.0, (),
        "two models built and trained for 8 steps with the same seed are bitwise identical",
    ),
    ConformanceCheck(
        "bad_input", "cases_without_clear_error", 0.0, (),
        "wrong feature size, wrong state shape, NaN input and an empty sequence each give an error "
        "naming the problem, or the documented behaviour (NaN propagates forward in time only; an "
        "empty sequence gives an empty output); never a hang",
    ),
    ConformanceCheck(
        "trained_transplant", "max_rel_score_diff", TRAINED_RTOL, ("weight_io", "counterpart"),
        "a model trained on count_steps (smoke budget), moved whole into the counterpart and back, "
        "scores every count_steps check the same up to numerical noise",
    ),
)  # fmt: skip
CHECKS_BY_NAME = {check.name: check for check in CHECKS}


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


@dataclass
class Outcome:
    value: float
    passed: bool
    detail: str
    extras: dict[str, float] = field(default_factory=dict)


@dataclass
class Subject:
    """What a check runs on: the adapter under test and, for transplants, its counterpart."""

    name: str
    adapter: Adapter
    counterpart: Adapter | None = None

    @property
    def cell(self) -> str:
        return str(self.adapter.cell)  # type: ignore[attr-defined]

    def layers(self) -> LayerAdapter:
        return _layer_adapter(self.name, self.adapter)

    def layer(self, input_size: int, hidden_size: int, seed: int, weights_seed: int | None = None) -> Layer:
        """A bare layer, with random canonical weights imported unless `weights_seed` is None."""
        layer = self.layers().build_layer(input_size, hidden_size, seed)
        if weights_seed is not None:
            layer.import_weights(ref.random_weights(self.cell, input_size, hidden_size, rng(weights_seed)))
        return layer


def _layer_adapter(name: str, adapter: Any) -> LayerAdapter:
    missing = [m for m in ("cell", "build_layer", "export_model", "import_model") if not hasattr(adapter, m)]
    if missing:
        raise TypeError(f"{name} declares weight_io but lacks {', '.join(missing)} (see adapters/reference.py)")
    return cast(LayerAdapter, adapter)


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
        return (
            f"{name} declares no variable-length support (Capabilities.variable_length is False): no "
            "padding/masking to check"
        )
    return None


def run(check: str, subject: Subject) -> Outcome:
    return RUNNERS[check](subject)


# --- helpers ---------------------------------------------------------------------------------


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _arrays(state: Any) -> list[np.ndarray]:
    return [np.asarray(s) for s in (state if isinstance(state, tuple | list) else (state,))]


def _max_abs(a: Any, b: Any) -> float:
    """Largest |a - b| over arrays or states (tuples of arrays); inf on a shape mismatch or NaN."""
    pairs = list(zip(_arrays(a), _arrays(b), strict=False))
    if len(_arrays(a)) != len(_arrays(b)) or any(x.shape != y.shape for x, y in pairs):
        return float("inf")
    worst = 0.0
    for x, y in pairs:
        if x.size:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            worst = max(worst, float("inf") if np.isnan(diff).any() else float(diff.max()))
    return worst


def _float32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def random_state(cell: str, batch: int, hidden: int, generator: np.random.Generator) -> Any:
    """A float32 canonical state: h in (-1, 1) like a real one, c of either sign and beyond 1."""
    h = np.tanh(generator.normal(0.0, 1.0, (batch, hidden)))
    parts = [h, generator.normal(0.0, 1.0, (batch, hidden))] if cell == "lstm" else [h]
    return ref.pack_state(cell, [_float32(p) for p in parts])


def _rows(state: Any, index: Any) -> Any:
    if state is None:
        return None
    parts = [np.ascontiguousarray(s[index]) for s in _arrays(state)]
    return tuple(parts) if isinstance(state, tuple) else parts[0]


def _fmt(value: float) -> str:
    return f"{value:.2g}"


def _target(value: float, label: str = "") -> None:
    """Steer Hypothesis towards larger errors (it takes finite observations only)."""
    target(value if np.isfinite(value) else 1e300, label=label)


class Mismatch(AssertionError):
    """A generated case broke the property; the message says which and how."""


def explore(prop: Callable[..., None], strategy: st.SearchStrategy[Any], examples: int = EXAMPLES,
            explicit: tuple[Any, ...] = ()) -> str | None:  # fmt: skip
    """Run `prop` on the explicit cases and `examples` generated ones (derandomized, no database);
    the message of the first failing case, shrunk, else None."""
    test = given(strategy)(prop)
    for case in explicit:
        test = example(case)(test)
    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        report_multiple_bugs=False,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )(test)
    try:
        test()
    except Mismatch as exc:
        return str(exc)
    return None


def diagnose(cell: str, x: np.ndarray, weights: Mapping[str, np.ndarray], state: Any, y: np.ndarray) -> str:
    """The likely mistake when `y` is not the reference's output on (x, weights, state): the
    reference with that mistake made gives `y`."""

    def matches(w: Mapping[str, np.ndarray], s: Any = state, reset_after: bool = True) -> bool:
        return _max_abs(y, ref.forward(cell, x, w, s, reset_after=reset_after)[0]) <= DIAGNOSIS_ATOL

    if state is not None and matches(weights, None):
        return "it is the reference's output from the zero state: the initial state passed in is ignored"
    if cell == "lstm" and state is not None and matches(weights, (state[1], state[0])):
        return "it is the reference's output with h and c swapped: the state must be (h, c)"
    for order in ref.gate_permutations(cell):
        if matches(ref.permute_gates(cell, weights, order)):
            return (
                f"it is the reference's output with the gates permuted ({ref.describe_permutation(cell, order)}): "
                f"the layer does not read the canonical gate order {', '.join(GATES[cell])} (adapters/reference.py)"
            )
    if cell == "gru" and matches(weights, reset_after=False):
        return (
            "it is the reset-before GRU (r multiplies h before U_n), not the reset-after form PyTorch uses "
            "and Keras defaults to (reset_after=True, linear_before_reset)"
        )
    if matches({k: (v.T if k.startswith("U_") else v) for k, v in weights.items()}):
        return "it is the reference's output with every recurrent kernel transposed (h Uᵀ instead of h U)"
    yr = ref.forward(cell, x, weights, state)[0]
    first = _max_abs(y[:, :1], yr[:, :1])
    if first <= PARITY_ATOL:
        return (
            f"the first step matches (error {_fmt(first)}), later ones do not: the recurrence (U, the carried "
            "state, or the state update) differs"
        )
    return "the first step already differs: the input kernels, biases or gate equations differ"


# --- the checks --------------------------------------------------------------------------------


def forward_parity(subject: Subject) -> Outcome:
    cell, worst, cases = subject.cell, 0.0, 0

    def compare(layer: Layer, weights: Weights, batch: int, length: int, seed: int) -> tuple[float, str]:
        """The error of one case, and what is wrong when it is too large."""
        g = rng(seed)
        x = _float32(g.normal(0.0, 1.0, (batch, length, layer.input_size)))
        state = random_state(cell, batch, layer.hidden_size, g)
        y, final = layer.forward(x, state)
        y_ref, final_ref = ref.forward(cell, x, weights, state)
        err = max(_max_abs(y, y_ref), _max_abs(final, final_ref))
        if err <= PARITY_ATOL:
            return err, ""
        where = f"B={batch}, T={length}, input {layer.input_size}, hidden {layer.hidden_size}"
        return err, f"at {where}: max |adapter - reference| = {_fmt(err)}; {diagnose(cell, x, weights, state, y)}"

    layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 0)
    weights = ref.rounded(ref.random_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(0)))
    layer.import_weights(weights)
    failure = ""
    for batch in BATCHES:
        for length in LENGTHS:
            err, message = compare(layer, weights, batch, length, 10 * batch + length)
            worst, cases, failure = max(worst, err), cases + 1, failure or message

    @st.composite
    def shapes(draw: Any) -> tuple[int, int, int, int, int]:
        return (
            draw(st.integers(1, 5)), draw(st.integers(1, 16)), draw(st.integers(1, 8)), draw(st.integers(1, 16)),
            draw(st.integers(0, 2**16)),
        )  # fmt: skip

    def generated(case: tuple[int, int, int, int, int]) -> None:
        nonlocal worst, cases
        batch, length, input_size, hidden_size, seed = case
        layer = subject.layers().build_layer(input_size, hidden_size, seed)
        w = ref.rounded(ref.random_weights(cell, input_size, hidden_size, rng(seed)))
        layer.import_weights(w)
        err, message = compare(layer, w, batch, length, seed)
        worst, cases = max(worst, err), cases + 1
        _target(err)
        if message:
            raise Mismatch(message)

    if not failure:
        failure = explore(generated, shapes(), examples=6, explicit=((1, 1, 1, 1, 0),)) or ""
    detail = f"max |adapter - reference| {_fmt(worst)} over {cases} cases (outputs and final state)"
    if failure:
        detail += "; " + failure
    return Outcome(worst, worst <= PARITY_ATOL, detail)


def round_trip(subject: Subject) -> Outcome:
    cell, problems = subject.cell, []
    source = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 1)
    exported = source.export_weights()
    shapes = ref.weight_shapes(cell, INPUT_SIZE, HIDDEN_SIZE)
    try:
        ref.check_weights(cell, INPUT_SIZE, HIDDEN_SIZE, exported)
    except ValueError as exc:
        return Outcome(float("inf"), False, f"export is not in the canonical layout: {exc}")
    target_layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 2)
    x = _float32(rng(1).normal(0.0, 1.0, (3, 9, INPUT_SIZE)))
    state = random_state(cell, 3, HIDDEN_SIZE, rng(2))
    before = _max_abs(target_layer.forward(x, state)[0], source.forward(x, state)[0])
    target_layer.import_weights(exported)
    again = target_layer.export_weights()
    change = max(_max_abs(again.get(k, np.zeros(0)), exported[k]) for k in shapes)
    if change > 0:
        worst_key = max(shapes, key=lambda k: _max_abs(again.get(k, np.zeros(0)), exported[k]))
        problems.append(f"re-export differs from what was imported (worst {worst_key}: {_fmt(change)})")
    given_weights = ref.random_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(3))
    target_layer.import_weights(given_weights)
    stored = target_layer.export_weights()
    # What import got, rounded to the layer's precision: float32, or the dtype it exports.
    rounding = {
        k: min(
            _max_abs(stored.get(k, np.zeros(0)), ref.rounded(given_weights, dtype)[k])
            for dtype in (np.float32, np.asarray(stored.get(k, 0.0)).dtype)
        )
        for k in shapes
    }
    if max(rounding.values()) > 0:
        problems.append(
            "importing float64 weights then exporting does not give them back (rounded to the layer's precision)"
        )
    change = max(change, *rounding.values())
    target_layer.import_weights(exported)
    after = _max_abs(target_layer.forward(x, state)[0], source.forward(x, state)[0])
    if after > PARITY_ATOL:
        problems.append(
            f"after importing, the layer's output differs from the exporting layer's by {_fmt(after)} (before: "
            f"{_fmt(before)}): import does not set what the layer computes with"
        )
    detail = (
        f"re-exported weights change by {_fmt(change)} (must be 0); outputs of the importing layer "
        f"{_fmt(before)} apart before, {_fmt(after)} after"
    )
    if problems:
        detail += ". " + "; ".join(problems)
    return Outcome(change, change == 0 and after <= PARITY_ATOL, detail, {"output_diff_after_import": after})


def transplant(subject: Subject) -> Outcome:
    assert subject.counterpart is not None
    other_name = getattr(subject.counterpart, "name", "counterpart")
    other = _layer_adapter(other_name, subject.counterpart)
    x = _float32(rng(4).normal(0.0, 1.0, (4, 16, INPUT_SIZE)))
    state = random_state(subject.cell, 4, HIDDEN_SIZE, rng(5))
    errors = {}
    for direction, (src, dst) in {
        f"{subject.name} -> {other_name}": (subject.layers(), other),
        f"{other_name} -> {subject.name}": (other, subject.layers()),
    }.items():
        a, b = src.build_layer(INPUT_SIZE, HIDDEN_SIZE, 6), dst.build_layer(INPUT_SIZE, HIDDEN_SIZE, 7)
        b.import_weights(a.export_weights())
        (ya, fa), (yb, fb) = a.forward(x, state), b.forward(x, state)
        errors[direction] = max(_max_abs(ya, yb), _max_abs(fa, fb))
    worst = max(errors.values())
    detail = "each framework's own initial weights, moved: " + "; ".join(
        f"{d} max |diff| {_fmt(e)}" for d, e in errors.items()
    )
    return Outcome(worst, worst <= PARITY_ATOL, detail)


def gate_order(subject: Subject) -> Outcome:
    cell = subject.cell
    layer = subject.layers().build_layer(INPUT_SIZE, HIDDEN_SIZE, 8)
    weights = ref.rounded(ref.canary_weights(cell, INPUT_SIZE, HIDDEN_SIZE, rng(8)))
    layer.import_weights(weights)
    x = _float32(rng(9).normal(0.0, 1.0, (4, 7, INPUT_SIZE)))
    state = random_state(cell, 4, HIDDEN_SIZE, rng(10))
    y_ref = ref.forward(cell, x, weights, state)[0]
    margins = {
        order: _max_abs(ref.forward(cell, x, ref.permute_gates(cell, weights, order), state)[0], y_ref)
        for order in ref.gate_permutations(cell)
    }
    y = layer.forward(x, state)[0]
    err = _max_abs(y, y_ref)
    if margins:
        nearest = min(margins, key=lambda o: margins[o])
        if margins[nearest] <= SWAP_MARGIN:
            raise AssertionError(f"canary weights do not separate gates {nearest}: {margins[nearest]}")
        detail = (
            f"max |adapter - reference| {_fmt(err)} on per-gate-distinct weights; the closest of the "
            f"{len(margins)} other gate orders ({ref.describe_permutation(cell, nearest)}) would be off by "
            f"{_fmt(margins[nearest])} (> {SWAP_MARGIN:g})"
        )
    else:
        detail = f"max |adapter - reference| {_fmt(err)} (one gate: nothing to swap)"
    if err > PARITY_ATOL:
        detail += "; " + diagnose(cell, x, weights, state, y)
    extras = {"closest_swap_error": min(margins.values())} if margins else {}
    return Outcome(err, err <= PARITY_ATOL, detail, extras)


class _Runner:
    """What streaming, batch and causality checks run: the bare layer when the adapter has one
    (random weights and initial state; its last output is its h), else the model built from a
    plain spec (zero initial state; its outputs are the head's)."""

    def __init__(self, subject: Subject, input_size: int, hidden_size: int, seed: int) -> None:
        self.cell: str | None = None
        if subject.adapter.capabilities.weight_io:
            self.layer: Layer | None = subject.layer(input_size, hidden_size, seed, weights_seed=seed)
            self.cell, self.kind = subject.cell, "bare layer"
            self.forward = self.layer.forward
        else:
            spec = ModelSpec(input_size=input_size, output_size=3, hidden_size=hidden_size, return_sequences=True)
            self.layer, self.kind = None, "model (no bare layer: weight_io is off)"
            self.forward = subject.adapter.build(spec, seed).predict
        self.input_size, self.hidden_size = input_size, hidden_size

    def initial_state(self, batch: int, generator: np.random.Generator) -> Any:
        return None if self.cell is None else random_state(self.cell, batch, self.hidden_size, generator)


def _zeros_like(state: Any) -> Any:
    if isinstance(state, tuple | list):
        return type(state)(np.zeros_like(np.asarray(s)) for s in state)
    return np.zeros_like(np.asarray(state))


def streaming(subject: Subject) -> Outcome:
    runner = _Runner(subject, 3, 8, 11)
    errors = {"chunks": 0.0, "zero_state": 0.0, "final_is_last": 0.0}
    failure: list[str] = []
    plans_run = 0

    @st.composite
    def plans(draw: Any) -> tuple[int, int, tuple[int, ...], int]:
        length = draw(st.integers(2, 24))
        cuts = draw(st.lists(st.integers(1, length - 1), min_size=1, max_size=min(5, length - 1), unique=True))
        return draw(st.integers(1, 4)), length, tuple(sorted(cuts)), draw(st.integers(0, 2**16))

    def prop(plan: tuple[int, int, tuple[int, ...], int]) -> None:
        nonlocal plans_run
        batch, length, cuts, seed = plan
        plans_run += 1
        g = rng(seed)
        x = _float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        whole, whole_final = runner.forward(x, state)
        pieces, carried = [], state
        for part in np.split(x, cuts, axis=1):
            out, carried = runner.forward(part, carried)
            pieces.append(out)
        chunked = np.concatenate(pieces, axis=1)
        err = max(_max_abs(chunked, whole), _max_abs(carried, whole_final))
        errors["chunks"] = max(errors["chunks"], err)
        _target(err)
        if err > SAME_COMPUTATION_ATOL:
            steps = [s for s in range(length) if _max_abs(chunked[:, s], whole[:, s]) > SAME_COMPUTATION_ATOL]
            where = f", first at step {steps[0]}" if steps else " (in the final state)"
            cold = runner.forward(np.split(x, cuts, axis=1)[-1], None)[0]
            note = ""
            if _max_abs(pieces[-1], cold) <= SAME_COMPUTATION_ATOL:
                note = ": the last chunk comes out as if from the zero state, so the state passed in is dropped"
            raise Mismatch(
                f"fed in chunks cut at {list(cuts)} (B={batch}, T={length}) with the carried state, the output "
                f"differs from the whole sequence's by {_fmt(err)}{where}{note}"
            )

    one_step = (2, 12, tuple(range(1, 12)), 1)
    message = explore(prop, plans(), explicit=(one_step,))
    if message:
        failure.append(message)
    g = rng(12)
    x = _float32(g.normal(0.0, 1.0, (3, 10, runner.input_size)))
    _, some_state = runner.forward(x)
    y_none, final_none = runner.forward(x, None)
    y_zero, final_zero = runner.forward(x, _zeros_like(some_state))
    errors["zero_state"] = max(_max_abs(y_zero, y_none), _max_abs(final_zero, final_none))
    if errors["zero_state"] > SAME_COMPUTATION_ATOL:
        failure.append(f"an explicit zero state gives other outputs than no state (by {_fmt(errors['zero_state'])})")
    if runner.layer is not None:
        state = runner.initial_state(3, g)
        y, final = runner.forward(x, state)
        h = _arrays(final)[0]
        errors["final_is_last"] = _max_abs(h, y[:, -1])
        if errors["final_is_last"] > SAME_COMPUTATION_ATOL:
            failure.append(f"the final h differs from the last output by {_fmt(errors['final_is_last'])}")
    worst = max(errors.values())
    detail = (
        f"on the {runner.kind}: chunked vs whole {_fmt(errors['chunks'])} over {plans_run} chunk plans "
        f"(one step at a time included); zero state vs none {_fmt(errors['zero_state'])}"
    )
    detail += f"; final h vs last output {_fmt(errors['final_is_last'])}" if runner.layer is not None else ""
    if failure:
        detail += ". " + "; ".join(failure)
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not failure, detail, dict(errors))


def batch_independence(subject: Subject) -> Outcome:
    runner = _Runner(subject, 4, 6, 13)
    errors = {"alone": 0.0, "permuted": 0.0}

    @st.composite
    def cases(draw: Any) -> tuple[int, int, tuple[int, ...], int]:
        batch = draw(st.integers(2, 6))
        return batch, draw(st.integers(1, 16)), tuple(draw(st.permutations(range(batch)))), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, int, tuple[int, ...], int]) -> None:
        batch, length, order, seed = case
        g = rng(seed)
        x = _float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        y, final = runner.forward(x, state)
        alone = []
        for i in range(batch):
            yi, fi = runner.forward(x[i : i + 1], _rows(state, slice(i, i + 1)))
            err = _max_abs(yi, y[i : i + 1])
            if runner.layer is not None:
                err = max(err, _max_abs(fi, _rows(final, slice(i, i + 1))))
            alone.append(err)
        errors["alone"] = max(errors["alone"], *alone)
        _target(max(alone), "alone")
        for i, err in enumerate(alone):
            if err > SAME_COMPUTATION_ATOL:
                raise Mismatch(
                    f"row {i} of a batch of {batch} (T={length}) differs from that sample alone by {_fmt(err)}"
                )
        index = np.asarray(order)
        yp, fp = runner.forward(np.ascontiguousarray(x[index]), _rows(state, index))
        err = _max_abs(yp, y[index])
        if runner.layer is not None:
            err = max(err, _max_abs(fp, _rows(final, index)))
        errors["permuted"] = max(errors["permuted"], err)
        _target(err, "permuted")
        if err > SAME_COMPUTATION_ATOL:
            raise Mismatch(
                f"the batch permuted by {list(order)} gives outputs {_fmt(err)} away from the outputs permuted"
            )

    message = explore(prop, cases())
    worst = max(errors.values())
    detail = f"on the {runner.kind}: alone vs in the batch {_fmt(errors['alone'])}; permuted {_fmt(errors['permuted'])}"
    if message:
        detail += ". " + message
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not message, detail, dict(errors))


def causality(subject: Subject) -> Outcome:
    runner = _Runner(subject, 3, 7, 14)
    worst, least_effect = 0.0, float("inf")

    @st.composite
    def cases(draw: Any) -> tuple[int, int, int, int]:
        length = draw(st.integers(2, 20))
        return draw(st.integers(1, 3)), length, draw(st.integers(0, length - 1)), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, int, int, int]) -> None:
        nonlocal worst, least_effect
        batch, length, t, seed = case
        g = rng(seed)
        x = _float32(g.normal(0.0, 1.0, (batch, length, runner.input_size)))
        state = runner.initial_state(batch, g)
        changed = x.copy()
        changed[:, t] = _float32(g.normal(0.0, 1.0, changed[:, t].shape)) + 2.0
        y, y_changed = runner.forward(x, state)[0], runner.forward(changed, state)[0]
        before = _max_abs(y[:, :t], y_changed[:, :t])
        effect = _max_abs(y[:, t], y_changed[:, t])
        worst, least_effect = max(worst, before), min(least_effect, effect)
        _target(before)
        if before > 0:
            raise Mismatch(f"changing x_{t} (B={batch}, T={length}) changed earlier outputs by {_fmt(before)}")
        if not effect > 0:
            raise Mismatch(f"changing x_{t} (B={batch}, T={length}) left y_{t} unchanged: the input is not read")

    message = explore(prop, cases(), explicit=((2, 9, 0, 0), (2, 9, 8, 1)))
    detail = (
        f"on the {runner.kind}: largest change before t {_fmt(worst)} (must be 0); smallest change at t "
        f"{_fmt(least_effect)} (must be > 0)"
    )
    if message:
        detail += ". " + message
    return Outcome(worst, worst == 0 and not message, detail, {"smallest_effect_at_t": least_effect})


def variable_length(subject: Subject) -> Outcome:
    layer = subject.layer(3, 6, 15, weights_seed=15)
    masked = cast(Any, layer).forward
    worst = 0.0

    @st.composite
    def cases(draw: Any) -> tuple[int, tuple[int, ...], int]:
        length = draw(st.integers(1, 12))
        lengths = draw(st.lists(st.integers(1, length), min_size=1, max_size=4))
        return length, tuple(lengths), draw(st.integers(0, 2**16))

    def prop(case: tuple[int, tuple[int, ...], int]) -> None:
        nonlocal worst
        length, lengths, seed = case
        g = rng(seed)
        batch = len(lengths)
        x = _float32(g.normal(0.0, 1.0, (batch, length, 3)))
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        state = random_state(subject.cell, batch, 6, g)
        y, final = masked(x, state, lengths=np.asarray(lengths))
        rows = []
        for b, n in enumerate(lengths):
            yb, fb = layer.forward(x[b : b + 1, :n], _rows(state, slice(b, b + 1)))
            rows.append(max(_max_abs(y[b : b + 1, :n], yb), _max_abs(_rows(final, slice(b, b + 1)), fb)))
        worst = max(worst, *rows)
        _target(max(rows))
        for b, (n, err) in enumerate(zip(lengths, rows, strict=True)):
            if err > SAME_COMPUTATION_ATOL:
                raise Mismatch(
                    f"row {b} of length {n} padded to {length}: outputs/final state differ from the trimmed "
                    f"sequence's by {_fmt(err)}"
                )

    message = explore(prop, cases())
    detail = f"padded with lengths vs trimmed: max |diff| {_fmt(worst)}"
    if message:
        detail += ". " + message
    return Outcome(worst, worst <= SAME_COMPUTATION_ATOL and not message, detail)


def gradients(subject: Subject) -> Outcome:
    cell, input_size, hidden_size = subject.cell, 3, 4
    layer = subject.layers().build_layer(input_size, hidden_size, 16)
    weights = ref.rounded(ref.random_weights(cell, input_size, hidden_size, rng(16)))
    layer.import_weights(weights)
    g = rng(17)
    x = _float32(g.normal(0.0, 1.0, (2, 5, input_size)))
    state = random_state(cell, 2, hidden_size, g)
    dx, dw = layer.gradients(x, state)
    dx_ref, dw_ref = ref.numerical_gradients(cell, x, weights, state)
    errors = {"x": _max_abs(dx, dx_ref)}
    missing = sorted(set(dw_ref) - set(dw))
    errors.update({k: _max_abs(dw[k], dw_ref[k]) for k in dw_ref if k in dw})
    worst_key = max(errors, key=lambda k: errors[k])
    worst = max(errors.values()) if not missing else float("inf")
    largest = max(float(np.abs(v).max()) for v in [dx_ref, *dw_ref.values()])
    detail = (
        f"d(sum y)/d(x, W) vs central differences of the reference: max |diff| {_fmt(max(errors.values()))} "
        f"(worst: d/d{worst_key}; largest gradient {_fmt(largest)})"
    )
    if missing:
        detail += f"; no gradient for {', '.join(missing)}"
    elif worst > GRADIENT_ATOL:
        bad = sorted(k for k, e in errors.items() if e > GRADIENT_ATOL)
        detail += f"; off for {', '.join(bad)}"
    return Outcome(worst, worst <= GRADIENT_ATOL, detail)


def determinism(subject: Subject) -> Outcome:
    spec = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)
    g = rng(18)
    x = _float32(g.normal(0.0, 1.0, (32, 10, 3)))
    train = Split(x, _float32(np.cumsum(x[..., :2], axis=1) * 0.1))
    budget = Budget(max_epochs=2, batch_size=8, learning_rate=1e-2, shuffle=True)
    probe = _float32(g.normal(0.0, 1.0, (4, 10, 3)))
    runs = []
    for _ in range(2):
        model = subject.adapter.build(spec, 0)
        untrained = model.predict(probe)[0]
        log = model.fit(train, train, budget, lambda m: False)
        runs.append((np.asarray(log.loss_history, np.float64), model.predict(probe)[0], untrained))
    (loss_a, y_a, untrained), (loss_b, y_b, _) = runs
    diff = max(_max_abs(loss_a, loss_b), _max_abs(y_a, y_b))
    moved = _max_abs(y_a, untrained)
    detail = (
        f"two runs of seed 0, {budget.max_epochs} epochs of {len(train) // budget.batch_size} steps: losses and "
        f"predictions differ by {_fmt(diff)} (training moved the predictions by {_fmt(moved)})"
    )
    if not moved > 0:
        detail += "; training changed nothing, so the check proves nothing"
    return Outcome(diff, diff == 0 and moved > 0, detail)


_FEATURE_WORDS = ("feature", "input_size", "input size", "expect")
_STATE_WORDS = ("state", "hidden")
_EMPTY_WORDS = ("empty", "length", "zero", "time step")
_NAN_WORDS = ("nan", "finite")


def _within(seconds: float, call: Callable[[], Any]) -> tuple[str, Any]:
    """("returned", value) / ("raised", exception) / ("hung", None), in a daemon thread."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["returned"] = call()
        except Exception as exc:
            box["raised"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return "hung", None
    return next(iter(box.items()))


def _judge(name: str, call: Callable[[], Any], words: tuple[str, ...],
           behaviour: Callable[[Any], str | None] | None) -> tuple[bool, str]:  # fmt: skip
    """Whether a bad input was handled clearly, and what happened."""
    how, value = _within(HANG_SECONDS, call)
    if how == "hung":
        return False, f"{name}: no answer in {HANG_SECONDS:g} s"
    if how == "raised":
        message = f"{type(value).__name__}: {value}".splitlines()[0][:160]
        if any(w in str(value).lower() for w in words):
            return True, f"{name}: {message}"
        return False, f"{name}: the error does not name the problem ({message})"
    if behaviour is None:
        return False, f"{name}: accepted silently (no error)"
    problem = behaviour(value)
    if problem is None:
        return True, f"{name}: documented behaviour"
    return False, f"{name}: {problem}"


def _bad_cases(forward: Callable[..., Any], input_size: int) -> Iterator[tuple[str, Callable[[], Any], tuple[str, ...], Callable[[Any], str | None] | None]]:  # fmt: skip  # noqa: E501
    g = rng(19)
    good = _float32(g.normal(0.0, 1.0, (2, 5, input_size)))
    _, state_of_3 = forward(_float32(g.normal(0.0, 1.0, (3, 5, input_size))))
    nan_x, t = good.copy(), 2
    nan_x[0, t, 0] = np.nan

    def nan_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        if not np.isfinite(y[1:]).all():
            return "NaN in row 0 leaked into other rows"
        if not np.isfinite(y[0, :t]).all():
            return f"NaN at step {t} made earlier outputs non-finite"
        if np.isfinite(y[0, t:]).all():
            return f"NaN at step {t} was swallowed: the outputs from there on are finite (neither error nor NaN)"
        return None

    def empty_behaviour(result: Any) -> str | None:
        y = np.asarray(result[0])
        return None if y.ndim == 3 and y.shape[1] == 0 else f"an empty sequence gave an output of shape {y.shape}"

    yield (f"{input_size + 1} features instead of {input_size}",
           lambda: forward(np.zeros((2, 5, input_size + 1), np.float32)), _FEATURE_WORDS, None)  # fmt: skip
    yield "a batch-of-3 state with a batch of 2", lambda: forward(good, state_of_3), _STATE_WORDS, None
    yield f"NaN at step {t}", lambda: forward(nan_x), _NAN_WORDS, nan_behaviour
    yield "an empty sequence", lambda: forward(np.zeros((2, 0, input_size), np.float32)), _EMPTY_WORDS, empty_behaviour


def bad_input(subject: Subject) -> Outcome:
    spec = ModelSpec(input_size=3, output_size=2, hidden_size=8, return_sequences=True)
    targets: dict[str, Callable[..., Any]] = {"model": subject.adapter.build(spec, 0).predict}
    if subject.adapter.capabilities.weight_io:
        targets["bare layer"] = subject.layers().build_layer(3, 8, 0).forward
    failing: list[str] = []
    handled: list[str] = []
    for where, forward in targets.items():
        for name, call, words, behaviour in _bad_cases(forward, 3):
            ok, note = _judge(name, call, words, behaviour)
            (handled if ok else failing).append(f"{where}, {note}")
    detail = f"{len(failing)} of {len(failing) + len(handled)} bad inputs without a clear error"
    detail += "".join(f"; FAIL {n}" for n in failing) + "".join(f"; ok {n}" for n in handled)
    return Outcome(float(len(failing)), not failing, detail)


def trained_transplant(subject: Subject) -> Outcome:
    assert subject.counterpart is not None
    task, tier = TASKS["count_steps"], "smoke"
    data = task.generate(rng(0), tier)
    mine, other = subject.layers(), _layer_adapter("counterpart", subject.counterpart)
    other_name = getattr(subject.counterpart, "name", "counterpart")
    source = subject.adapter.build(task.spec, 0)
    log = source.fit(data.train, data.valid, task.budget(tier), lambda m: task.stop(m, data))
    moved = subject.counterpart.build(task.spec, 1)
    other.import_model(moved, mine.export_model(source))
    back = subject.adapter.build(task.spec, 2)
    mine.import_model(back, other.export_model(moved))
    models = {f"in {other_name}": moved, "moved back": back}
    probe = data.probes["long"].x
    y_source = source.predict(probe)[0]
    output_diff = max(_max_abs(m.predict(probe)[0], y_source) for m in models.values())
    worst, lines, flipped = 0.0, [], []
    for check in task.checks:
        base = task.evaluate(check.name, source, data, tier)
        cells = [f"{base.value:.4g}"]
        for label, model in models.items():
            result = task.evaluate(check.name, model, data, tier)
            rel = abs(result.value - base.value) / max(1.0, abs(base.value))
            worst = max(worst, rel if np.isfinite(rel) else float("inf"))
            cells.append(f"{result.value:.4g}")
            if result.passed != base.passed:
                flipped.append(f"{check.name} {label}")
        lines.append(f"{check.name} {'/'.join(cells)}")
    detail = (
        f"{subject.name} trained {log.epochs} epochs ({log.stop_reason}), moved into {other_name} and back; "
        f"count_steps scores trained/in {other_name}/back: {', '.join(lines)}; outputs on lengths up to 40 "
        f"differ by {_fmt(output_diff)}"
    )
    if flipped:
        detail += f"; verdict changed for {', '.join(flipped)}"
    return Outcome(worst, worst <= TRAINED_RTOL and not flipped, detail, {"max_abs_output_diff": output_diff})


RUNNERS: dict[str, Callable[[Subject], Outcome]] = {
    "forward_parity": forward_parity,
    "round_trip": round_trip,
    "transplant": transplant,
    "gate_order": gate_order,
    "streaming": streaming,
    "batch_independence": batch_independence,
    "causality": causality,
    "variable_length": variable_length,
    "gradients": gradients,
    "determinism": determinism,
    "bad_input": bad_input,
    "trained_transplant": trained_transplant,
}
assert set(RUNNERS) == set(CHECKS_BY_NAME)
