"""Keep a long run's compiled JAX programs within the kernel's limit on a process's memory mappings.

XLA compiles a program per function and input shape, and on the CPU each one's machine code is
mapped into the process (about 12 mappings a program, measured with jax 0.10.2), for as long as JAX
caches it. The suite calls its models at many shapes (a curve to length 500, a stream in chunks of
20 to 120 steps, every conformance shape), so one process accumulates them: one Flax row's smoke
matrix (its behaviour checks, conformance and speed items, `-n 0`) ended with 33,220 mappings and
3.3 GB resident; the three Flax rows together pass Linux's default limit (`vm.max_map_count`,
65,530), where mapping fails and the process dies. The thousands of JIT-registered frames also make
every C++ exception in the process slow (adapters/engines/runtimes.py, `OvSession.run`).

So before each model is built, a process holding more than `SHARE` of its limit drops JAX's caches
(`jax.clear_caches()`): the programs are compiled again when next needed, or loaded from the
persistent compilation cache: the same executables, so the same results.
"""

from __future__ import annotations

import gc
from pathlib import Path

import jax

#: The share of the kernel's limit on mappings above which JAX's caches are dropped.
SHARE = 0.25
MAPS, LIMIT = Path("/proc/self/maps"), Path("/proc/sys/vm/max_map_count")


def count() -> int | None:
    """The process's memory mappings, or None where /proc does not say (not Linux)."""
    try:
        with MAPS.open("rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def limit() -> int | None:
    try:
        return int(LIMIT.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


#: The mappings the process held right after it last dropped JAX's caches: what JAX's programs do
#: not account for (other libraries'), so that a process they crowd does not drop them at every model.
_floor = [0]


def release_if_crowded(share: float | None = None) -> bool:
    """Drop JAX's caches when this process holds more than `share` (default `SHARE`) of the kernel's
    limit on memory mappings, a quarter of that many of them made since it last did; whether it did."""
    most, held = limit(), count()
    if most is None or held is None:
        return False
    threshold = (SHARE if share is None else share) * most
    if held <= threshold or held - _floor[0] <= threshold / 4:
        return False
    jax.clear_caches()
    gc.collect()
    _floor[0] = count() or 0
    return True
