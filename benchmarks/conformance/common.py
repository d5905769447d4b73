"""What every family of conformance checks shares: tolerances, the `Subject` a check runs on, its
`Outcome`, the comparison helpers, Hypothesis exploration and the diagnosis of a wrong output.
This module imports no framework."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, seed, settings, target
from hypothesis import strategies as st

from rnn_behaviour.adapters import Adapter
from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.reference import GATES, Layer, LayerAdapter
from rnn_behaviour.tasks.base import ModelSpec
from rnn_behaviour.tasks.rounding import (  # one reading of a nest for the checks and the tasks
    arrays,
    float64_twin,
    max_abs,
)

#: Bumped with a line in benchmarks/README.md whenever a check or tolerance changes.
VERSION = 3
TASK = "conformance"

#: The float32 tolerances, calibrated on the CPU (benchmarks/README.md). Comparisons read them
#: through `TOL`, which scales them for a run on a GPU; the checks' thresholds keep these values.
PARITY_ATOL = 1e-5
SAME_COMPUTATION_ATOL = 1e-6
#: Under --device cuda every float32 tolerance (not the exact ones, not the low-precision classes)
#: is this many times the CPU's: cuDNN's float32 kernels (TF32 off) are another exact algorithm,
#: measured on an H100 up to 1.03e-5 from the float64 reference where the CPU stays within 3e-7
#: (benchmarks/README.md, "On a GPU").
GPU_SCALE = 5.0
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
    run: Callable[[Subject], Outcome]
    #: Whether the threshold is a float32 tolerance that `TOL` scales on a GPU (False for exact
    #: checks, ratios to a tolerance that scales inside the check, and the low-precision classes).
    device_scaled: bool = True


@dataclass
class Outcome:
    """What a check measured. `skipped` is a reason when the check could not run at all on this
    adapter for a reason found only while running (e.g. no low-precision dtype on this device):
    the item is then skipped with it, and its record says so."""

    value: float
    passed: bool
    detail: str
    extras: dict[str, float] = field(default_factory=dict)
    skipped: str = ""
    #: The tolerance that applied, when it is not the check's own (on a GPU: `TOL`).
    threshold: float | None = None


class Tolerances:
    """The float32 tolerances for the device the check runs on: the CPU's, times `scale` (set by
    `run` for each check: `GPU_SCALE` when the adapter runs on a GPU, else 1)."""

    scale = 1.0

    def __call__(self, cpu_value: float) -> float:
        return cpu_value * self.scale

    @property
    def parity(self) -> float:
        return PARITY_ATOL * self.scale

    @property
    def same(self) -> float:
        return SAME_COMPUTATION_ATOL * self.scale


TOL = Tolerances()


def on_gpu(adapter: Any) -> bool:
    """Whether the adapter computes on a GPU (torch: its device; Keras: "gpu")."""
    device = getattr(adapter, "device", "cpu")
    return str(getattr(device, "type", device)) in ("cuda", "gpu")


@dataclass
class Subject:
    """What a check runs on: the adapter under test and, for transplants, its counterpart."""

    name: str
    adapter: Adapter
    counterpart: Adapter | None = None

    @property
    def cell(self) -> str:
        return str(self.adapter.cell)  # type: ignore[attr-defined]

    @property
    def variant(self) -> str:
        """The cell's variant (adapters/reference.py `VARIANTS`; "" is the default form)."""
        return str(getattr(self.adapter, "variant", "") or "")

    def layers(self) -> LayerAdapter:
        return layer_adapter(self.name, self.adapter)

    def layer(self, input_size: int, hidden_size: int, seed: int, weights_seed: int | None = None) -> Layer:
        """A bare layer, with random canonical weights imported unless `weights_seed` is None."""
        layer = self.layers().build_layer(input_size, hidden_size, seed)
        if weights_seed is not None:
            load(layer, self.cell, ref.random_weights(self.cell, input_size, hidden_size, rng(weights_seed)))
        return layer


def load(layer: Layer, cell: str, weights: Mapping[str, np.ndarray], moved: bool = False) -> None:
    """Import canonical weights (the full layout, with bh_*) into `layer`, folded into the layout its
    export has (bh into b when it has none: the same maths, so the reference runs on the full ones).
    Drawn weights are first brought into the layer's form (`reference.in_form`: a no_bhn GRU's bh_n
    is 0, as the reference in that variant computes); `moved` weights (another layer's export) are
    not, so a form that cannot hold them raises `reference.CannotHold`."""
    variant = str(getattr(layer, "variant", "") or "")
    recurrent_bias = ref.has_recurrent_bias(layer.export_weights())
    given = weights if moved else ref.in_form(cell, weights, variant)
    layer.import_weights(ref.to_layout(cell, given, recurrent_bias, variant))


def layer_adapter(name: str, adapter: Any) -> LayerAdapter:
    missing = [m for m in ("cell", "build_layer", "export_model", "import_model") if not hasattr(adapter, m)]
    if missing:
        raise TypeError(f"{name} declares weight_io but lacks {', '.join(missing)} (see adapters/reference.py)")
    return cast(LayerAdapter, adapter)


# --- helpers ---------------------------------------------------------------------------------


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def float32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def random_state(cell: str, batch: int, hidden: int, generator: np.random.Generator) -> Any:
    """A float32 canonical state: h in (-1, 1) like a real one, c of either sign and beyond 1."""
    h = np.tanh(generator.normal(0.0, 1.0, (batch, hidden)))
    parts = [h, generator.normal(0.0, 1.0, (batch, hidden))] if cell == "lstm" else [h]
    return ref.pack_state(cell, [float32(p) for p in parts])


def take_rows(state: Any, index: Any) -> Any:
    if state is None:
        return None
    parts = [np.ascontiguousarray(s[index]) for s in arrays(state)]
    return tuple(parts) if isinstance(state, tuple) else parts[0]


def fmt(value: float) -> str:
    return f"{value:.2g}"


def steer(value: float, label: str = "") -> None:
    """Steer Hypothesis towards larger errors (it takes finite observations only)."""
    target(value if np.isfinite(value) else 1e300, label=label)


class Mismatch(AssertionError):
    """A generated case broke the property; the message says which and how."""


def explore(prop: Callable[..., None], strategy: st.SearchStrategy[Any], examples: int = EXAMPLES,
            explicit: tuple[Any, ...] = (), pinned: str = "") -> str | None:  # fmt: skip
    """Run `prop` on the explicit cases and `examples` generated ones (derandomized, no database);
    the message of the first failing case, shrunk, else None. Derandomized, Hypothesis seeds the
    cases from a digest of `prop`'s source, so any edit to it draws other cases; `pinned` (a
    digest in hex) keeps the cases of the source it was taken from."""
    test = given(strategy)(prop)
    if pinned:
        test = seed(int(pinned, 16))(test)
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


def diagnose(
    cell: str, x: np.ndarray, weights: Mapping[str, np.ndarray], state: Any, y: np.ndarray, variant: str = ""
) -> str:
    """The likely mistake when `y` is not the reference's output (in `variant`) on (x, weights,
    state): the reference with that mistake made gives `y`."""

    def matches(w: Mapping[str, np.ndarray], s: Any = state, form: str = variant) -> bool:
        return max_abs(y, ref.forward(cell, x, w, s, variant=form)[0]) <= DIAGNOSIS_ATOL

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
    if cell == "gru" and variant != "reset_before" and matches(weights, form="reset_before"):
        return (
            "it is the reset-before GRU (r multiplies h before U_n), not the reset-after form PyTorch uses "
            "and Keras defaults to (reset_after=True, linear_before_reset)"
        )
    if cell == "gru" and variant == "reset_before" and matches(weights, form=""):
        return (
            "it is the reset-after GRU (r multiplies h U_n + bh_n), not the reset-before form the layer "
            "declares (variant reset_before, Keras's reset_after=False)"
        )
    if matches({k: (v.T if k.startswith("U_") else v) for k, v in weights.items()}):
        return "it is the reference's output with every recurrent kernel transposed (h Uᵀ instead of h U)"
    if ref.has_recurrent_bias(weights):
        no_bh = {k: (0 * v if k.startswith("bh_") else v) for k, v in weights.items()}
        if matches(no_bh):
            return "it is the reference's output without the recurrent bias bh (PyTorch's bias_hh is not used)"
        if matches({k: (2 * v if k.startswith("bh_") else v) for k, v in weights.items()}):
            return "it is the reference's output with the recurrent bias bh doubled (bias_hh added twice)"
    yr = ref.forward(cell, x, weights, state, variant=variant)[0]
    first = max_abs(y[:, :1], yr[:, :1])
    if first <= TOL.parity:
        return (
            f"the first step matches (error {fmt(first)}), later ones do not: the recurrence (U, the carried "
            "state, or the state update) differs"
        )
    return "the first step already differs: the input kernels, biases or gate equations differ"


class Runner:
    """What streaming, batch and causality checks run: the bare layer when the adapter has one
    (random weights and initial state; its last output is its h), else the model built from a
    plain spec (zero initial state; its outputs are the head's)."""

    def __init__(self, subject: Subject, input_size: int, hidden_size: int, seed: int) -> None:
        self.cell: str | None = None
        if subject.adapter.capabilities.weight_io:
            self.layer: Layer | None = subject.layer(input_size, hidden_size, seed, weights_seed=seed)
            self.cell, self.kind = subject.cell, "bare layer"
            self.forward = self.layer.forward
            self._twin = lambda: _method(float64_twin(self.layer), "forward")
        else:
            spec = ModelSpec(input_size=input_size, output_size=3, hidden_size=hidden_size, return_sequences=True)
            self.layer, self.kind = None, "model (no bare layer: weight_io is off)"
            model = subject.adapter.build(spec, seed)
            self.forward = model.predict
            self._twin = lambda: _method(float64_twin(model), "predict")
        self.input_size, self.hidden_size = input_size, hidden_size

    def float64_twin(self) -> Callable[..., tuple[np.ndarray, Any]] | str:
        """The forward of the same layer or model (same weights) computing in float64, or why
        there is none (tasks/rounding.py); built on first use, then kept."""
        if not hasattr(self, "_forward64"):
            self._forward64 = self._twin()
        return self._forward64

    def initial_state(self, batch: int, generator: np.random.Generator) -> Any:
        return None if self.cell is None else random_state(self.cell, batch, self.hidden_size, generator)


def _method(twin: Any, name: str) -> Any:
    return twin if isinstance(twin, str) else getattr(twin, name)


def zeros_like(state: Any) -> Any:
    """The same nest (tuple, list, dict) with every array zeroed."""
    if isinstance(state, dict):
        return {key: zeros_like(value) for key, value in state.items()}
    if isinstance(state, tuple | list):
        return type(state)(zeros_like(s) for s in state)
    return np.zeros_like(np.asarray(state))
