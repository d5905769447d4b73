"""device_parity catches a module whose device copy computes otherwise, and passes a correct one.

No GPU here: the "GPU" side is the module's copy on the CPU, and the planted defects misbehave only
in that copy (as a CUDA kernel would only on the GPU). `scripts/gpu_checks.sh` runs the real thing.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from rnn_behaviour.adapters.reference import ReferenceLayer  # noqa: E402
from rnn_behaviour.benchmarks.conformance import Subject, run, skip_reason  # noqa: E402
from rnn_behaviour.benchmarks.conformance.common import GPU_SCALE, PARITY_ATOL, TOL  # noqa: E402
from rnn_behaviour.benchmarks.conformance.device import DEVICE_ATOL, device_parity  # noqa: E402
from tests import fake_layers, handwritten  # noqa: E402


class _CopyDiffers:
    """Mixin: the deep copy (the device side) is marked; `on_device` is True there."""

    on_device = False

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        cls = type(self)
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        clone.on_device = True
        return clone


class GradOffOnDevice(_CopyDiffers, handwritten.HandLSTM):
    """Forward exact everywhere; on the device, the gradient flowing back into h is halved (a
    backward kernel that drops a term)."""

    def step(self, x_t: Any, parts: list[Any], t: int) -> list[Any]:
        h, c = parts
        if self.on_device:
            h = _HalfGrad.apply(h)
        return super().step(x_t, [h, c], t)


class _HalfGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Any) -> Any:
        return h.clone()

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        return grad * 0.5


class BiasOffOnDevice(_CopyDiffers, handwritten.HandGRU):
    """On the device, bias_hh is left out of the recurrent product (forward already differs)."""

    def step(self, x_t: Any, parts: list[Any], t: int) -> list[Any]:
        if not self.on_device:
            return super().step(x_t, parts, t)
        (h,) = parts
        xr, xz, xn = (x_t @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh_l0.T).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return [(1 - z) * torch.tanh(xn + r * hn) + z * h]


class _Adapter:
    framework = "torch"

    def __init__(self, factory: Any) -> None:
        self.factory, self.device, self.name = factory, torch.device("cpu"), "fake"


@pytest.mark.parametrize("factory", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN, handwritten.lstm, handwritten.gru])
def test_a_correct_module_and_its_copy_agree(factory: Any) -> None:
    def build(i: int, h: int) -> Any:
        return factory(i, h, batch_first=True) if isinstance(factory, type) else factory(i, h)

    outcome = device_parity(Subject("fake", _Adapter(build)))  # type: ignore[arg-type]
    assert outcome.passed and outcome.value == 0.0, outcome.detail


def test_a_backward_that_differs_on_the_device_fails_and_names_the_gradients() -> None:
    outcome = device_parity(Subject("fake", _Adapter(GradOffOnDevice)))  # type: ignore[arg-type]
    assert not outcome.passed and outcome.value > DEVICE_ATOL
    assert "d weight_hh_l0" in outcome.detail and "d initial state[0]" in outcome.detail
    assert "off by more than" in outcome.detail and "final[0]," not in outcome.detail.split("off by")[-1]


def test_a_forward_that_differs_on_the_device_fails() -> None:
    outcome = device_parity(Subject("fake", _Adapter(BiasOffOnDevice)))  # type: ignore[arg-type]
    assert not outcome.passed and "y" in outcome.detail.split("off by more than")[-1]


def test_device_parity_is_skipped_on_the_cpu_and_for_keras() -> None:
    from rnn_behaviour.adapters.base import Capabilities

    caps = Capabilities(gpu=True)
    assert "needs --device cuda" in str(skip_reason("device_parity", "x", caps, None, _Adapter(handwritten.lstm)))
    keras_like = type("K", (), {"framework": "keras"})()
    assert "not PyTorch" in str(skip_reason("device_parity", "x", caps, None, keras_like))


class _OffBy(ReferenceLayer):
    """The reference with every output 2e-5 off: beyond the CPU's 1e-5, within a GPU's 5e-5."""

    def forward(self, x: Any, state: Any = None) -> Any:
        y, final = super().forward(x, state)
        return y + 2e-5, final


class _OffByLayers(fake_layers.FakeLayers):
    layer = _OffBy


def test_float32_tolerances_scale_on_a_gpu_and_only_there() -> None:
    on_cpu = run("forward_parity", Subject("off", _OffByLayers()))  # type: ignore[arg-type]
    assert not on_cpu.passed and on_cpu.threshold is None
    gpu = _OffByLayers()
    gpu.device = "gpu"  # type: ignore[attr-defined]  # what a Keras adapter on a GPU says
    on_gpu = run("forward_parity", Subject("off", gpu))  # type: ignore[arg-type]
    assert on_gpu.passed and on_gpu.threshold == PARITY_ATOL * GPU_SCALE, on_gpu.detail
    assert "(tolerances x5 on a GPU)" in on_gpu.detail
    assert TOL.scale == 1.0  # reset after the check
    exact = run("causality", Subject("off", gpu))  # type: ignore[arg-type]
    assert exact.threshold == 0.0  # an exact check stays exact
