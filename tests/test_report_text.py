"""What the report files say about a cell that did not pass: the failure message (collapsed in the
HTML), each skip reason once with the cells it applies to, no ANSI escape codes, the training
time per row, and an outcome the report code does not know shown as it is."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour.benchmarks.records import new_record
from rnn_behaviour.reports import render, table
from rnn_behaviour.reports.document import failures, markdown
from rnn_behaviour.reports.results import load

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_small.json"
BOLD, RESET = "\x1b[1m", "\x1b[0m"
WEIGHT_SKIP = (
    "mine declares no weight import/export in the canonical layout (Capabilities.weight_io is False); {check} "
    "needs the bare layer and its weights"
)


def _rec(adapter: str, task: str, check: str, outcome: str, **fields: Any) -> dict[str, Any]:
    rec = new_record(adapter, task, check, 1, "smoke", "mse", 0.05, False)
    rec.update(
        outcome=outcome,
        cell_outcome=outcome,
        passed=None if outcome in ("error", "skipped") else outcome in ("passed", "xpassed"),
        **fields,
    )
    return rec


@pytest.fixture
def payload() -> dict[str, Any]:
    run = load(FIXTURE)
    weight_checks = ["forward_parity", "gate_order", "gradient_parity", "state_export", "bias_split"]
    run["results"] += [
        _rec("mine", "conformance", check, "skipped", reason=WEIGHT_SKIP.format(check=check)) for check in weight_checks
    ]
    run["results"] += [
        _rec("mine", "count_steps", "carry_state", "failed", value=13.0, threshold=1e-4, train_seconds=2.5,
             message="mine failed count_steps.carry_state: passed 0/1 seeds\n  the state handed back in is ignored"),
        _rec("mine", "count_steps", "fit", "passed", value=0.01, train_seconds=2.5),
        *(_rec("mine", "adding", check, "error", train_seconds=None,
               reason=f"mine on adding (seed 0): {BOLD}ValueError{RESET}: Exception encountered when calling "
               f"{BOLD}LSTM.call(){RESET}") for check in ("mse", "accuracy")),
        _rec("mine", "sine_rollout", "rollout", "incomplete", value=0.4, threshold=0.25, train_seconds=40.0,
             message="mine stopped after 3 of 200 epochs: the cell would take 900 s, over --cell-timeout 600"),
    ]  # fmt: skip
    return run


def test_the_markdown_says_what_went_wrong_and_each_skip_once(payload: dict[str, Any]) -> None:
    text = markdown(payload)
    wrong = text[text.index("## What went wrong") : text.index("## Skipped")]
    assert "**FAIL** mine: count_steps.carry_state" in wrong and "the state handed back in is ignored" in wrong
    # Two checks of one model that raised: one message, naming both cells.
    assert wrong.count("Exception encountered when calling LSTM.call()") == 1
    assert "**ERROR** mine: adding (mse, accuracy)" in wrong
    assert "**INCOMPLETE** mine: sine_rollout.rollout" in wrong and "over --cell-timeout 600" in wrong
    skipped = text[text.index("## Skipped") :].split("\n## ")[0]
    assert skipped.count("Capabilities.weight_io is False") == 1
    assert "this check needs the bare layer" in skipped
    assert "[mine: conformance (forward_parity, gate_order, gradient_parity, state_export, bias_split)]" in skipped
    assert "\x1b" not in text


def test_the_pivot_has_the_training_time_per_row_and_unknown_outcomes_as_they_are(payload: dict[str, Any]) -> None:
    headers, rows = table.pivot_rows(payload["results"])
    seconds = dict(zip(headers[2:], rows[-1][2:], strict=True))
    assert rows[-1][:2] == list(table.TRAINING_ROW)
    assert seconds == {"torch-lstm": "36.8", "torch-rnn": "25.4", "mine": "42.5"}  # 2.5 once: one model, two checks
    cells = {(r[0], r[1]): dict(zip(headers[2:], r[2:], strict=True)) for r in rows}
    assert cells[("sine_rollout v1", "rollout")]["mine"] == "INCOMPLETE 0.4/0.25"
    assert cells[("conformance v1", "gate_order")]["mine"] == "skip"
    skips = table.skip_lines(payload["results"])
    assert len(skips) == 1 and skips[0].startswith("skipped: mine declares no weight import/export")


def test_a_failure_without_a_stored_message_is_told_from_its_record(payload: dict[str, Any]) -> None:
    old = copy.deepcopy(payload)  # a results file from before records carried `message`
    for rec in old["results"]:
        if rec["cell_outcome"] == "failed":
            rec.update(message=None, detail="feeding [1, 1, 1] then [1, 0, 1] gave [1, 1, 2]", epochs=9,
                       stop_reason="criterion")  # fmt: skip
    (failed,) = [f for f in failures(old["results"]) if f.label == "FAIL"]
    assert failed.message.startswith("seed 0: mse = 13 (threshold 0.0001); 9 epochs, stopped on criterion")
    assert "gave [1, 1, 2]" in failed.message


def test_the_html_collapses_each_message_and_has_no_escape_codes(payload: dict[str, Any], tmp_path: Path) -> None:
    render.write(payload, tmp_path)
    page = (tmp_path / "report.html").read_text()
    details = re.findall(r'<details class="failure"><summary>(.*?)</summary><pre>(.*?)</pre></details>', page, re.S)
    assert len(details) == 3, details
    assert any("the state handed back in is ignored" in body for _, body in details)
    assert page.count("Capabilities.weight_io is False") == 1
    assert "\x1b" not in page and "[1m" not in page


def test_the_plugin_puts_the_failure_message_in_report_md(pytester: pytest.Pytester) -> None:
    report_dir = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        str(ROOT / "benchmarks" / "test_behaviour.py"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
        "--report-dir", str(report_dir), "-p", "no:cacheprovider", "--tier", "smoke",
        "--adapter", "forgetful=tests.fakes:ForgetfulState", "-k", "forgetful-count_steps",
    )  # fmt: skip
    assert result.ret == 1, result.stdout.str()
    records = load(report_dir / "results.json")["results"]
    carry = next(r for r in records if r["check"] == "carry_state")
    assert carry["message"].startswith("forgetful failed count_steps.carry_state: passed 0/1 seeds")
    md = (report_dir / "report.md").read_text()
    assert "**FAIL** forgetful: count_steps.carry_state" in md
    assert "the state handed back in is ignored" in md and "training time (s)" in md


def test_an_interrupted_run_says_so_at_the_top(payload: dict[str, Any]) -> None:
    payload["run"]["incomplete"] = "interrupted before every item ran"
    text = markdown(payload)
    assert "INCOMPLETE run" in text[: text.index("## ")] or "INCOMPLETE run" in text.split("\n## ")[0]
    assert "interrupted before every item ran" in text
    payload["run"]["incomplete"] = None
    assert "INCOMPLETE run" not in markdown(payload)
