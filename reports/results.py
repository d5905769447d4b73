"""The results file: run metadata, records, atomic writes and the schema check."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error", "incomplete")
#: Fields every record has (DESIGN §7), with the JSON types they may hold.
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "adapter": (str,),
    "task": (str,),
    "check": (str,),
    "task_version": (int,),
    "seed": (int,),
    "tier": (str,),
    "outcome": (str,),
    "passed": (bool, type(None)),
    "metric": (str,),
    "value": (float, int, type(None)),
    "threshold": (float, int),
    "higher_is_better": (bool,),
    "baseline": (float, int, type(None)),
    "train_seconds": (float, int, type(None)),
    "epochs": (int, type(None)),
    "params": (int, type(None)),
    "reason": (str,),
}
RUN_FIELDS = ("time", "git_sha", "tier", "seeds", "min_pass_rate", "device", "python", "versions", "machine")
FRAMEWORK_PACKAGES = (
    "numpy", "torch", "tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "flax", "optax", "pytest",
)  # fmt: skip


class ResultsError(ValueError):
    """A results file is missing, malformed or of another schema; the message says which and why."""


def run_metadata(tier: str, seeds: int, min_pass_rate: float, root: Path, device: str = "cpu") -> dict[str, Any]:
    """What the run was: when, which commit, which tier and seeds, on what machine and versions.
    Versions come from package metadata: nothing is imported."""
    versions = {"python": platform.python_version()}
    for package in FRAMEWORK_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_sha": _git_sha(root),
        "tier": tier,
        "seeds": seeds,
        "min_pass_rate": min_pass_rate,
        "device": device,
        "python": sys.version.split()[0],
        "versions": versions,
        "machine": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }


def _git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write to a temp file beside `path`, then rename: a killed run never leaves a half file."""
    write_bytes_atomic(path, (json.dumps(payload, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    """`write_json_atomic` for text (report.md, report.html): all of it or the previous file."""
    write_bytes_atomic(path, text.encode("utf-8"))


def dir_problem(path: Path) -> str:
    """Why files cannot be written in the directory `path` (made if missing); "" if they can. For
    checking an output before the work that fills it, not after."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write in {existing} (permission denied)"
    return ""


def output_problem(path: Path) -> str:
    """`dir_problem` for the file `path`."""
    return f"{path} is a directory" if path.is_dir() else dir_problem(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, then rename; on any failure the old file stays as it was."""
    if path.is_dir():  # else the rename fails naming the temp file
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600; a report is for everyone to read
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate(payload: Any) -> list[str]:
    """Problems with a results payload against the schema; empty when it conforms."""
    if not isinstance(payload, dict):
        return ["results must be a JSON object"]
    problems = []
    if payload.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version is {payload.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    run = payload.get("run")
    if not isinstance(run, dict):
        problems.append("run must be an object")
    else:
        problems += [f"run lacks {key!r}" for key in RUN_FIELDS if key not in run]
    records = payload.get("results")
    if not isinstance(records, list):
        return [*problems, "results must be a list"]
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            problems.append(f"results[{i}] is not an object")
            continue
        for key, types in RECORD_FIELDS.items():
            if key not in rec:
                problems.append(f"results[{i}] lacks {key!r}")
            elif not isinstance(rec[key], types) or (isinstance(rec[key], bool) and bool not in types):
                problems.append(f"results[{i}].{key} has type {type(rec[key]).__name__}")
        if rec.get("outcome") not in OUTCOMES:
            problems.append(f"results[{i}].outcome is {rec.get('outcome')!r}, not one of {OUTCOMES}")
    return problems


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a results file; one clear `ResultsError` line for anything wrong."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    problems = validate(payload)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultsError(f"{path}: not a results file: {problems[0]}{more}")
    return payload
