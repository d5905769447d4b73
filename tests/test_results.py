"""The results file: schema check, atomic writes, clear errors for bad files, the pivot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rnn_behaviour.reports import table
from rnn_behaviour.reports.results import SCHEMA_VERSION, ResultsError, load, validate, write_json_atomic


def _record(**overrides):
    rec = {
        "adapter": "torch-lstm", "task": "count_steps", "check": "fit", "task_version": 1, "seed": 0,
        "tier": "smoke", "outcome": "passed", "cell_outcome": "passed", "passed": True, "metric": "test_mse_len20",
        "value": 0.01, "threshold": 0.05, "higher_is_better": False, "baseline": 11.0, "train_seconds": 1.5,
        "epochs": 12, "params": 4321, "reason": "",
    }  # fmt: skip
    rec.update(overrides)
    return rec


def _payload(records):
    run = {
        key: None
        for key in ("time", "git_sha", "tier", "seeds", "min_pass_rate", "device", "python", "versions", "machine")
    }
    return {"schema_version": SCHEMA_VERSION, "run": run, "results": records}


def test_a_conforming_payload_has_no_problems() -> None:
    assert validate(_payload([_record()])) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda p: p.update(schema_version=99), "schema_version is 99"),
        (lambda p: p["results"][0].pop("seed"), "results[0] lacks 'seed'"),
        (lambda p: p["results"][0].update(outcome="meh"), "results[0].outcome is 'meh'"),
        (lambda p: p["results"][0].update(value="0.1"), "results[0].value has type str"),
        (lambda p: p["results"][0].update(epochs=True), "results[0].epochs has type bool"),
        (lambda p: p["run"].pop("git_sha"), "run lacks 'git_sha'"),
    ],
)
def test_schema_problems_are_named(mutate, problem: str) -> None:
    payload = _payload([_record()])
    mutate(payload)
    assert problem in " ".join(validate(payload))


def test_load_gives_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such results file"):
        load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
    with pytest.raises(ResultsError, match="not a results file: run must be an object"):
        load(other)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json_atomic(path, {"a": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": Boom()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "the mode of any file the user writes, not mkstemp's 0600"


def test_pivot_shows_value_threshold_and_outcome_per_cell() -> None:
    records = [
        _record(),
        _record(adapter="keras-gru", value=0.2, passed=False, outcome="failed", cell_outcome="failed"),
        _record(check="longer", value=9.5, passed=False, outcome="xfailed", cell_outcome="xfailed"),
        _record(adapter="keras-gru", check="longer", value=None, passed=None, outcome="skipped", cell_outcome=None),
    ]  # fmt: skip
    text = table.pivot(records)
    lines = text.splitlines()
    assert lines[0].split() == ["task", "check", "torch-lstm", "keras-gru"]
    assert "pass 0.01/0.05" in text and "FAIL 0.2/0.05" in text and "xfail 9.5/0.05" in text and "skip" in text


def test_lessons_put_the_encodings_side_by_side() -> None:
    records = [
        _record(task="alphabet_timesteps", check="accuracy", value=1.0, epochs=100),
        _record(task="alphabet_features", check="accuracy", value=0.87, epochs=500),
    ]
    (text,) = table.lessons(records)
    assert text.startswith("seed 001: the same letters as timesteps vs as features")
    assert "3 timesteps x 1 feature" in text and "1 in 100 ep" in text and "0.87 in 500 ep" in text
    assert table.lessons(records[:1]) == []
