"""Conformance across devices: under `--device cuda`, the same module with the same weights on the
CPU and on the GPU computes the same forward and backward (PyTorch's own `_test_RNN_cpu_vs_cudnn`
holds cuDNN to the CPU within 5e-5), and the record says which kernels ran (cuDNN or not).

It runs on any PyTorch adapter (no canonical weights needed: the GPU module is a copy of the CPU
one) and is skipped, with the reason, on the CPU and for other frameworks. Torch is imported only
when the check runs.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from rnn_behaviour.benchmarks.conformance.common import ConformanceCheck, Outcome, Subject, float32, fmt, rng

#: PyTorch's test_nn `_test_RNN_cpu_vs_cudnn` tolerance (outputs, final state and every gradient).
DEVICE_ATOL = 5e-5
#: The cases: (batch, time) with the adapter's module at input 5, hidden 12 (its own initialisation).
CASES = ((1, 1), (4, 7), (3, 64))


def _kernels(run: Any) -> list[str]:
    """The CUDA kernels one call of `run` launched, in order of first launch (torch's profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    names: list[str] = []
    for event in prof.events():
        if event.device_type.name == "CUDA" and event.name not in names:
            names.append(event.name)
    # the recurrent kernels first (cuDNN's, an RNN's, a GEMM), then the elementwise ones
    return sorted(names, key=lambda n: not any(w in n.lower() for w in ("cudnn", "rnn", "lstm", "gru", "gemm")))


def _leaves(nest: Any) -> list[Any]:
    import torch.utils._pytree as pytree

    return list(pytree.tree_leaves(nest))


def _map(nest: Any, fn: Any) -> Any:
    import torch.utils._pytree as pytree

    return pytree.tree_map(fn, nest)


def device_parity(subject: Subject) -> Outcome:
    import torch

    adapter: Any = subject.adapter
    gpu = adapter.device
    cpu = torch.device("cpu")
    torch.manual_seed(20)
    module_cpu = adapter.factory(5, 12).to(cpu)
    module_gpu = copy.deepcopy(module_cpu).to(gpu)
    errors: dict[str, float] = {}
    g = rng(20)

    def run(module: Any, device: Any, x: np.ndarray, dy: np.ndarray, seed_state: Any) -> tuple[dict[str, Any], Any]:
        xt = torch.from_numpy(x).to(device).requires_grad_(True)
        state = _map(seed_state, lambda a: torch.from_numpy(a).to(device).requires_grad_(True))
        module.zero_grad(set_to_none=True)
        y, final = module(xt, state)
        loss = (y * torch.from_numpy(dy).to(device)).sum()
        for k, leaf in enumerate(_leaves(final)):
            loss = loss + (leaf * (0.5 + 0.1 * k)).sum()
        loss.backward()
        out = {"y": y, **{f"final[{k}]": s for k, s in enumerate(_leaves(final))}, "dx": xt.grad}
        out |= {f"d initial state[{k}]": s.grad for k, s in enumerate(_leaves(state))}
        out |= {f"d {name}": p.grad for name, p in module.named_parameters()}
        return {k: None if v is None else v.detach().cpu().numpy() for k, v in out.items()}, final

    for batch, length in CASES:
        x = float32(g.normal(0.0, 1.0, (batch, length, 5)))
        dy = float32(g.normal(0.0, 1.0, (batch, length, 12)))
        _, some = module_cpu(torch.from_numpy(x))
        state = _map(some, lambda t: float32(g.normal(0.0, 0.5, tuple(t.shape))))
        on_cpu, _ = run(module_cpu, cpu, x, dy, state)
        on_gpu, _ = run(module_gpu, gpu, x, dy, state)
        for key, ref_value in on_cpu.items():
            value = on_gpu[key]
            if ref_value is None or value is None:
                err = 0.0 if ref_value is None and value is None else float("inf")
            else:
                diff = np.abs(value.astype(np.float64) - ref_value)
                # relative to the tensor's scale, as the gradients check: a sum over T steps grows
                err = float(diff.max() / max(1.0, float(np.abs(ref_value).max()))) if value.size else 0.0
                err = err if np.isfinite(err) else float("inf")
            errors[key] = max(errors.get(key, 0.0), err)
    kernels: list[str] = []
    cudnn = False
    if gpu.type == "cuda":  # the tests compare a CPU module with its CPU copy (tests/test_conformance_device.py)
        probe = torch.from_numpy(float32(g.normal(0.0, 1.0, (4, 16, 5)))).to(gpu)
        with torch.no_grad():
            kernels = _kernels(lambda: module_gpu(probe))
        named = any("cudnn" in k.lower() for k in kernels)
        cudnn = named or (isinstance(module_gpu, torch.nn.RNNBase) and bool(torch.backends.cudnn.is_acceptable(probe)))
    worst_key = max(errors, key=lambda k: errors[k])
    worst = errors[worst_key]
    bad = sorted(k for k, e in errors.items() if e > DEVICE_ATOL)
    gpu_name = torch.cuda.get_device_name(gpu) if gpu.type == "cuda" else "no GPU"
    detail = (
        f"{gpu} ({gpu_name}) vs CPU, same weights, {len(CASES)} shapes up to T=64: "
        f"outputs, final state and gradients of x, the initial state and every parameter agree within "
        f"{fmt(worst)} of each tensor's scale (worst: {worst_key}); kernels: {'cuDNN' if cudnn else 'not cuDNN'} "
        f"({', '.join(k[:60] for k in kernels[:3])}{', ...' if len(kernels) > 3 else ''})"
    )
    if bad:
        detail += f"; off by more than {DEVICE_ATOL:g}: {', '.join(bad)}"
    return Outcome(worst, not bad, detail, {"cudnn": float(cudnn)})


def skip_reason(subject_adapter: Any, device_request: str) -> str | None:
    """Why device_parity cannot run here, or None."""
    if getattr(subject_adapter, "framework", "") != "torch":
        return "device_parity compares PyTorch modules on the CPU and the GPU; this adapter is not PyTorch"
    device = getattr(subject_adapter, "device", None)
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return f"device_parity needs --device cuda (this run is on {device_request}): no GPU to compare with"
    return None


CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck(
        "device_parity", "max_rel_diff_gpu_vs_cpu", DEVICE_ATOL, ("gpu",),
        f"under --device cuda: the module on the GPU and its copy on the CPU give the same outputs, final "
        f"state and gradients (x, initial state, every parameter) within {DEVICE_ATOL:g} of each tensor's "
        "scale, max(1, max |CPU value|) (PyTorch's "
        "cpu_vs_cudnn tolerance); the record names the kernels that ran (cuDNN or not)",
        device_parity,
        device_scaled=False,
    ),
)  # fmt: skip
