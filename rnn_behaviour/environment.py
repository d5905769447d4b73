"""What the suite needs of the environment it runs in, checked before anything trains.

Installed into a user's own environment (their torch, maybe no TensorFlow, maybe a GPU), the suite
brings no framework of its own. What it cannot do without gets one line naming what is missing and
how to get it (the plugin makes it a usage error, exit 4): pytest older than 9, none of
PyTorch, TensorFlow and JAX, or `--device cuda` where torch sees no GPU. Nothing here imports a framework
unless the run asks for a GPU.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

PYTEST_MIN = (9, 0)
FRAMEWORK_PREFIXES = ("torch:", "keras:", "jax:")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def pytest_problem() -> str | None:
    """pytest too old (or absent) for the suite, in one line, or None."""
    found = _version("pytest")
    if found is None:
        return f"rnn-behaviour needs pytest >= 9 and {sys.executable} has none: pip install 'pytest>=9'"
    if _release(found) < PYTEST_MIN:
        return f"rnn-behaviour needs pytest >= 9, this environment has pytest {found}: pip install 'pytest>=9'"
    return None


def shadow_problem(cwd: Path, package: Path) -> str | None:
    """A run started in a directory that holds another `rnn_behaviour` (a checkout of the suite)
    than the one installed (`package`, this package's directory): pytest runs there with that
    directory first on the path, so it would import that copy while collecting the installed one's
    benchmarks, and fail on the mismatch. One line naming both, or None."""
    other = cwd / "rnn_behaviour" / "__init__.py"
    # the same file either way (a checkout, an editable install, or a strict one of linked files)
    if not other.is_file() or other.resolve() == (package / "__init__.py").resolve():
        return None
    return (
        f"rnn-behaviour: this directory holds another copy of the suite ({other.parent}), which Python would "
        f"import in place of the installed one ({package}) that this command runs: run it from another directory "
        "(your project's), or run that copy's own `pytest benchmarks` here"
    )


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def framework_problem(adapter_specs: Sequence[str]) -> str | None:
    """None of PyTorch, TensorFlow and JAX, and no adapter of the user's own that could need none."""
    if has("torch") or has("tensorflow") or has("jax"):
        return None
    generic = [spec for spec in adapter_specs if not spec.split("=", 1)[-1].startswith(FRAMEWORK_PREFIXES)]
    if generic:
        return None  # an adapter class of the user's own may bring its own framework
    return (
        f"rnn-behaviour: none of PyTorch, TensorFlow and JAX is installed in {sys.executable}, so no row can run: "
        "install your own build of torch, or the lock's with pip install 'rnn-behaviour[torch]' "
        "(or '[keras]' for TensorFlow and Keras, '[jax]' for JAX and Flax)"
    )


def device_problem(device: str, adapter_specs: Sequence[str] = ()) -> str | None:
    """`--device cuda` where torch sees no GPU (a CPU-only build, or no driver), or where the run
    is JAX's (no torch, or a `jax:` adapter) and jax sees none, in one line. (A CPU-only jaxlib
    beside a CUDA torch only skips the flax-* built-ins, with the reason.)"""
    if device != "cuda":
        return None
    jax_rows = any(spec.split("=", 1)[-1].startswith("jax:") for spec in adapter_specs)
    if has("jax") and (jax_rows or not has("torch")):
        import jax

        try:
            jax.devices("gpu")
        except RuntimeError:  # no GPU backend in this jaxlib, or no device
            return (
                f"rnn-behaviour: --device cuda, but jax {jax.__version__} sees no GPU (jax.devices() is "
                f"{jax.devices()}): install a CUDA jaxlib (pip install 'jax[cuda12]') where a GPU is visible, or use "
                "--device cpu"
            )
    if not has("torch"):
        return None
    import torch

    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, no GPU visible"
    return (
        f"rnn-behaviour: --device cuda, but torch {torch.__version__} ({build}) sees no CUDA device: run where "
        "a GPU is visible with a CUDA build of torch (https://pytorch.org/get-started/locally/), or use --device cpu"
    )


def problem(device: str, adapter_specs: Sequence[str]) -> str | None:
    """The first thing this environment lacks for the run, as one line, or None."""
    return pytest_problem() or framework_problem(adapter_specs) or device_problem(device, adapter_specs)


def accelerator(device: str) -> dict[str, str] | None:
    """The GPU torch runs on for a run's `--device` (name, CUDA, cuDNN, the torch build), or None: a
    CPU run asks nothing (and imports nothing)."""
    if device == "cpu" or not has("torch"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return {
        "name": torch.cuda.get_device_name(0),
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),
        "torch": str(torch.__version__),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
    }
