"""Reports over a real (small) results file: report pages, compare, leaderboard, merge, bad input.

`fixtures/results_small.json` is a real run, `pytest benchmarks/test_behaviour.py --tier smoke
--seeds 2 -k "(torch-lstm or torch-rnn) and (count_ or sine)"`, with curves and loss histories
rounded to 4 digits and the sine rollout curve thinned to every 4th step to keep it small.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from rnn_behaviour import reports
from rnn_behaviour.benchmarks.records import new_record
from rnn_behaviour.reports import cells, plots, render
from rnn_behaviour.reports.cli import main
from rnn_behaviour.reports.compare import compare
from rnn_behaviour.reports.document import markdown
from rnn_behaviour.reports.leaderboard import standings
from rnn_behaviour.reports.results import load, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_small.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def payload() -> dict[str, Any]:
    return load(FIXTURE)


def _write(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload))
    return path


def _cell(payload: dict[str, Any], adapter: str, task: str, check: str) -> list[dict[str, Any]]:
    recs = [r for r in payload["results"] if (r["adapter"], r["task"], r["check"]) == (adapter, task, check)]
    assert recs, (adapter, task, check)
    return recs


def _speed_records(seconds: dict[str, float], flops: float = 2e9) -> list[dict[str, Any]]:
    out = []
    for adapter, value in seconds.items():
        rec = new_record(adapter, "speed", "forward-B32-T100-H32", 1, "smoke", "median_s", 1e9, False)
        rec.update(outcome="passed", cell_outcome="passed", passed=True, value=value, extras={"flops_per_s": flops})
        out.append(rec)
    return out


# -- report.md / report.html ------------------------------------------------------------------


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = cells.wilson(19, 20)
    assert (round(low, 3), round(high, 3)) == (0.764, 0.991)
    assert cells.wilson(0, 2)[0] == 0.0 and cells.wilson(2, 2)[1] == 1.0
    assert cells.pass_rate_text(1, 1) == "1/1" and cells.pass_rate_text(2, 2) == "2/2 [0.34, 1.00]"


def test_train_length_marked_in_the_plot_is_the_tasks() -> None:
    from rnn_behaviour.tasks.counting import TRAIN_LENGTH

    assert plots.TRAIN_LENGTH == TRAIN_LENGTH


def test_markdown_has_the_pivot_then_a_table_per_task(payload: dict[str, Any]) -> None:
    text = markdown(payload)
    assert "| task" in text and "| torch-lstm" in text and "| torch-rnn" in text
    assert "xfail 157/0.5 0/2" in text  # the pivot cell of count_last.lengths, from table.py
    for task in ("count_last v1", "count_steps v1", "sine_rollout v1"):
        assert f"### {task}" in text
    row = next(line for line in text.splitlines() if line.startswith("| rollout") and "torch-rnn" in line)
    cols = [c.strip() for c in row.strip("|").split("|")]
    # check, adapter, outcome, metric, value, threshold, baseline, k/N [CI], time to criterion, epochs, params
    assert cols[:3] == ["rollout", "torch-rnn", "xfail"]
    assert cols[5] == "0.25" and cols[6] == "0.8883" and cols[7] == "1/2 [0.09, 0.91]"
    assert cols[10] == "1153"
    assert markdown(payload).index("## Adapter x check") < text.index("## Checks per task")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's report.md and report.html, drawn once for the tests that read them."""
    directory = tmp_path_factory.mktemp("report")
    assert reports.write_reports(load(FIXTURE), directory)
    return directory


def test_html_is_self_contained_with_every_figure(written: Path) -> None:
    page = (written / "report.html").read_text()
    images = re.findall(r'<img src="([^"]*)"', page)
    assert len(images) == 4  # verdicts, length curves, sine rollout, loss curves; no speed records
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script src" not in page
    assert "<table>" in page and "o-xfail" in page and "sine_rollout v1" in page
    assert "speed" not in re.findall(r'alt="([^"]*)"', page)
    assert (written / "report.md").read_text() == markdown(load(FIXTURE))


def test_speed_records_get_bars_and_a_table(payload: dict[str, Any]) -> None:
    payload["results"] = _speed_records({"torch-lstm": 0.004, "torch-rnn": 0.001})
    page = render.html(payload)
    assert re.findall(r'alt="([^"]*)"', page) == ["speed"]  # no verdict heatmap of timings
    assert "Adapter x check" not in page and "<td>4 ms 2 GFLOP/s</td>" in page
    text = markdown(payload)
    assert "| forward-B32-T100-H32 | 4 ms 2 GFLOP/s" in text and "flops_per_s=2e+09" in text
    assert "## Adapter x check" not in text
    assert plots.speed_bars(payload["results"]).startswith(PNG_MAGIC)


def test_plots_leave_out_malformed_curves(payload: dict[str, Any]) -> None:
    for rec in payload["results"]:
        if rec["curve"] and "length" in rec["curve"]:
            rec["curve"] = {"length": [1, 2], "mse": [0.1]}
        rec["loss_history"] = "not a list"
    assert plots.length_curves(payload["results"]) is None
    assert plots.loss_curves(payload["results"]) is None
    assert plots.sine_rollout(payload["results"]).startswith(PNG_MAGIC)


def test_write_reports_never_raises_and_keeps_the_old_pages(payload, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "report.html").write_text("the previous report")

    def broken(payload: dict[str, Any]) -> str:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(render, "html", broken)
    lines: list[str] = []
    assert not reports.write_reports(payload, tmp_path, log=lines.append)
    assert len(lines) == 1 and "RuntimeError: no fonts" in lines[0] and "results.json is intact" in lines[0]
    assert (tmp_path / "report.html").read_text() == "the previous report"


def test_atomic_text_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "report.md"
    write_text_atomic(path, "old report\n")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("rnn_behaviour.reports.results.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "new report\n")
    assert path.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


# -- compare ----------------------------------------------------------------------------------


def test_compare_a_run_with_itself_is_clean(tmp_path: Path, capsys) -> None:
    assert main(["compare", str(FIXTURE), str(FIXTURE)]) == 0
    assert capsys.readouterr().out.startswith("compared 20 cells: 0 regression(s)")


def test_compare_flags_a_check_that_went_from_pass_to_fail(payload, tmp_path: Path, capsys) -> None:
    new = copy.deepcopy(payload)
    for rec in _cell(new, "torch-lstm", "count_steps", "carry_state"):
        rec.update(value=0.5, passed=False, outcome="failed", cell_outcome="failed")
    assert main(["compare", str(FIXTURE), str(_write(tmp_path / "new.json", new))]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION torch-lstm count_steps.carry_state: went from passed to failed" in out
    # its verdict and its value both regressed: two regressions, one cell
    assert out.startswith("compared 20 cells: 2 regression(s) in 1 cell(s)\n")
    assert "max_abs_diff_chunked_vs_whole <= 0.0001: 9.537e-07 -> 0.5" in out
    # and the other way round it is a fix, not a regression
    assert main(["compare", str(tmp_path / "new.json"), str(FIXTURE)]) == 0
    assert "fixed (failed -> passed)" in capsys.readouterr().out


def test_compare_flags_new_failures_and_metric_moves(payload, tmp_path: Path) -> None:
    new = copy.deepcopy(payload)
    extra = new_record("torch-gru", "count_steps", "fit", 1, "smoke", "test_mse_len20", 0.05, False)
    extra.update(outcome="error", cell_outcome="error", reason="boom in fit")
    new["results"].append(extra)
    result = compare(payload, new)
    assert [r.split(":")[0] for r in result.regressions] == ["torch-gru count_steps.fit"]
    assert "new failure (error, not in BASE)" in result.regressions[0]

    moved = copy.deepcopy(payload)
    for rec in _cell(moved, "torch-lstm", "count_steps", "fit"):
        rec["value"] = 0.045  # still passes (<= 0.05) but 0.021 -> 0.045 is beyond 0.25 x 0.05
    (line,) = compare(payload, moved).regressions
    assert line.startswith("torch-lstm count_steps.fit: test_mse_len20 moved the wrong way 0.02119 -> 0.045")
    assert compare(payload, moved, tolerance=1.0).regressions == []
    better = copy.deepcopy(payload)
    for rec in _cell(better, "torch-lstm", "count_steps", "fit"):
        rec["value"] = 0.001
    assert compare(payload, better).regressions == []


def test_compare_flags_speed_regressions_beyond_the_tolerance(payload) -> None:
    base = copy.deepcopy(payload)
    base["results"] += _speed_records({"torch-lstm": 0.010, "torch-rnn": 0.010})
    new = copy.deepcopy(payload)
    new["results"] += _speed_records({"torch-lstm": 0.013, "torch-rnn": 0.011})
    (line,) = compare(base, new).regressions
    assert line.startswith("torch-lstm speed.forward-B32-T100-H32: median_s 0.01 -> 0.013 (+30%)")
    assert compare(base, new, speed_tolerance=0.5).regressions == []
    assert any("faster" in n for n in compare(new, base).notes)


def test_compare_refuses_different_task_versions(payload, tmp_path: Path, capsys) -> None:
    new = copy.deepcopy(payload)
    for rec in new["results"]:
        if rec["task"] == "sine_rollout":
            rec["task_version"] = 2
    assert main(["compare", str(FIXTURE), str(_write(tmp_path / "v2.json", new))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "refusing to compare different task versions: sine_rollout v1 in BASE vs v2 in NEW" in err


def test_compare_exit_codes_from_the_command_line(payload, tmp_path: Path) -> None:
    new = copy.deepcopy(payload)
    for rec in _cell(new, "torch-rnn", "count_last", "fit"):
        rec.update(passed=False, outcome="failed", cell_outcome="failed", value=3.0)
    planted = _write(tmp_path / "planted.json", new)
    codes = [
        subprocess.run([sys.executable, "-m", "reports", "compare", str(FIXTURE), str(b)], cwd=ROOT,
                       capture_output=True, text=True).returncode
        for b in (FIXTURE, planted)
    ]  # fmt: skip
    assert codes == [0, 1]


# -- leaderboard ------------------------------------------------------------------------------


def _night(payload: dict[str, Any], day: int, failing: set[tuple[str, str, str]]) -> dict[str, Any]:
    run = copy.deepcopy(payload)
    run["run"]["time"] = dt.datetime(2026, 11, day, 2, 0, tzinfo=dt.UTC).isoformat()
    run["run"]["git_sha"] = f"{day:02d}" * 20
    for rec in run["results"]:
        if (rec["adapter"], rec["task"], rec["check"]) in failing:
            rec.update(passed=False, outcome="failed", cell_outcome="failed")
    return run


def test_leaderboard_over_three_runs_ranks_and_draws_the_history(payload, tmp_path: Path) -> None:
    fit = [
        ("torch-lstm", task, check)
        for task, check in [("count_last", "fit"), ("count_steps", "fit"), ("sine_rollout", "rollout")]
    ]
    # Given out of order: the latest night (the 22nd) is ranked, where torch-lstm fails 3 checks;
    # on the 21st the lock moved (torch) and count_last's task version changed.
    moved = _night(payload, 21, set(fit[:1]))
    moved["run"]["versions"]["torch"] = "2.14.0+cpu"
    for rec in moved["results"]:
        if rec["task"] == "count_last":
            rec["task_version"] = 2
    files = [
        _write(tmp_path / "c.json", _night(payload, 22, set(fit))),
        _write(tmp_path / "a.json", _night(payload, 20, set())),
        _write(tmp_path / "b.json", moved),
    ]
    out = tmp_path / "board"
    assert main(["leaderboard", *map(str, files), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["history.png", "leaderboard.html", "leaderboard.md", "speed.png"]
    assert (out / "history.png").read_bytes().startswith(PNG_MAGIC)
    md = (out / "leaderboard.md").read_text()
    ranking = [line for line in md.splitlines() if re.match(r"\| \d", line)][:2]
    assert [line.split("|")[2].strip() for line in ranking] == ["torch-rnn", "torch-lstm"]
    history = [line for line in md.splitlines() if line.startswith("| 2026-11-") and "| smoke  |" in line]
    assert [line.split("|")[1].strip()[:10] for line in history] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert [line.split("|")[4].strip() for line in history] == ["8/10", "7/10", "5/10"]  # torch-lstm passed
    # What changed is said on the night it changed, both ways (back on the 22nd).
    assert [line.split("|")[6].strip() for line in history] == [
        "",
        "lock: torch 2.13.0+cpu -> 2.14.0+cpu; tasks: count_last v1 -> v2",
        "lock: torch 2.14.0+cpu -> 2.13.0+cpu; tasks: count_last v2 -> v1",
    ]
    # The speed table: each adapter's total training time per night.
    seconds = sum(
        {
            (r["task"], r["seed"]): r["train_seconds"] for r in payload["results"] if r["adapter"] == "torch-lstm"
        }.values()
    )
    speed = md.split("## Speed")[1]
    rows = [line for line in speed.splitlines() if line.startswith("| 2026-11-")]
    assert [line.split("|")[3].strip() for line in rows] == [f"{seconds:.1f}"] * 3
    assert "![checks passed per adapter over run time](history.png)" in md
    assert "![total training time per adapter over run time](speed.png)" in md
    page = (out / "leaderboard.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 2
    assert "lock: torch 2.13.0+cpu -&gt; 2.14.0+cpu" in page


def test_leaderboard_draws_the_sections_appended_to_its_hook(payload, tmp_path: Path, monkeypatch) -> None:
    from rnn_behaviour.reports import leaderboard
    from rnn_behaviour.reports.document import Table

    def runs(timed: Any) -> Table:
        return Table("capability profile", ["adapter", "runs"], [["torch-lstm", str(len(timed))]], "from the hook")

    monkeypatch.setattr(leaderboard, "SECTIONS", [runs])
    out = tmp_path / "board"
    assert main(["leaderboard", str(_write(tmp_path / "a.json", _night(payload, 20, set()))), "-o", str(out)]) == 0
    assert "## capability profile" in (out / "leaderboard.md").read_text()
    assert "| torch-lstm | 1      |" in (out / "leaderboard.md").read_text()
    assert '<h2 id="capability-profile">capability profile</h2>' in (out / "leaderboard.html").read_text()


def test_leaderboard_tie_break_is_fewer_failures_then_less_training_time() -> None:
    def rec(adapter: str, check: str, verdict: str, seconds: float) -> dict[str, Any]:
        r = new_record(adapter, "t", check, 1, "smoke", "m", 1.0, False)
        r.update(outcome=verdict, cell_outcome=verdict, passed=verdict == "passed", train_seconds=seconds)
        return r

    records = [
        rec("slow", "a", "passed", 9.0), rec("slow", "b", "xfailed", 9.0),
        rec("fast", "a", "passed", 1.0), rec("fast", "b", "xfailed", 1.0),
        rec("broken", "a", "passed", 0.1), rec("broken", "b", "failed", 0.1),
    ]  # fmt: skip
    assert [s.adapter for s in standings(records)] == ["fast", "slow", "broken"]


# -- merge ------------------------------------------------------------------------------------


def _shards(payload: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    one, two = copy.deepcopy(payload), copy.deepcopy(payload)
    one["results"] = [r for r in payload["results"] if r["adapter"] == "torch-lstm"]
    two["results"] = [r for r in payload["results"] if r["adapter"] != "torch-lstm"]
    two["run"]["time"] = "2026-11-23T13:00:00+00:00"
    return _write(tmp_path / "shard1.json", one), _write(tmp_path / "shard2.json", two)


def test_merge_of_two_shards_is_the_whole_run(payload, tmp_path: Path) -> None:
    one, two = _shards(payload, tmp_path)
    out = tmp_path / "merged.json"
    assert main(["merge", str(one), str(two), str(one), "-o", str(out)]) == 0  # an identical repeat is fine
    merged = load(out)
    assert merged["results"] == payload["results"]
    assert merged["run"]["time"] == "2026-11-23T13:00:00+00:00"
    assert [s["file"] for s in merged["run"]["shards"]] == [str(one), str(two), str(one)]
    assert compare(payload, merged).regressions == []


def test_a_merge_is_incomplete_when_any_shard_is(payload, tmp_path: Path) -> None:
    one, two = _shards(payload, tmp_path)
    late = load(two)
    late["run"]["incomplete"] = "interrupted before every item ran"
    two = _write(tmp_path / "shard2-late.json", late)
    out = tmp_path / "merged.json"
    assert main(["merge", str(one), str(two), "-o", str(out)]) == 0
    assert load(out)["run"]["incomplete"] == "interrupted before every item ran"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["results"][0].update(value=1.0), "with different results; a cell must run in one shard only"),
        (lambda p: p["run"].update(git_sha="f" * 40), "run.git_sha is 'ffff"),
        (lambda p: p["run"].update(tier="full"), "run.tier is 'full'"),
    ],
)
def test_merge_refuses_shards_that_disagree(payload, tmp_path: Path, capsys, mutate, message: str) -> None:
    one, _ = _shards(payload, tmp_path)
    other = copy.deepcopy(load(one))
    mutate(other)
    assert main(["merge", str(one), str(_write(tmp_path / "x.json", other)), "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "m.json").exists()


# -- bad input: one line, exit 2, never a traceback --------------------------------------------

BAD_FILES = {
    "missing": None,
    "empty": "",
    "not json": "{results: [",
    "a list": "[]",
    "old schema": json.dumps({"schema_version": 0, "run": {}, "results": []}),
    "bad record": "RECORD",
    "bad time": "TIME",
    "a directory": "DIR",
}


def _bad_file(kind: str, tmp_path: Path, payload: dict[str, Any]) -> Path:
    path = tmp_path / f"{kind.replace(' ', '_')}.json"
    text = BAD_FILES[kind]
    if text == "RECORD":
        bad = copy.deepcopy(payload)
        bad["results"][3]["threshold"] = "0.5"
        text = json.dumps(bad)
    elif text == "TIME":
        bad = copy.deepcopy(payload)
        bad["run"]["time"] = "last night"
        text = json.dumps(bad)
    if text == "DIR":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    return path


COMMANDS = ["compare-base", "compare-new", "leaderboard", "merge", "report"]
CASES = [(k, c) for k in BAD_FILES for c in COMMANDS if k != "bad time" or c == "leaderboard"]


@pytest.mark.parametrize(("kind", "command"), CASES)
def test_bad_input_is_one_line_and_exit_2(kind: str, command: str, payload, tmp_path: Path, capsys) -> None:
    bad = str(_bad_file(kind, tmp_path, payload))
    out = str(tmp_path / "out")
    argv = {
        "compare-base": ["compare", bad, str(FIXTURE)],
        "compare-new": ["compare", str(FIXTURE), bad],
        "leaderboard": ["leaderboard", str(FIXTURE), bad, "-o", out],
        "merge": ["merge", str(FIXTURE), bad, "-o", out + ".json"],
        "report": ["report", bad, "-o", out],
    }[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"python -m reports {argv[0]}: error: ")
    assert "Traceback" not in captured.err + captured.out
    assert "unexpected" not in captured.err, "a bad file must be named as such, not crash"


def test_the_plugin_writes_reports_and_merge_joins_real_pytest_split_shards(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    shards = []
    for group in ("1", "2"):
        report_dir = tmp_path / f"shard{group}"
        result = pytester.runpytest_subprocess(
            str(ROOT / "benchmarks" / "test_behaviour.py"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
            "--report-dir", str(report_dir), "--tier", "smoke", "--adapter", "forgetful=tests.fakes:ForgetfulState",
            "-k", "forgetful-count_steps", "--splits", "2", "--group", group,
        )  # fmt: skip
        assert result.ret in (0, 1), result.stdout.str()
        assert sorted(p.name for p in report_dir.iterdir()) == ["report.html", "report.md", "results.json"]
        shards.append(report_dir / "results.json")
    halves = [{r["check"] for r in load(s)["results"]} for s in shards]
    assert halves[0] and halves[1] and not halves[0] & halves[1], "each shard ran a part of the cells"
    md = "".join((s.parent / "report.md").read_text() for s in shards)
    assert "FAIL 13/0.0001" in md and "### count_steps v1" in md  # carry_state of the forgetful fake
    out = tmp_path / "merged.json"
    assert main(["merge", *map(str, shards), "-o", str(out)]) == 0
    merged = load(out)
    checks = ["carry_state", "cold_start", "fit", "longer", "shorter"]
    assert sorted(r["check"] for r in merged["results"]) == checks
    assert [r["outcome"] for r in merged["results"]] == ["failed", "failed", "passed", "xpassed", "passed"]


def test_an_exact_model_gets_a_linear_mse_axis_without_warnings(payload: dict[str, Any]) -> None:
    for rec in payload["results"]:
        if rec["curve"] and "length" in rec["curve"]:
            rec["curve"]["mse"] = [0.0] * len(rec["curve"]["length"])  # exact at every length
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on a log axis with no positive value
        assert plots.length_curves(payload["results"]).startswith(PNG_MAGIC)


def test_an_output_that_cannot_be_written_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["leaderboard", str(FIXTURE), "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m reports leaderboard: error: -o {blocker}: {blocker} is a file, not a directory\n"
    assert main(["merge", str(FIXTURE), "-o", str(tmp_path)]) == 2  # not the temp file's name
    assert capsys.readouterr().err == f"python -m reports merge: error: {tmp_path}: Is a directory\n"
