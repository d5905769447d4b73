"""`python -m reports merge SHARD.json... -o OUT.json`: one results file from the shards of a run.

Shards (pytest-split `--splits N --group K` on several machines) must be of one experiment: the
same schema, git commit, tier, seeds and pass rate, else they are refused. A record appears once
per (adapter, task, check, seed); the same key twice is an error unless the records are identical.
The merged run starts at the earliest shard's time, joins differing devices, is incomplete when
any shard is, and keeps each shard's own metadata under `run.shards`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnn_behaviour.reports.results import SCHEMA_VERSION, ResultsError, load, validate

#: Run fields that define the experiment: shards that disagree on one are not one run.
SAME_RUN = ("git_sha", "tier", "seeds", "min_pass_rate")


def merge_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Load, validate and merge shard files; a `ResultsError` line for anything wrong."""
    if not paths:
        raise ResultsError("merge needs at least one shard file")
    return merge([(str(p), load(p)) for p in paths])


def merge(shards: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge validated (name, payload) shards into one payload."""
    first_name, first = shards[0]
    for name, payload in shards[1:]:
        for field in SAME_RUN:
            if payload["run"].get(field) != first["run"].get(field):
                raise ResultsError(
                    f"{name}: run.{field} is {payload['run'].get(field)!r} but {first_name} has "
                    f"{first['run'].get(field)!r}; shards must come from one run"
                )
    records: dict[tuple[str, str, str, int], tuple[str, dict[str, Any]]] = {}
    for name, payload in shards:
        for rec in payload["results"]:
            key = (rec["adapter"], rec["task"], rec["check"], rec["seed"])
            if key in records:
                other, kept = records[key]
                if _canonical(kept) != _canonical(rec):
                    raise ResultsError(
                        f"{name}: {key[0]} {key[1]}.{key[2]} seed {key[3]} is also in {other} with different "
                        "results; a cell must run in one shard only"
                    )
                continue
            records[key] = (name, rec)
    runs = [payload["run"] for _, payload in shards]
    run = dict(first["run"])
    run["time"] = min(str(r.get("time")) for r in runs)
    # One shard that did not finish leaves the whole run incomplete, whichever shard it is.
    run["incomplete"] = next((r["incomplete"] for r in runs if r.get("incomplete")), None)
    devices = list(dict.fromkeys(str(r.get("device")) for r in runs))
    run["device"] = devices[0] if len(devices) == 1 else ", ".join(devices)
    run["shards"] = [
        {"file": name, **{k: payload["run"].get(k) for k in ("time", "device", "python", "versions", "machine")}}
        for name, payload in shards
    ]
    merged = {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "results": sorted(
            (rec for _, rec in records.values()), key=lambda r: (r["adapter"], r["task"], r["check"], r["seed"])
        ),
    }
    problems = validate(merged)
    if problems:
        raise ResultsError(f"merged results do not validate: {problems[0]}")
    return merged


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)
