"""The behaviour matrix, framework-free: cells, the trained-model cache and result records.

A cell is one (adapter, task, check); the model of an (adapter, task, seed) is trained once and
shared by that task's checks, then dropped when the last of them has run. Records are plain
JSON-able dicts that travel through pytest's `user_properties`, so they survive pytest-xdist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.adapters import BUILTINS, Adapter, AdapterRef, resolve
from rnn_behaviour.adapters.base import DeviceUnavailable
from rnn_behaviour.benchmarks.diagnosis import Level, TooSlow, diagnose, near_gate, reference_level
from rnn_behaviour.benchmarks.expectations import foregone
from rnn_behaviour.benchmarks.extension import not_closing, settle, still_closing
from rnn_behaviour.benchmarks.fitting import Fitting, Trained
from rnn_behaviour.benchmarks.records import (
    INCOMPLETE_PROPERTY,
    RECORDS_PROPERTY,
    failure_message,
    finite_or_none,
    new_record,
    verdict,
)
from rnn_behaviour.tasks import Task
from rnn_behaviour.tasks.base import CheckNotApplicable, CheckResult, Data


@dataclass(frozen=True)
class Cell:
    adapter: str
    task: str
    check: str
    #: The row that trains this one's models, for an inference-only row (adapters/engines): its cells
    #: join that row's group, so that one worker trains the model once for both.
    trained_by: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return f"{self.adapter}-{self.task}-{self.check}"

    @property
    def group(self) -> str:
        return f"{self.trained_by or self.adapter}-{self.task}"


class CellSkipped(Exception):
    """The adapter cannot run this cell (missing framework or capability); the message says why."""


class TrainingFailed(Exception):
    """Building or training the model of a cell raised; the message names the cell and seed."""


class CellIncomplete(Exception):
    """Training was stopped because it was projected not to finish within the cell timeout: the
    cell is *incomplete*, not failed; the message gives the projection."""


@dataclass
class Matrix(Fitting):
    """Session state of the behaviour matrix: adapters, data and trained models, shared by cells."""

    tier: str
    seeds: int
    adapters: dict[str, AdapterRef]
    tasks: dict[str, Task]
    _loaded: dict[str, Adapter | BaseException] = field(default_factory=dict)
    _data: dict[tuple[str, int], Data] = field(default_factory=dict)
    _baselines: dict[tuple[str, str, int], float] = field(default_factory=dict)
    _levels: dict[tuple[str, int], Level | None] = field(default_factory=dict)
    _trained: dict[tuple[str, str, int], Trained | BaseException] = field(default_factory=dict)
    _pending: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Where progress lines of long trainings go (the terminal at -v), and how often.
    progress: Callable[[str], None] | None = None
    progress_every: float = 5.0
    #: Under pytest-xdist, a directory shared by the workers: a file per model in training, left
    #: behind if the process dies in it (a segfault or abort in native code), so that the worker
    #: that takes over the cell's other checks reports the crash instead of crashing again.
    crash_dir: Path | None = None
    #: Seconds a cell may take (`--cell-timeout`; 0 = no limit): a model projected, after its first
    #: epochs, to train past it is stopped and its cell recorded as incomplete.
    cell_timeout: float = 0.0
    #: `--lr-sweep`: the multiples of each task's learning rate to train at, keeping the best (empty:
    #: the task's own rate only).
    lr_multiples: tuple[float, ...] = ()
    #: Stop a run whose fate is known (benchmarks/early_stop.py); `--no-early-stop` turns it off.
    early_stop: bool = True
    #: `--epochs-scale`: every budget's epoch cap times this.
    epochs_scale: float = 1.0

    def cells(self) -> list[Cell]:
        return [
            Cell(adapter, task.id, check.name, ref.trained_by)
            for adapter, ref in self.adapters.items()
            for task in self.tasks.values()
            for check in task.checks
        ]

    def expect(self, cells: list[Cell]) -> None:
        """Note which cells will run, so each group's models can be dropped after its last cell (an
        inference-only row's cells count for the row that trains its models too)."""
        self._pending = Counter((c.adapter, c.task) for c in cells)
        self._pending.update((c.trained_by, c.task) for c in cells if c.trained_by)

    def foregone(self, cell: Cell) -> str | None:
        """Why the cell's model is not trained at this tier (benchmarks/expectations.py `foregone`:
        a built-in's model whose every check is an expected failure never passed in calibration),
        or None; the early stop's switch, `--no-early-stop`, trains it too."""
        return foregone(cell.trained_by or cell.adapter, cell.task, self.tier) if self.early_stop else None

    def adapter(self, name: str) -> Adapter:
        if name not in self._loaded:
            try:
                self._loaded[name] = self.adapters[name].load()
            except ImportError as exc:
                self._loaded[name] = CellSkipped(f"{name}: its framework is not installed ({exc})")
            except DeviceUnavailable as exc:
                self._loaded[name] = CellSkipped(f"{name}: {exc}")
            except Exception as exc:
                self._loaded[name] = TrainingFailed(f"{name}: could not load the adapter: {type(exc).__name__}: {exc}")
        __tracebackhide__ = True
        loaded = self._loaded[name]
        if isinstance(loaded, BaseException):
            raise loaded
        return loaded

    def data(self, task: Task, seed: int) -> Data:
        key = (task.id, seed)
        if key not in self._data:
            self._data[key] = task.generate(np.random.default_rng(seed), self.tier)
        return self._data[key]

    def train(self, cell: Cell) -> list[Trained]:
        """The trained model of each seed, training those not yet cached; a failure is cached too,
        so every check of a broken cell reports it without training again."""
        __tracebackhide__ = True
        adapter = self.adapter(cell.adapter)
        task = self.tasks[cell.task]
        if task.spec.stateful and not adapter.capabilities.stateful_training:
            note = getattr(adapter, "capability_notes", {}).get("stateful_training")
            why = f" ({note})" if note else ""
            raise CellSkipped(f"{cell.adapter} does not declare stateful training{why}, which {task.id} needs")
        source = getattr(adapter, "trained_by", "")
        if source:
            return self._converted(cell, adapter, source)
        out = []
        started = time.perf_counter()
        for seed in range(self.seeds):
            key = (cell.adapter, cell.task, seed)
            if key not in self._trained:
                try:
                    with self._crash_marker(cell, seed):
                        spent = time.perf_counter() - started
                        self._trained[key] = self._fit(adapter, task, seed, spent)
                except TooSlow as exc:
                    self._trained[key] = CellIncomplete(f"{cell.adapter} on {task.id} (seed {seed}): {exc}")
                except TrainingFailed as exc:  # an earlier process crashed in it (_crash_marker)
                    self._trained[key] = exc
                except pytest.fail.Exception as exc:  # pytest-timeout's --cell-timeout, in signal mode
                    self._trained[key] = TrainingFailed(f"{cell.adapter} on {task.id} (seed {seed}): {exc}")
                except Exception as exc:
                    self._trained[key] = _failed(cell, seed, exc)
            trained = self._trained[key]
            if isinstance(trained, BaseException):
                raise trained
            out.append(trained)
        return out

    def _converted(self, cell: Cell, adapter: Adapter, source: str) -> list[Trained]:
        """An inference-only row's models: the source row's trained ones (trained here unless cached),
        each converted once (`adapter.convert`); a conversion that fails is cached and reported by
        every check of the cell."""
        if source not in self.adapters:  # the source row is not in the run: trained for this row only
            self.adapters[source] = resolve(source)
        trained = self.train(Cell(source, cell.task, cell.check))
        out = []
        for seed, t in enumerate(trained):
            key = (cell.adapter, cell.task, seed)
            if key not in self._trained:
                try:
                    model = adapter.convert(t.model)  # type: ignore[attr-defined]
                    self._trained[key] = dataclasses.replace(t, model=model, adapter=adapter)
                except Exception as exc:
                    self._trained[key] = _failed(cell, seed, exc, f"could not convert {source}'s trained model: ")
            converted = self._trained[key]
            if isinstance(converted, BaseException):
                raise converted
            out.append(converted)
        return out

    @contextlib.contextmanager
    def _crash_marker(self, cell: Cell, seed: int) -> Iterator[None]:
        if self.crash_dir is None:
            yield
            return
        marker = self.crash_dir / f"{cell.adapter}-{cell.task}-{seed}"
        if marker.exists():
            raise TrainingFailed(
                f"{cell.adapter} on {cell.task} (seed {seed}): the process died while training this model "
                f"({marker.read_text().strip()}): a hard crash, such as a segfault or an abort in native code; "
                "not trained again"
            )
        marker.write_text(f"pid {os.getpid()}, first for check {cell.check}\n")
        try:
            yield
        finally:  # any Python exception, timeouts included, is not a crash: they are cached above
            marker.unlink(missing_ok=True)

    def done(self, cell: Cell) -> None:
        for adapter in (cell.adapter, cell.trained_by) if cell.trained_by else (cell.adapter,):
            key = (adapter, cell.task)
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                for seed in range(self.seeds):
                    self._trained.pop((adapter, cell.task, seed), None)

    def baseline(self, task: Task, check: str, seed: int) -> float:
        key = (task.id, check, seed)
        if key not in self._baselines:
            try:
                self._baselines[key] = task.baseline(check, self.data(task, seed), self.tier)
            except CheckNotApplicable:
                self._baselines[key] = float("nan")
        return self._baselines[key]

    def level(self, task: Task, seed: int) -> Level | None:
        """The reference training loss of the diagnosis (benchmarks/diagnosis.py), cached."""
        key = (task.id, seed)
        if key not in self._levels:
            self._levels[key] = reference_level(task, self.data(task, seed), task.budget(self.tier).loss)
        return self._levels[key]

    def evaluate(self, cell: Cell, trained: list[Trained]) -> list[dict[str, Any]]:
        """One record per seed (outcome is filled in from pytest's report later)."""
        task = self.tasks[cell.task]
        records = []
        for seed, t in enumerate(trained):
            result = task.evaluate(cell.check, t.model, self.data(task, seed), self.tier)
            records.append(self.record(cell, seed, result, t))
        return records

    def template(self, cell: Cell) -> dict[str, Any]:
        """The record of a cell before any seed ran: what a skip or an error reports."""
        task = self.tasks[cell.task]
        check = task.check(cell.check)
        return new_record(
            cell.adapter, cell.task, cell.check, task.version, self.tier, check.metric, check.threshold,
            check.higher_is_better, capability=task.capability(cell.check),
        )  # fmt: skip

    def record(self, cell: Cell, seed: int, result: CheckResult | None, trained: Trained | None) -> dict[str, Any]:
        task = self.tasks[cell.task]
        rec = {**self.template(cell), "seed": seed}
        if result is not None:
            rec.update(
                passed=bool(result.passed),
                value=finite_or_none(result.value),
                baseline=finite_or_none(self.baseline(task, cell.check, seed)),
                detail=result.detail,
                extras={k: finite_or_none(v) for k, v in result.extras.items()},
                curve={k: [finite_or_none(v) for v in vs] for k, vs in result.curve.items()} if result.curve else None,
            )
            if result.threshold is not None:  # held to another gate (rounding): the record says which
                rec["threshold"] = result.threshold
        if trained is not None:
            log = trained.log
            rec.update(
                train_seconds=round(log.seconds, 4),
                epochs=log.epochs,
                stop_reason=log.stop_reason,
                time_to_criterion_s=None if log.time_to_criterion_s is None else round(log.time_to_criterion_s, 4),
                params=int(trained.model.n_params),
                loss_history=[finite_or_none(v) for v in log.loss_history],
                # str(): a framework's version object (torch's TorchVersion) cannot cross to xdist.
                versions={str(k): str(v) for k, v in trained.adapter.versions().items()},
                compute_path={str(k): str(v) for k, v in trained.adapter.compute_path().items()},
                lr_sweep=trained.sweep,
                restarts=trained.restarts,
            )
            if trained.extension:
                rec["extension"] = trained.extension
            if result is not None and not result.passed:
                check = task.check(cell.check)
                closing = still_closing(check, trained.extension, result.value)
                if closing:
                    rec["inconclusive"] = closing
                level = self.level(task, seed)
                findings = diagnose(log.loss_history, log.stop_reason, level)
                rec["diagnosis"] = [trained.early_stop] if trained.early_stop else [str(f) for f in findings]
                moved = not_closing(check, trained.extension, result.value)
                rec["diagnosis"] += settle(findings, trained, bool(self.lr_multiples), cell.adapter in BUILTINS, moved)
                if cell.adapter not in BUILTINS and self.seeds == 1:  # the built-ins are the calibration
                    hint = near_gate(self.tier, task.id, cell.check, rec["value"], rec["threshold"])
                    rec["diagnosis"] += [hint] if hint else []
        return rec


def _failed(cell: Cell, seed: int, exc: BaseException, what: str = "") -> TrainingFailed:
    """A model that could not be built, trained or converted, cached so that every check says so."""
    where = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return TrainingFailed(f"{cell.adapter} on {cell.task} (seed {seed}): {what}{where}")


def score(cell: Cell, matrix: Matrix, trained: list[Trained], request: pytest.FixtureRequest) -> None:
    """Score one check on every seed's model; fail with a message naming what went wrong."""
    try:
        records = matrix.evaluate(cell, trained)
    except CheckNotApplicable as exc:
        pytest.skip(f"{cell.adapter} cannot run {cell.task}.{cell.check}: {exc}")
    request.node.user_properties.append((RECORDS_PROPERTY, records))
    min_rate = request.config.getoption("min_pass_rate")
    if not verdict(records, min_rate):
        missed = [r for r in records if not r["passed"]]
        if all(r.get("inconclusive") for r in missed) and not request.node.get_closest_marker("xfail"):
            why = "; ".join(f"seed {r['seed']}: {r['inconclusive']}" for r in missed)
            request.node.user_properties.append((INCOMPLETE_PROPERTY, f"inconclusive: {why}"))
            pytest.skip(f"{cell.adapter} {cell.task}.{cell.check} inconclusive: {why}")
        pytest.fail(failure_message(records, min_rate), pytrace=False)
