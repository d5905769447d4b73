"""`python -m reports nightly {shard,merge,publish}`: the nightly job's steps, the same on CI and here.

- `shard K N`: run shard K of N of the matrix (pytest-split) into its own report directory. Exit 1
  from pytest (some checks failed) is a normal night: the failures are data for compare. Any other
  non-zero exit (2 interrupted, 3 internal error, 4 usage error, 5 nothing collected, a crash) or
  a missing results.json is a broken shard, and the command fails with pytest's code.
- `merge SHARD_DIR...`: one results file (and report) of the night from its shards.
- `publish NIGHT_DIR`: tonight into the history (trimmed to the newest `--keep` nights), the
  leaderboard redrawn over it, and tonight compared with the previous night (the newest earlier
  run in the history, or `--base`). Exit 1 names each regression; no previous night passes with a
  note; a task version or tier that changed warns and passes (tonight becomes the new base).

`.github/workflows/nightly.yml` calls these; `make nightly` calls them on the smoke tier in 2 shards.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_behaviour.reports.results import ResultsError, load, write_json_atomic, write_text_atomic

#: What pytest's exit codes mean for a shard (pytest.ExitCode); 0 and 1 are a night that ran.
PYTEST_EXIT = {
    0: "every check passed",
    1: "some checks failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


def shard_command(group: int, splits: int, tier: str, out: Path, pytest_args: Sequence[str]) -> list[str]:
    """The pytest command line of shard `group` of `splits`."""
    from rnn_behaviour.invoke import pytest_command

    return pytest_command(
        [
            "benchmarks",
            "--tier",
            tier,
            "--splits",
            str(splits),
            "--group",
            str(group),
            "--report-dir",
            str(out),
            *pytest_args,
        ]
    )


def shard_verdict(group: int, splits: int, rc: int, results: Path) -> tuple[int, str]:
    """The shard step's exit code and its one line, from pytest's exit code and the results file."""
    name = f"shard {group}/{splits}"
    meaning = PYTEST_EXIT.get(rc, "crashed" if rc < 0 or rc > 5 else "")
    if rc > 1 or rc < 0:
        return (rc if rc > 1 else 3), f"{name} is broken: pytest exited {rc} ({meaning}); no night without it"
    if not results.is_file():
        return 3, f"{name} wrote no {results} (pytest exited {rc}, {meaning}): a broken shard"
    payload = load(results)
    if payload["run"].get("incomplete"):
        return 3, f"{name} did not finish ({payload['run']['incomplete']}): a broken shard"
    return 0, f"{name}: pytest exited {rc} ({meaning}), {len(payload['results'])} records in {results}"


def run_shard(
    group: int,
    splits: int,
    tier: str,
    out: Path,
    pytest_args: Sequence[str],
    runner: Callable[[list[str]], int] | None = None,
) -> tuple[int, str]:
    """Run one shard (from the repository root) and judge it; a stale results.json is removed first."""
    if not 1 <= group <= splits:
        raise ResultsError(f"shard {group} of {splits}: K must be in 1..N")
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.unlink(missing_ok=True)
    command = shard_command(group, splits, tier, out.resolve(), pytest_args)
    print("+ " + " ".join(command), flush=True)
    rc = (runner or subprocess.call)(command)
    return shard_verdict(group, splits, rc, results)


def shard_file(path: str | Path) -> Path:
    """A shard's results file: the path itself, or results.json in a shard's report directory."""
    path = Path(path)
    return path / "results.json" if path.is_dir() else path


def merge_night(shards: Sequence[str | Path], out: Path, expect: int | None = None) -> tuple[dict[str, Any], Path]:
    """Merge the shards into out/results.json (and draw its report); `expect` shards or an error."""
    from rnn_behaviour.reports.merge import merge_files

    if expect is not None and len(shards) != expect:
        raise ResultsError(f"expected {expect} shard(s), got {len(shards)}: {', '.join(map(str, shards)) or 'none'}")
    merged = merge_files([shard_file(s) for s in shards])
    target = out / "results.json"
    write_json_atomic(target, merged)
    from rnn_behaviour.reports import render

    render.write(merged, out)
    return merged, target


# -- publish ----------------------------------------------------------------------------------


@dataclass
class Publication:
    """What `publish` did: the gate's exit code and the lines that say why."""

    rc: int = 0
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(
            [*self.lines, *(f"warning: {w}" for w in self.warnings), *(f"error: {e}" for e in self.errors)]
        )


def history_name(payload: dict[str, Any]) -> str:
    """A night's file name in the history: its run time (UTC) and commit, so names sort by time."""
    from rnn_behaviour.reports.leaderboard import run_time

    when = run_time("night", payload).astimezone(_dt.UTC)
    sha = str(payload["run"].get("git_sha") or "nogit")[:8]
    return f"{when:%Y%m%dT%H%M%SZ}-{sha}.json"


def kept_history(history: Path) -> list[tuple[_dt.datetime, Path, dict[str, Any]]]:
    """The nights in the history directory, oldest first (by run time, then name)."""
    from rnn_behaviour.reports.leaderboard import run_time

    runs = [(p, load(p)) for p in sorted(history.glob("*.json"))]
    return sorted(((run_time(str(p), d), p, d) for p, d in runs), key=lambda t: (t[0], t[1].name))


def publish(
    night_dir: Path,
    history: Path,
    out: Path,
    keep: int,
    base: Path | None = None,
    tolerance: float | None = None,
    speed_tolerance: float | None = None,
) -> Publication:
    """Add tonight to the history, trim it, draw the leaderboard, compare with the previous night."""
    from rnn_behaviour.reports import leaderboard
    from rnn_behaviour.reports.compare import DEFAULT_SPEED_TOLERANCE, DEFAULT_TOLERANCE, VersionMismatch, compare

    if keep < 1:
        raise ResultsError(f"--keep must be at least 1 night, got {keep}")
    night = load(shard_file(night_dir))
    name = history_name(night)
    history.mkdir(parents=True, exist_ok=True)
    earlier = [(t, p, d) for t, p, d in kept_history(history) if p.name != name]
    pub = Publication()

    # The base: --base, else the newest earlier night of the history.
    base_name, base_payload = None, None
    if base is not None:
        if base.exists():
            base_name, base_payload = str(base), load(base)
        else:
            pub.lines.append(f"no previous night at {base}: nothing to compare (a first night passes)")
    elif earlier:
        base_name, base_payload = str(earlier[-1][1]), earlier[-1][2]
    else:
        pub.lines.append(f"no previous night in {history}: nothing to compare (a first night passes)")

    if base_payload is not None:
        try:
            result = compare(
                base_payload,
                night,
                DEFAULT_TOLERANCE if tolerance is None else tolerance,
                DEFAULT_SPEED_TOLERANCE if speed_tolerance is None else speed_tolerance,
            )
        except VersionMismatch as exc:
            pub.warnings.append(f"not compared with {base_name}: {exc}; tonight is the new base")
        else:
            pub.lines += [f"compared with the previous night {base_name}:", result.text()]
            if result.regressed:
                pub.rc = 1
                pub.errors.append(
                    f"{len(result.regressions)} regression(s) against {base_name}: "
                    + "; ".join(result.regressions[:3])
                    + (" ..." if len(result.regressions) > 3 else "")
                )

    # Tonight into the history, the oldest nights beyond --keep out of it.
    write_json_atomic(history / name, night)
    nights = [*earlier, (leaderboard.run_time(name, night), history / name, night)]
    nights.sort(key=lambda t: (t[0], t[1].name))
    dropped = nights[:-keep] if len(nights) > keep else []
    for _, path, _ in dropped:
        path.unlink()
    kept = nights[len(dropped) :]
    head = [f"history {history}: {len(kept)} night(s) kept (at most {keep}), {len(dropped)} dropped"]
    head += [f"wrote {path}" for path in leaderboard.write([p for _, p, _ in kept], out)]
    pub.lines[:0] = head
    report = shard_file(night_dir).parent / "report.html"
    if report.is_file():
        shutil.copyfile(report, out / "latest-report.html")
    summary = ["## compare with the previous night", "", "```", pub.text(), "```", ""]
    write_text_atomic(out / "compare.md", "\n".join(summary))
    return pub


def annotate(pub: Publication) -> None:
    """Print the outcome; under GitHub Actions also as annotations on the run's page."""
    print(pub.text())
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in pub.warnings:
            print(f"::warning title=nightly::{line}")
        for line in pub.errors:
            print(f"::error title=nightly regression::{line}")
