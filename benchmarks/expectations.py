"""Known limitations, as data: (adapter pattern, task, check) -> reason, applied as `xfail`.

An implementation that beats one shows as XPASS and is reported as "better than expected", never
as a failure. Each reason says why the failure is expected; the calibration table in
`tasks/README.md` shows how often it happens.

Patterns are `fnmatch` patterns over the built-in adapter names (adapters.BUILTINS). The pattern
`*` is a limit of the task itself (no training data beyond length 20) and applies to every row,
users' rows included; any other pattern applies to the built-in rows it matches and to a user's
row that says which built-in it is like (`--like mine=torch-gru`), never to a user's row by its
name alone (a row called `min-gru` is not a GRU of this suite). A user declares the known limits
of their own rows as data with `--expectations FILE` (`load`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from rnn_behaviour.adapters import BUILTINS
from rnn_behaviour.tasks import PENDING, TASKS, TIERS

#: The pattern of a limit of the task itself, which every row shares.
EVERY_ROW = "*"


@dataclass(frozen=True)
class Expectation:
    adapter: str
    task: str
    check: str
    reason: str
    tiers: tuple[str, ...] = TIERS
    #: The built-in rows on which the calibration passed this check on no seed at all (tasks/README.md):
    #: where every check of a task is so for a row, its smoke tier does not train that model (`foregone`).
    never: tuple[str, ...] = ()


#: The tanh RNN rows whose calibration passed adding, copy_memory, selective_copy and cycle_navigation
#: on no seed: at the smoke tier itself for adding and copy_memory, whose smoke sequences are shorter
#: (T = 50 and 20; 10 seeds each), and at the standard tier for the other two, whose data are the smoke
#: tier's (torch-rnn over 20 seeds, keras-rnn and flax-rnn over 10; tests/test_foregone.py holds each
#: claim to tasks/calibration.csv).
NEVER_LEARNT = ("torch-rnn", "keras-rnn", "flax-rnn")

EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "*",
        "count_last",
        "lengths",
        "trained on length 20 only with the sum at the last step; seed 000 investigation 1: "
        "accuracy drops away from length 20",
    ),
    Expectation(
        "*",
        "count_steps",
        "longer",
        "no training data beyond length 20; seed 000 investigation 2: counts past 20 are not learned",
    ),
    *(
        Expectation(
            "*-gru",
            "sine_rollout",
            check,
            "the GRU's closed-loop forecast drifts although its one-step error passes (calibration at "
            "RMSE <= 0.25: torch-gru 6/20 seeds, keras-gru 3/10; LSTM 20/20 and 10/10)",
        )
        for check in ("rollout", "beats_persistence")
    ),
    *(
        Expectation(
            "torch-rnn",
            "sine_rollout",
            check,
            "torch.nn.RNN (uniform ±1/sqrt(H) init) never reaches the stopping criterion within the "
            "budget; one-step MSE misses on 5/20 seeds and the forecast drifts on 12/20 (keras-rnn, "
            "orthogonal recurrent init, passes 10/10)",
        )
        for check in ("one_step", "rollout", "beats_persistence")
    ),
    *(
        Expectation(
            "flax-rnn",
            "sine_rollout",
            check,
            "nnx.SimpleCell (lecun-normal input kernel, orthogonal recurrent) meets the one-step criterion on "
            "10/10 seeds but its closed-loop forecast drifts on 7/10 (standard = smoke budget: rollout RMSE "
            "median 1.04 against 0.25, ratio to persistence 0.85; keras-rnn passes 10/10)",
        )
        for check in ("rollout", "beats_persistence")
    ),
    Expectation(
        "*-rnn",
        "adding",
        "mse",
        "a plain tanh RNN does not learn the adding problem in the budget: it stays at the memoryless "
        "MSE 0.167 at T = 50 (smoke: torch-rnn, keras-rnn and flax-rnn 0/10 seeds) and T = 100 "
        "(standard: torch-rnn 0/20, keras-rnn 0/10); "
        "vanishing gradients (seed 003 §2; Le et al. 2015)",
        never=NEVER_LEARNT,
    ),
    *(
        Expectation(
            "*-rnn",
            "copy_memory",
            check,
            "a plain tanh RNN does not learn to copy in the budget: recall stays at chance (1/8) over every "
            "delay at T = 50 after the 60-epoch cap (standard: torch-rnn 0/20 seeds, median recall 0.124; "
            "keras-rnn 0/10, 0.129; LSTM and GRU stop at 99.5% within 34 epochs) and at T = 20 after 30 "
            "(smoke: torch-rnn, keras-rnn and flax-rnn 0/10 each); vanishing gradients (seed 003 §2; "
            "Arjovsky et al. 2016)",
            never=NEVER_LEARNT,
        )
        for check in ("recall", "longest_delay")
    ),
    Expectation(
        "*-rnn",
        "selective_copy",
        "recall",
        "a plain tanh RNN does not learn selective copying in the budget: recall stays at chance (1/8) after "
        "the 30-epoch cap (standard: torch-rnn 0/20 seeds, median 0.128; keras-rnn 0/10, 0.128; flax-rnn 0/10, "
        "0.128) where LSTM and "
        "GRU stop at 99.5% within 20 epochs; vanishing gradients over the 30 slots",
        never=NEVER_LEARNT,
    ),
    *(
        Expectation(
            "*-rnn",
            "parity",
            check,
            "a plain tanh RNN learns running parity on about half the seeds in the budget (standard: "
            "torch-rnn 9/20 seeds, keras-rnn 5/10, seed 0 failing in both); the others stay at 0.53-0.81 "
            "per-step accuracy at the epoch cap, where LSTM and GRU stop at 100% within 6 epochs",
        )
        for check in ("fit", "longer")
    ),
    *(
        Expectation(
            "*-rnn",
            "dyck1",
            check,
            "a plain tanh RNN keeps the bracket depth on some seeds only (standard: fit torch-rnn 7/20 seeds, "
            "keras-rnn 6/10; longer 5/20 and 4/10, worst 0.75 and 0.58), where LSTM and GRU pass 19/20 or "
            "better: without a gate, the depth it holds leaks from step to step (Weiss et al. 2018: a squashing RNN "
            "without gates does not count in finite precision)",
        )
        for check in ("fit", "longer")
    ),
    *(
        Expectation(
            "*-rnn",
            "cycle_navigation",
            check,
            "a plain tanh RNN does not learn the mod-5 walk in the budget on any of its 3 runs (standard: "
            "torch-rnn 0/20 seeds, keras-rnn 0/10, flax-rnn 0/10; fit medians 0.466, 0.379 and 0.454 against a chance "
            "of 0.2), where "
            "LSTM and GRU pass 19/20 or better: every run ends at the 100-epoch cap; a 5-state automaton with steps "
            "back needs the gates' saturation to hold a position exactly",
            never=NEVER_LEARNT,
        )
        for check in ("fit", "longer")
    ),
    # Conformance (task "conformance"): upstream bugs a row's engine has, each with its cause.
    *(
        Expectation(
            f"ort-{cell}",
            "conformance",
            "bad_input",
            f"ONNX Runtime's {cell.upper()} kernel swallows a NaN input (finite outputs from the NaN's step on) where "
            "its RNN kernel propagates it: the LSTM and GRU clip every gate pre-activation to [-clip, clip] even with "
            "no clip attribute (clip = FLT_MAX), with std::min(clip, x), which returns clip for x = NaN "
            "(onnxruntime/core/providers/cpu/rnn/rnn_helpers.cc, clip_add_bias); the same NaN-in-min/max class as "
            "microsoft/onnxruntime#21455, no issue found for the RNN kernels (measured: onnxruntime 1.32.0)",
        )
        for cell in ("lstm", "gru")
    ),
    *(
        Expectation(
            f"ov-{cell}",
            "conformance",
            "variable_length",
            "OpenVINO's CPU plugin ignores ONNX sequence_lens when the model's shapes are dynamic: every row runs all "
            "T steps, its padding included, into Y_h (measured, openvino 2026.4.1: the final state is h_T, 1.2 off the "
            "state at the row's last valid step; the same graph reshaped to static shapes is exact, 2.5e-8). In the "
            "dynamic case the plugin keeps the RNN sequence op instead of decomposing it into the TensorIterator that "
            "masks by seq_lengths (openvinotoolkit/openvino#10710); no issue found for the lengths it then ignores",
        )
        for cell in ("lstm", "gru", "rnn")
    ),
)


def expected_failure(
    adapter: str,
    task: str,
    check: str,
    tier: str,
    like: str | None = None,
    declared: Iterable[Expectation] = (),
    trained_by: str = "",
) -> str | None:
    """The reason this cell is expected to fail, or None. A task's control checks (which any
    model honouring the state contract fails) are expected failures everywhere.

    `like` is the built-in row whose expectations a user's row shares (`--like`); a built-in row
    is like itself. `declared` are the user's own (`--expectations`), matched by exact name and
    said first: the user's reason is the one shown. `trained_by` is the row an inference-engine row's
    models come from: its behaviour cells share that row's expectations."""
    known = {**TASKS, **PENDING}
    spec = known[task].check(check) if task in known else None
    if spec is not None and spec.control:
        return f"control check: {spec.description}"
    for e in declared:
        if e.adapter == adapter and e.task == task and e.check == check and tier in e.tiers:
            return e.reason
    builtin = adapter if adapter in BUILTINS else like
    # An inference-engine row's behaviour cells judge its source row's trained model: that row's
    # expected failures are its own too (its conformance cells are its own: task "conformance").
    names = [n for n in (builtin, trained_by if task != "conformance" else "") if n]
    for e in EXPECTATIONS:
        applies = e.adapter == EVERY_ROW or any(fnmatchcase(n, e.adapter) for n in names)
        if applies and e.task == task and e.check == check and tier in e.tiers:
            return e.reason
    return None


#: The tier whose runs skip a foregone model (`foregone`): the quick verdict.
FOREGONE_TIER = "smoke"


def foregone(row: str, task: str, tier: str) -> str | None:
    """Why the built-in `row`'s model of `task` is not trained at `tier`, or None: at the smoke
    tier, a model whose every check is an expected failure that the row's calibration passed on
    no seed (`Expectation.never`) has a known verdict, and training it would only confirm it. The
    standard and full tiers train it (an implementation that beats the expectation shows there as
    XPASS), as `--no-early-stop` and pytest's `--runxfail` do at any tier. A user's row is always
    trained, `--like` or not."""
    if tier != FOREGONE_TIER or row not in BUILTINS or task not in TASKS:
        return None
    reasons = []
    for check in TASKS[task].checks:
        found = [e for e in EXPECTATIONS if e.task == task and e.check == check.name and row in e.never]
        if not found or tier not in found[0].tiers:
            return None
        reasons.append(found[0].reason)
    gist = reasons[0].split(" (")[0].split(";")[0]
    return (
        f"not trained at the {tier} tier, its verdict known: {row}'s calibration passed {task} on no seed "
        f"({gist}); --tier standard, or --no-early-stop, trains it"
    )


class ExpectationsError(ValueError):
    """An --expectations file that cannot be used; the message says which entry and why, in one line."""


#: The fields of one declared expectation: required, then optional.
FIELDS = ("adapter", "task", "check", "reason")
OPTIONAL = ("tiers",)


def load(path: str | Path, adapters: Iterable[str], tasks: dict[str, Any] | None = None) -> tuple[Expectation, ...]:
    """The expectations a user declares in a TOML or JSON file (TOML by a `.toml` suffix):

        [[expectation]]
        adapter = "min-gru"          # a row of this run, by its exact name
        task = "sine_rollout"
        check = "rollout"
        reason = "the parallel scan drifts in closed loop"
        tiers = ["smoke"]            # optional; every tier by default

    JSON holds the same: `{"expectation": [{...}, ...]}` or the bare list. Any problem (the file,
    its syntax, an unknown adapter, task, check, tier or field, an empty reason) raises one
    `ExpectationsError` line."""
    path = Path(path)
    names = set(adapters)
    known = {**TASKS, **PENDING} if tasks is None else tasks
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationsError(f"{path}: cannot read ({exc})") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{path}: not valid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ExpectationsError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); a .toml file is read as TOML"
        ) from None
    entries = data.get("expectation") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"expectation"}:
        raise ExpectationsError(
            f"{path}: unknown key(s) {sorted(set(data) - {'expectation'})}; entries go under 'expectation'"
        )
    if not isinstance(entries, list) or not entries:
        raise ExpectationsError(f"{path}: no entries: expected a list of tables under 'expectation' ([[expectation]])")
    return tuple(_entry(path, i, entry, names, known) for i, entry in enumerate(entries, 1))


def _entry(path: Path, i: int, entry: Any, names: set[str], known: dict[str, Any]) -> Expectation:
    where = f"{path}: entry {i}"
    if not isinstance(entry, dict):
        raise ExpectationsError(f"{where} is not a table of {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in entry]
    unknown = sorted(set(entry) - set(FIELDS) - set(OPTIONAL))
    if missing or unknown:
        problem = f"lacks {', '.join(missing)}" if missing else f"has unknown field(s) {', '.join(unknown)}"
        raise ExpectationsError(f"{where} {problem} (fields: {', '.join(FIELDS)}, optional {', '.join(OPTIONAL)})")
    bad = [f for f in FIELDS if not isinstance(entry[f], str) or not entry[f].strip()]
    if bad:
        raise ExpectationsError(f"{where}: {', '.join(bad)} must be non-empty text")
    adapter, task, check, reason = (entry[f].strip() for f in FIELDS)
    if adapter not in names:
        raise ExpectationsError(
            f"{where}: adapter {adapter!r} is no row of this run (rows: {', '.join(sorted(names))})"
        )
    if task not in known:
        raise ExpectationsError(f"{where}: no task {task!r} (tasks: {', '.join(sorted(known))})")
    checks = [c.name for c in known[task].checks]
    if check not in checks:
        raise ExpectationsError(f"{where}: task {task!r} has no check {check!r} (checks: {', '.join(checks)})")
    tiers = entry.get("tiers", list(TIERS))
    if not isinstance(tiers, list) or not tiers or any(t not in TIERS for t in tiers):
        raise ExpectationsError(f"{where}: tiers must be a list of {', '.join(TIERS)}, got {tiers!r}")
    return Expectation(adapter, task, check, reason, tuple(tiers))
