"""Recurrent layers for conformance's own tests, on top of the float64 reference: one exact, the
rest broken on purpose the way hand-written RNNs break (gate order, dropped state, the wrong GRU,
a transposed kernel, padding read as data).

Each adapter class here has the conformance layer API (`build_layer`, `cell`, `weight_io`), so
`--adapter swapped=tests.fake_layers:SwappedLSTM` puts it in `benchmarks/test_conformance.py`.
They have no training: the checks that train (determinism, trained_transplant) are not for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnn_behaviour.adapters import reference as ref
from rnn_behaviour.adapters.base import Capabilities, FitLog
from rnn_behaviour.adapters.reference import ReferenceLayer, Weights
from rnn_behaviour.tasks.base import Budget, ModelSpec, Split


class SwappedGates(ReferenceLayer):
    """Reads the forget gate's weights where the input gate's belong and vice versa (a gate-order
    slip in a hand-written kernel); import and export are canonical, so only the maths is wrong."""

    order: tuple[str, ...] = ("f", "i", "g", "o")

    def _used(self) -> Weights:
        return ref.permute_gates(self.cell, self.weights, self.order)

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        super().forward(x, state)
        return ref.forward(self.cell, x, self._used(), state)

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        dx, dw, dstate = ref.backward(self.cell, x, self._used(), state, dy, dfinal)
        return dx, ref.permute_gates(self.cell, dw, self.order), dstate  # a swap is its own inverse


class DropsState(ReferenceLayer):
    """Ignores the state it is given and starts every call from zeros (a stateless wrapper)."""

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return super().forward(x, None)

    def gradients(
        self, x: np.ndarray, state: Any = None, dy: np.ndarray | None = None, dfinal: Any = None
    ) -> tuple[np.ndarray, Weights, Any]:
        dx, dw, _ = super().gradients(x, None, dy, dfinal)
        return dx, dw, ref.pack_state(self.cell, [np.zeros((len(x), self.hidden_size))] * ref.N_STATES[self.cell])


class ResetBeforeGRU(ReferenceLayer):
    """The reset-before GRU (Keras's reset_after=False, PyTorch's is reset-after) in the canonical
    reset-after layout: it claims the default form and computes the other."""

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        super().forward(x, state)
        return ref.forward(self.cell, x, self.weights, state, variant="reset_before")


class ResetAfterGRU(ReferenceLayer):
    """Claims the reset-before variant and computes the reset-after GRU."""

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        super().forward(x, state)
        return ref.forward(self.cell, x, self.weights, state)


class TransposedRecurrence(ReferenceLayer):
    """Multiplies h by Uᵀ: a transposed recurrent kernel, invisible in the shapes."""

    def forward(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        super().forward(x, state)
        used = {k: (v.T if k.startswith("U_") else v) for k, v in self.weights.items()}
        return ref.forward(self.cell, x, used, state)


class Masking(ReferenceLayer):
    """Reads row b up to `lengths[b]` steps: outputs beyond are zeros, the final state is the one
    after the last real step."""

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        if lengths is None:
            return super().forward(x, state)
        x = np.asarray(x, np.float64)
        y = np.zeros((x.shape[0], x.shape[1], self.hidden_size))
        finals = []
        for b, n in enumerate(np.asarray(lengths)):
            row_state = None if state is None else ref.pack_state(self.cell, [s[b : b + 1] for s in _parts(state)])
            yb, fb = super().forward(x[b : b + 1, :n], row_state)
            y[b, :n] = yb[0]
            finals.append(_parts(fb))
        return y, ref.pack_state(self.cell, [np.concatenate(p) for p in zip(*finals, strict=True)])


class IgnoresLengths(Masking):
    """Declares masking but reads the padding as data."""

    def forward(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        return super().forward(x, state)


def _parts(state: Any) -> list[np.ndarray]:
    return list(state) if isinstance(state, tuple) else [state]


class _NoTraining:
    n_params = 0

    def fit(self, train: Split, valid: Split, budget: Budget, stop: Any) -> FitLog:
        raise NotImplementedError("fake layers do not train")

    def predict(self, x: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        raise NotImplementedError("fake layers have no model")


class FakeLayers:
    """An adapter around one of the layers above; `capabilities` says weight_io (and masking for
    the masking layers)."""

    name = "fake"
    framework = "numpy"
    cell = "lstm"
    layer: type[ReferenceLayer] = ReferenceLayer
    capabilities = Capabilities(weight_io=True)

    variant = ""

    def build_layer(self, input_size: int, hidden_size: int, seed: int) -> ReferenceLayer:
        return self.layer(self.cell, input_size, hidden_size, seed, self.variant)

    def build(self, spec: ModelSpec, seed: int) -> _NoTraining:
        return _NoTraining()

    def export_model(self, model: Any) -> Weights:
        raise NotImplementedError("fake layers have no model")

    def import_model(self, model: Any, weights: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError("fake layers have no model")

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def compute_path(self) -> dict[str, str]:
        return {"device": "cpu"}


class ReferenceLSTM(FakeLayers):
    """The reference itself: passes every layer check."""


class SwappedLSTM(FakeLayers):
    layer = SwappedGates


class StatelessLSTM(FakeLayers):
    layer = DropsState


class ResetBeforeGRULayers(FakeLayers):
    cell = "gru"
    layer = ResetBeforeGRU


class ReferenceResetBeforeGRU(FakeLayers):
    """The reference in the reset-before variant: passes every layer check in that variant."""

    cell, variant = "gru", "reset_before"


class ResetAfterClaimsBeforeGRU(ReferenceResetBeforeGRU):
    layer = ResetAfterGRU


class TransposedLSTM(FakeLayers):
    layer = TransposedRecurrence


class MaskingLSTM(FakeLayers):
    layer = Masking
    capabilities = Capabilities(weight_io=True, variable_length=True)


class PaddingAsDataLSTM(MaskingLSTM):
    layer = IgnoresLengths
