"""The capability profile (reports/profile.py, issue 16): every task check names what it measures,
and the report counts per adapter the judged checks passed by capability, as a table in report.md
and report.html and a radar in report.html, with the memory curves side by side."""

from __future__ import annotations

from typing import Any

from rnn_behaviour.benchmarks.records import new_record
from rnn_behaviour.reports import profile, render
from rnn_behaviour.reports.document import markdown
from rnn_behaviour.tasks import PENDING, TASKS
from rnn_behaviour.tasks.base import CAPABILITIES
from tests.test_reports import PNG_MAGIC


def _rec(adapter: str, task: str, check: str, outcome: str, capability: str | None, **more: Any) -> dict[str, Any]:
    rec = new_record(adapter, task, check, 1, "smoke", "m", 1.0, True, capability=capability)
    return rec | {"outcome": outcome, "cell_outcome": outcome, "passed": outcome in ("passed", "xpassed")} | more


def _payload(records: list[dict[str, Any]]) -> dict[str, Any]:
    run = {"time": "2026-11-26T00:00:00+00:00", "git_sha": "abc", "tier": "smoke", "seeds": 1,
           "min_pass_rate": 1.0, "device": "cpu", "python": "3.11", "versions": {}, "machine": {}}  # fmt: skip
    return {"schema_version": 1, "run": run, "results": records}


RECORDS = [
    _rec("a", "t1", "fit", "passed", "basics"),
    _rec("a", "t1", "longer", "xfailed", "length generalisation"),
    _rec("a", "t1", "control", "xfailed", None),  # a control measures nothing of the model
    _rec("a", "t2", "recall", "failed", "memory length"),
    _rec("a", "t2", "carry", "skipped", "state contract"),  # not judged
    _rec("a", "t3", "exact", "error", "state tracking"),
    _rec("b", "t1", "fit", "passed", "basics"),
    _rec("b", "t1", "longer", "xpassed", "length generalisation"),
    _rec("b", "t2", "recall", "passed", "memory length"),
    _rec("b", "t2", "carry", "incomplete", "state contract"),  # not judged
    _rec("b", "t3", "exact", "passed", "state tracking"),
    _rec("b", "speed", "forward", "passed", "basics"),  # a timing, not a capability
]


def test_every_task_check_measures_one_of_the_capabilities() -> None:
    assert profile.ORDER == CAPABILITIES
    for task in {**TASKS, **PENDING}.values():
        for check in task.checks:
            capability = task.capability(check.name)
            assert (capability is None) == check.control, (task.id, check.name)
            assert capability is None or capability in CAPABILITIES, (task.id, check.name, capability)


def test_the_checks_past_the_training_length_measure_length_generalisation() -> None:
    """A check that scores lengths the model never trained on measures length generalisation,
    whatever its task's first tag is (parity, dyck1 and cycle_navigation lead with state tracking)."""
    past = {(t.id, c.name) for t in {**TASKS, **PENDING}.values() for c in t.checks if c.name in ("longer", "lengths")}
    assert {("parity", "longer"), ("dyck1", "longer"), ("cycle_navigation", "longer")} <= past
    for task_id, check in past:
        assert {**TASKS, **PENDING}[task_id].capability(check) == "length generalisation", (task_id, check)


def test_the_profile_counts_judged_checks_passed_per_capability() -> None:
    assert profile.profile(RECORDS) == {
        "a": {"basics": (1, 1), "length generalisation": (0, 1), "memory length": (0, 1), "state tracking": (0, 1)},
        "b": {"basics": (1, 1), "length generalisation": (1, 1), "memory length": (1, 1), "state tracking": (1, 1)},
    }
    headers, rows = profile.profile_rows(RECORDS)
    assert headers == ["capability", "a", "b"]
    assert rows[0] == ["basics", "1/1 (100%)", "1/1 (100%)"]
    assert [r[0] for r in rows] == ["basics", "memory length", "state tracking", "length generalisation"]


def test_records_without_a_capability_give_no_profile() -> None:
    """Results written before records named their capability: no profile, no error."""
    old = [{k: v for k, v in r.items() if k != "capability"} for r in RECORDS]
    assert profile.profile(old) == {} and profile.profile_rows(old) == ([], [])
    assert profile.radar(old) is None and "Capability profile" not in markdown(_payload(old))


def test_the_reports_show_the_profile_and_the_memory_curves() -> None:
    curves = [
        _rec("a", "copy", "recall", "passed", "memory length", curve={"delay": [1, 2, 3], "recall": [1.0, 0.9, 0.5]}),
        _rec("b", "copy", "recall", "passed", "memory length", curve={"delay": [1, 2, 3], "recall": [1.0, 1.0, 1.0]}),
        _rec("a", "parity", "fit", "passed", "state tracking"),
        _rec(
            "a",
            "parity",
            "longer",
            "failed",
            "length generalisation",
            curve={"length": [40, 100], "accuracy": [1, 0.6]},
        ),
    ]
    payload = _payload(RECORDS + curves)
    md = markdown(payload)
    assert "## Capability profile" in md and "| memory length" in md and "2/2 (100%)" in md
    assert (profile.radar(payload["results"]) or b"").startswith(PNG_MAGIC)
    assert (profile.memory_curves(payload["results"]) or b"").startswith(PNG_MAGIC)
    assert profile.memory_curves(RECORDS) is None  # no curves: no figure
    page = render.html(payload)
    assert 'id="profile"' in page and "capability profile" in page and "memory curves" in page


def test_a_state_tracking_tasks_curve_is_drawn_whichever_check_carries_it() -> None:
    fit = _rec("a", "parity", "fit", "passed", "state tracking")
    longer = _rec("a", "parity", "longer", "failed", "length generalisation",
                  curve={"length": [40, 100, 500], "accuracy": [1.0, 0.9, 0.6]})  # fmt: skip
    assert (profile.memory_curves([fit, longer]) or b"").startswith(PNG_MAGIC)
    assert profile.memory_curves([longer]) is None  # a counting task's length curve is drawn elsewhere


def test_the_leaderboard_shows_the_latest_runs_profile(tmp_path) -> None:
    import json

    from rnn_behaviour.reports.cli import main

    older, latest = _payload(RECORDS), _payload([dict(r, outcome="passed", cell_outcome="passed") for r in RECORDS])
    latest["run"]["time"] = "2026-11-27T00:00:00+00:00"
    paths = []
    for name, payload in (("a", older), ("b", latest)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(payload))
    out = tmp_path / "board"
    assert main(["leaderboard", *map(str, paths), "-o", str(out)]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "## capability profile of the latest run" in md
    assert "| memory length" in md and "1/1 (100%)" in md.split("## capability profile of the latest run")[1]
    assert "0/1 (0%)" not in md.split("## capability profile of the latest run")[1]  # the latest, not the older
