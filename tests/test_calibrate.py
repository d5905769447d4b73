"""The calibration script's table: later runs replace cells, changed gates are re-judged."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest

from rnn_behaviour.reports.results import write_json_atomic
from tests.test_results import _payload as _bare_payload
from tests.test_results import _record

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("calibrate", ROOT / "scripts" / "calibrate.py")
assert _spec is not None and _spec.loader is not None
calibrate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibrate)


def _payload(records):
    payload = _bare_payload(records)
    payload["run"]["tier"] = "standard"
    return payload


def test_table_counts_seeds_and_marks_expected_failures() -> None:
    records = [_record(seed=s, value=0.01 * (s + 1)) for s in range(3)]
    records += [_record(check="longer", metric="m", seed=s, value=9.0, passed=False) for s in range(3)]
    text = calibrate.calibration_table([_payload(records)])
    assert "| count_steps | fit | test_mse_len20 <= 0.05 | 3/3 (0.02, 0.03) |" in text
    assert "| count_steps | longer | m <= 0.05 | *0/3 (9, 9)* |" in text


def test_a_later_file_replaces_the_cell_and_a_changed_gate_is_rejudged() -> None:
    old = [
        _record(task="sine_rollout", check="rollout", seed=s, value=0.2, threshold=0.1, passed=False) for s in range(2)
    ]
    new = [_record(seed=s, value=0.5, passed=False) for s in range(2)]
    text = calibrate.calibration_table([_payload([_record(seed=0), _record(seed=1), *old]), _payload(new)])
    assert "| count_steps | fit | test_mse_len20 <= 0.05 | 0/2 (0.5, 0.5) |" in text
    assert "| sine_rollout | rollout | test_mse_len20 <= 0.25 | 2/2 (0.2, 0.2) |" in text


def test_the_committed_csv_reads_back_into_the_same_table(tmp_path: Path) -> None:
    records = [_record(tier="standard", seed=s, value=0.01 * (s + 1)) for s in range(3)]
    records += [
        _record(tier="standard", check="longer", metric="max_mse_len21_40", seed=s, value=9.0, passed=False)
        for s in range(2)
    ]
    payloads = [_payload(records)]
    csv_path = tmp_path / "calibration.csv"
    calibrate.write_csv(payloads, csv_path)
    assert calibrate.calibration_table(calibrate.load_csv(csv_path)) == calibrate.calibration_table(payloads)


def test_a_file_that_is_not_a_calibration_csv_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(calibrate.ResultsError, match="not a calibration file"):
        calibrate.load_csv(bad)


def test_flake_rate_counts_gated_cells_and_lists_the_misses() -> None:
    records = [_record(tier="standard", seed=s, value=0.01, passed=s != 3) for s in range(12)]
    records += [_record(tier="standard", check="longer", seed=s, value=9.0, passed=False) for s in range(10)]
    records += [_record(tier="standard", adapter="torch-rnn", seed=s, value=9.0, passed=False) for s in range(10)]
    text = calibrate.flake_table([_payload(records)], seeds=10)
    # The expected failure (longer) and the adapter outside the target (torch-rnn) do not count.
    assert "Tier standard: 9/10 gated cell-seeds pass (90.0%; misses the 99% target): 10 seeds per cell" in text
    assert "| standard | torch-lstm | count_steps.fit | 9/10 |" in text


def test_unknown_adapter_or_task_names_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate.main(["run", "--adapters", "torch-lsmt", "--out", "x.json"]) == 2
    assert "calibrate: unknown adapter 'torch-lsmt': did you mean torch-lstm" in capsys.readouterr().err
    assert calibrate.main(["run", "--tasks", "count_stpes", "--out", "x.json"]) == 2
    assert "unknown task 'count_stpes': did you mean count_steps" in capsys.readouterr().err


def test_a_pending_task_is_run_with_pending_and_the_device_passed_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []
    monkeypatch.setattr(calibrate.subprocess, "call", lambda cmd, cwd: calls.append(cmd) or 4)
    later = dataclasses.replace(calibrate.TASKS["adding"], id="adding_later")  # no task is pending today
    monkeypatch.setitem(calibrate.PENDING, "adding_later", later)
    monkeypatch.setitem(calibrate.KNOWN, "adding_later", later)
    args = ["run", "--tasks", "adding_later", "--adapters", "torch-lstm", "--device", "cuda", "--out", "x.json"]
    assert calibrate.main(args) == 4  # the fake pytest wrote no results
    assert "calibrate: pytest exited 4 and wrote no results" in capsys.readouterr().err
    (cmd,) = calls
    assert "--pending" in cmd and cmd[cmd.index("--device") + 1] == "cuda"
    assert cmd[cmd.index("-k") + 1] == "(torch-lstm-) and (-adding_later-)"
    calibrate.main(["run", "--tasks", "count_steps", "--out", "x.json"])
    assert "--pending" not in calls[1] and "--device" not in calls[1]


def test_same_results_compares_outcome_and_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("same_results", ROOT / "scripts" / "same_results.py")
    assert spec is not None and spec.loader is not None
    same_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(same_results)
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    records = [_record(seed=s, value=0.01) for s in range(2)]
    for path, recs in ((a, records), (b, records), (c, [*records[:1], _record(seed=1, value=0.02)])):
        write_json_atomic(path, _payload(recs))
    assert same_results.main([str(a), str(b)]) == 0
    assert "2/2 shared records identical" in capsys.readouterr().out
    assert same_results.main([str(a), str(c)]) == 1
    assert "torch-lstm-count_steps-fit-1: passed 0.01 vs passed 0.02" in capsys.readouterr().out


def test_an_out_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []
    monkeypatch.setattr(calibrate.subprocess, "call", lambda cmd, cwd: calls.append(cmd) or 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out, why in [(tmp_path, "is a directory"), (blocker / "x.json", "is a file, not a directory")]:
        assert calibrate.main(["run", "--tasks", "count_steps", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"calibrate: --out {out}: ") and why in err and err.count("\n") == 1
    assert calls == []  # nothing ran


def test_results_that_cannot_be_copied_to_out_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_pytest(cmd: list[str], cwd: Path) -> int:
        report_dir = Path(cmd[cmd.index("--report-dir") + 1])
        write_json_atomic(report_dir / "results.json", _payload([_record(tier="standard")]))
        return 0

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(calibrate.subprocess, "call", fake_pytest)
    monkeypatch.setattr(calibrate, "write_bytes_atomic", full_disk)
    assert calibrate.main(["run", "--tasks", "count_steps", "--out", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert f"could not write {tmp_path / 'out.json'} (No space left on device); the results are in " in err
    kept = Path(err.rsplit(" ", 1)[1].strip())
    try:
        assert calibrate.load(kept)["results"][0]["check"] == "fit"
    finally:
        shutil.rmtree(kept.parent)


def test_a_readme_or_flake_out_that_cannot_be_used_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    write_json_atomic(results, _payload([_record(tier="standard")]))
    missing = tmp_path / "nosuch.md"
    assert calibrate.main(["table", str(results), "--readme", str(missing)]) == 2
    assert capsys.readouterr().err == f"calibrate: {missing}: No such file or directory\n"
    assert calibrate.main(["flake", str(results), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"calibrate: {tmp_path}: Is a directory\n"


def test_flake_with_nothing_to_rate_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    write_json_atomic(results, _payload([_record(tier="standard", adapter="torch-rnn")]))  # not rated
    assert calibrate.main(["flake", str(results)]) == 2
    assert "calibrate: no gated cell of" in capsys.readouterr().err
    assert calibrate.main(["flake", str(results), "--seeds", "0"]) == 2
    assert capsys.readouterr().err == "calibrate: --seeds must be >= 1, got 0\n"
