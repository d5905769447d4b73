"""Calibrate the gates: run the matrix over many seeds and tabulate pass counts per adapter x check.

    python scripts/calibrate.py run --tier standard --seeds 20 --adapters torch-lstm,torch-gru,torch-rnn \
        --out reports/calibration/standard-torch.json
    python scripts/calibrate.py table reports/calibration/standard-*.json --readme tasks/README.md

`run` is `pytest benchmarks/test_behaviour.py --seeds N --min-pass-rate 0 --no-early-stop` (every
seed scored, none gating, every run to its cap) with its results file copied to `--out`. `table`
turns one or more results files into the calibration table (k/N seeds passing, median and worst
value) and, with `--readme`, writes it between the calibration markers of that file and the records
behind it to `calibration.csv` beside it. Thresholds are chosen from this table: the built-in LSTM
and GRU adapters must pass every gated check on at least 19 of 20 seeds.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnn_behaviour.adapters import BUILTINS  # noqa: E402
from rnn_behaviour.benchmarks.expectations import expected_failure  # noqa: E402
from rnn_behaviour.reports.results import ResultsError, load, output_problem, write_bytes_atomic, write_text_atomic  # noqa: E402
from rnn_behaviour.tasks import PENDING, TASKS  # noqa: E402

#: Every task calibrate knows: the matrix's and those waiting for their calibration.
KNOWN = {**TASKS, **PENDING}

START, END = "<!-- calibration:start -->", "<!-- calibration:end -->"


def unknown_names(given: str, known: list[str], kind: str) -> str:
    """One line naming the first unknown name in a comma-separated list (and close matches)."""
    for name in filter(None, given.split(",")):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            return f"unknown {kind} {name!r}: {hint}known: {', '.join(known)}"
    return ""


def run(args: argparse.Namespace) -> int:
    problem = unknown_names(args.adapters, list(BUILTINS), "adapter") or unknown_names(args.tasks, list(KNOWN), "task")
    problem = problem or (f"--out {args.out}: {why}" if (why := output_problem(args.out)) else "")
    if problem:
        print(f"calibrate: {problem}", file=sys.stderr)
        return 2
    # A directory of our own, removed only once the results are at --out: if writing there fails
    # after hours of training, the message says where they are.
    tmp = tempfile.mkdtemp(prefix="calibrate-")
    cmd = [
        sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "test_behaviour.py"),
        "--tier", args.tier, "--seeds", str(args.seeds), "--min-pass-rate", "0",
        "--report-dir", tmp, "-q", "-p", "no:cacheprovider",
        "--no-early-stop",  # every run to its cap: the whole loss histories the early stop is calibrated on
    ]  # fmt: skip
    selection = []
    if args.adapters:
        selection.append(" or ".join(f"{a}-" for a in args.adapters.split(",")))
    if args.tasks:
        selection.append(" or ".join(f"-{t}-" for t in args.tasks.split(",")))
    if selection:
        cmd += ["-k", " and ".join(f"({s})" for s in selection)]
    if args.workers:
        cmd += ["-n", str(args.workers)]
    if any(t in PENDING for t in args.tasks.split(",")):
        cmd.append("--pending")
    if args.device:
        cmd += ["--device", args.device]
    if args.cell_timeout is not None:
        cmd += ["--cell-timeout", f"{args.cell_timeout:g}"]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=ROOT)
    results = Path(tmp) / "results.json"
    if not results.exists():
        print(f"calibrate: pytest exited {code} and wrote no results", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return code or 1
    try:
        write_bytes_atomic(args.out, results.read_bytes())
    except OSError as exc:
        print(f"calibrate: could not write {args.out} ({exc.strerror}); the results are in {results}", file=sys.stderr)
        return 2
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"calibrate: wrote {args.out}")
    return 0


def current_verdict(rec: dict[str, Any]) -> bool:
    """The record's verdict under today's gate: a single-value gate whose threshold has changed
    since the run is judged again from the value (compound gates keep the run's verdict)."""
    threshold = current_threshold(rec)
    if threshold == rec["threshold"] or rec["value"] is None:
        return bool(rec["passed"])
    return KNOWN[rec["task"]].check(rec["check"]).passes(rec["value"])


CSV_FIELDS = (
    "tier",
    "adapter",
    "task",
    "check",
    "seed",
    "value",
    "threshold",
    "passed",
    "epochs",
    "stop_reason",
    "train_seconds",
)


def merged_cells(payloads: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """Records by (adapter, task, check); later files replace earlier ones cell by cell, so a
    re-run of some cells after a budget change updates just those rows."""
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for payload in payloads:
        fresh: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for rec in payload["results"]:
            if rec["outcome"] in ("skipped", "error") and rec["value"] is None:
                continue
            fresh[(rec["tier"], rec["adapter"], rec["task"], rec["check"])].append(rec)
        cells.update(fresh)
    return cells


def write_csv(payloads: list[dict[str, Any]], path: Path) -> None:
    """The records behind the table, one row per (adapter, task, check, seed): the evidence.
    Written beside the target and renamed over it, so the file read in is never half-written."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for _, recs in sorted(merged_cells([same_as_standard(p) for p in payloads]).items()):
            for rec in sorted(recs, key=lambda r: r["seed"]):
                row = {**rec, "passed": current_verdict(rec), "threshold": current_threshold(rec)}
                writer.writerow(["" if row.get(f) is None else row[f] for f in CSV_FIELDS])
    partial.replace(path)


def current_threshold(rec: dict[str, Any]) -> float:
    task = KNOWN.get(rec["task"])
    names = {c.name for c in task.checks} if task else set()
    return task.check(rec["check"]).threshold if task and rec["check"] in names else rec["threshold"]


def calibration_table(payloads: list[dict[str, Any]]) -> str:
    cells = merged_cells(payloads)
    by_cell: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for (_, adapter, task, check), recs in cells.items():
        by_cell[(task, check)][adapter] = recs
    adapters = sorted({adapter for _, adapter, _, _ in cells})
    tiers = sorted({p["run"]["tier"] for p in payloads})
    header = "| task | check | gate | " + " | ".join(adapters) + " |"
    lines = [
        f"Tier {', '.join(tiers)}. Each cell: seeds passing / seeds run, then median and worst value "
        "over the seeds. *Italic* cells are expected failures (`benchmarks/expectations.py`).",
        "",
        header,
        "|" + " --- |" * (3 + len(adapters)),
    ]
    for (task, check), per_adapter in sorted(by_cell.items()):
        first = next(iter(per_adapter.values()))[0]
        threshold = current_threshold(first)
        op = ">=" if first["higher_is_better"] else "<="
        row = [task, check, f"{first['metric']} {op} {threshold:g}"]
        for adapter in adapters:
            recs = per_adapter.get(adapter, [])
            if not recs:
                row.append("")
                continue
            values = sorted(r["value"] for r in recs if r["value"] is not None)
            worst = (values[0] if first["higher_is_better"] else values[-1]) if values else None
            median = values[len(values) // 2] if values else None
            text = f"{sum(current_verdict(r) for r in recs)}/{len(recs)} ({_num(median)}, {_num(worst)})"
            row.append(f"*{text}*" if expected_failure(adapter, task, check, first["tier"]) else text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3g}"


def same_as_standard(payload: dict[str, Any]) -> dict[str, Any]:
    """A non-standard tier's payload without the tasks whose budget for that tier is the standard
    one (their data does not depend on the tier, so those runs are the standard runs again)."""
    tier = payload["run"]["tier"]
    if tier == "standard":
        return payload
    keep = [
        rec
        for rec in payload["results"]
        if rec["task"] not in KNOWN or KNOWN[rec["task"]].budget(tier) != KNOWN[rec["task"]].budget("standard")
    ]
    return {**payload, "results": keep}


def tier_tables(payloads: list[dict[str, Any]]) -> str:
    """One table per tier, standard first."""
    tiers = sorted({p["run"]["tier"] for p in payloads}, key=lambda t: (t != "standard", t))
    sections = []
    for tier in tiers:
        group = [same_as_standard(p) for p in payloads if p["run"]["tier"] == tier]
        if tier != "standard":
            shown = set(TASKS) | {rec["task"] for p in group for rec in p["results"]}
            same = sorted(t for t, task in KNOWN.items() if t in shown and task.budget(tier) == task.budget("standard"))
            sections.append(f"Tasks whose {tier} budget is the standard one ({', '.join(same)}) are not repeated.")
        sections.append(calibration_table(group))
    return "\n\n".join(sections)


def load_csv(path: Path) -> list[dict[str, Any]]:
    """A `calibration.csv` read back as results payloads (one per tier), so a new run of a few
    cells can be merged into the committed evidence: `table tasks/calibration.csv new.json`."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc})") from None
    if not rows or set(CSV_FIELDS) - set(rows[0]):
        raise ResultsError(f"{path}: not a calibration file (needs the columns {', '.join(CSV_FIELDS)})")
    by_tier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        task = KNOWN.get(row["task"])
        if task is None or row["check"] not in {c.name for c in task.checks}:
            continue  # a task or check that no longer exists
        check = task.check(row["check"])
        passed = row["passed"] == "True"
        by_tier[row["tier"]].append(
            {
                **row,
                "seed": int(row["seed"]),
                "value": float(row["value"]) if row["value"] else None,
                "threshold": float(row["threshold"]),
                "passed": passed,
                "epochs": int(row["epochs"]) if row["epochs"] else None,
                "train_seconds": float(row["train_seconds"]) if row["train_seconds"] else None,
                "metric": check.metric,
                "higher_is_better": check.higher_is_better,
                "outcome": "passed" if passed else "failed",
            }
        )
    return [{"run": {"tier": tier}, "results": records} for tier, records in by_tier.items()]


def table(args: argparse.Namespace) -> int:
    payloads = load_all(args.results)
    text = tier_tables(payloads)
    if args.readme is None:
        print(text)
        return 0
    readme = args.readme.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        print(f"calibrate: {args.readme} has no {START} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = readme.split(START, 1)
    tail = rest.split(END, 1)[1]
    write_text_atomic(args.readme, f"{head}{START}\n{text}\n{END}{tail}")
    evidence = args.readme.parent / "calibration.csv"
    write_csv(payloads, evidence)
    print(f"calibrate: wrote the table into {args.readme} and its records into {evidence}")
    return 0


#: The flake rate is judged on the built-in adapters the gates are calibrated for.
FLAKE_ADAPTERS = ("keras-gru", "keras-lstm", "torch-gru", "torch-lstm")


def flake_table(payloads: list[dict[str, Any]], seeds: int) -> str:
    """Pass rate of every gated cell (expected failures left out) of the LSTM/GRU built-ins over
    seeds 0..seeds-1, per tier, and the overall rate against the 99% target."""
    lines = []
    for tier in sorted({p["run"]["tier"] for p in payloads}, key=lambda t: (t != "smoke", t)):
        cells = merged_cells([same_as_standard(p) for p in payloads if p["run"]["tier"] == tier])
        rows, total, passed, counts = [], 0, 0, set()
        for (_, adapter, task, check), recs in sorted(cells.items()):
            if adapter not in FLAKE_ADAPTERS or expected_failure(adapter, task, check, tier):
                continue
            recs = [r for r in recs if r["seed"] < seeds]
            counts.add(len(recs))
            k = sum(current_verdict(r) for r in recs)
            total, passed = total + len(recs), passed + k
            if k < len(recs):
                rows.append(f"| {tier} | {adapter} | {task}.{check} | {k}/{len(recs)} |")
        if not total:
            continue
        rate = passed / total
        verdict = "meets" if rate >= 0.99 else "misses"
        runs = "-".join(str(n) for n in sorted({min(counts), max(counts)}))
        lines.append(
            f"Tier {tier}: {passed}/{total} gated cell-seeds pass ({rate:.1%}; {verdict} the 99% target): "
            f"{runs} seeds per cell (at most seeds 0..{seeds - 1}) of {', '.join(FLAKE_ADAPTERS)}."
        )
        lines += ["", "| tier | adapter | check | passing |", "| --- | --- | --- | --- |", *rows] if rows else []
        lines.append("")
    return "\n".join(lines).strip()


def load_all(paths: list[Path]) -> list[dict[str, Any]]:
    """Results files and calibration.csv files, in order (later ones replace earlier cells)."""
    return [p for path in paths for p in (load_csv(path) if path.suffix == ".csv" else [load(path)])]


def flake(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        print(f"calibrate: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    text = flake_table(load_all(args.results), args.seeds)
    if not text:
        print(f"calibrate: no gated cell of {', '.join(FLAKE_ADAPTERS)} in these records", file=sys.stderr)
        return 2
    if args.out:
        write_text_atomic(
            args.out,
            "# Flake rate\n\nMade by `python scripts/calibrate.py flake tasks/calibration.csv --out "
            "tasks/FLAKE_RATE.md` from the calibration records; only the gated cells that missed on some "
            "seed are listed.\n\n" + text + "\n",
        )
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calibrate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the matrix over seeds 0..N-1 and keep its results file")
    p_run.add_argument("--tier", default="standard", choices=("smoke", "standard", "full"))
    p_run.add_argument("--seeds", type=int, default=20)
    p_run.add_argument("--adapters", default="", help="comma-separated adapter names (default: all)")
    pending = ", ".join(PENDING)
    p_run.add_argument(
        "--tasks", default="", help=f"comma-separated task ids (default: all); naming a pending one ({pending}) runs it"
    )
    p_run.add_argument("--workers", type=int, default=0, help="pytest-xdist workers (default: serial)")
    p_run.add_argument("--device", choices=("cpu", "cuda", "auto"), help="the matrix's --device (default: cpu)")
    p_run.add_argument(
        "--cell-timeout",
        type=float,
        help="the matrix's --cell-timeout (default: the tier's, which counts every seed: a slow row over many seeds "
        "may need 0, no limit)",
    )
    p_run.add_argument("--out", type=Path, required=True)
    p_run.set_defaults(func=run)
    p_table = sub.add_parser(
        "table", help="tabulate results files (or a calibration.csv first); --readme writes between its markers"
    )
    p_table.add_argument("results", nargs="+", type=Path)
    p_table.add_argument("--readme", type=Path)
    p_table.set_defaults(func=table)
    p_flake = sub.add_parser("flake", help="pass rate of the gated LSTM/GRU cells over seeds 0..N-1, per tier")
    p_flake.add_argument("results", nargs="+", type=Path)
    p_flake.add_argument("--seeds", type=int, default=10)
    p_flake.add_argument("--out", type=Path)
    p_flake.set_defaults(func=flake)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ResultsError as exc:  # a results or calibration file that cannot be read: one line
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a --readme or --out that cannot be read or written: one line too
        print(f"calibrate: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
