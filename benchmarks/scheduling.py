"""How pytest-xdist hands out the matrix: a task's checks as one work unit, longest first.

The checks of one (adapter, task) share one trained model, so they must run on one worker, or
each worker trains it again. xdist's own `--dist loadgroup` did that through the `xdist_group`
mark, by appending `@group` to each node id; pytest 9.2 made node ids structured and the
append no longer takes (pytest-dev/pytest-xdist#1386), so every group was silently split and
trained twice under `-n 2`. This scheduler finds a cell's group from its id instead, on the
controller, whatever pytest does to node ids.

Units are handed out longest first (by the durations pytest-split stores in `.test_durations`),
so two workers finish close together instead of one starting a long training at the end. (xdist
gives a worker its next unit once it has two items or fewer left, so a worker may hold two.)
"""

from __future__ import annotations

import json
import statistics
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScopeScheduling

from rnn_behaviour.benchmarks.matrix import Cell


def param_id(nodeid: str) -> str:
    """The parametrisation id of a node id (`...::test_check[torch-lstm-adding-mse]` gives
    `torch-lstm-adding-mse`), without the `@group` suffix older xdist appends; "" if none."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        nodeid = nodeid[: nodeid.rfind("@")]
    name = nodeid.rpartition("::")[2]
    if not name.endswith("]") or "[" not in name:
        return ""
    return name[name.index("[") + 1 : -1]


def bare(nodeid: str) -> str:
    """A node id without the `@group` suffix, as pytest-split stores it."""
    return nodeid[: nodeid.rfind("@")] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid


def read_durations(path: Path) -> dict[str, float]:
    """pytest-split's stored durations ({node id: seconds}); empty if missing or unreadable (the
    order of the units is then the collection order, which is only slower, never wrong)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


class CellScheduling(LoadScopeScheduling):
    """`LoadScopeScheduling` whose scope of a behaviour cell is its (adapter, task) group; any
    other item is a unit of its own. `cells` maps a cell's id to the cell."""

    def __init__(
        self, config: Any, log: Any, cells: Mapping[str, Cell], durations: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(config, log)
        self.cells = dict(cells)
        self.durations = dict(durations or {})
        self.median = statistics.median(self.durations.values()) if self.durations else 1.0
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        cell = self.cells.get(param_id(nodeid))
        return f"cell:{cell.group}" if cell is not None else bare(nodeid)

    def _reschedule(self, node: Any) -> None:
        """LoadScopeScheduling's, topped up to two pending items: a worker runs an item only once it
        knows the next one (or is told to shut down), so a worker handed a unit of one item, which
        happens after a crash, would otherwise wait for ever. A replacement worker whose collection
        has not arrived yet gets nothing (xdist would raise KeyError: pytest-xdist#1189);
        `schedule()` serves it once the collection is in."""
        if node not in self.registered_collections:
            return
        super()._reschedule(node)
        while not node.shutting_down and self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            self._assign_work_unit(node)
        if not node.shutting_down and not self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            node.shutdown()  # what is left to it runs, and then it stops

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the work queue is complete at the first assignment
            self._ordered = True
            queue: OrderedDict[str, dict[str, bool]] = self.workqueue
            units = sorted(queue.items(), key=lambda unit: -self.cost(unit[1]))
            queue.clear()
            queue.update(units)
        super()._assign_work_unit(node)

    def remove_node(self, node: Any) -> str | None:
        """LoadScopeScheduling's, except that the item a crashed worker was running is not run
        again: xdist reports it as crashed, and LoadScopeScheduling would put it back with the
        rest of its unit, crash the next worker the same way and report it once per crash. The
        rest of the unit does run again; a crashed training is not repeated (`Matrix.crash_dir`)."""
        workload = self.assigned_work.pop(node)
        pending = [(unit, nodeid) for unit in workload.values() for nodeid, done in unit.items() if not done]
        if not pending:
            return None
        unit, crashitem = pending[0]
        unit[crashitem] = True
        self.workqueue.update((scope, unit) for scope, unit in workload.items() if not all(unit.values()))
        for other in self.assigned_work:
            self._reschedule(other)
        return crashitem

    def cost(self, unit: Mapping[str, bool]) -> float:
        """Expected seconds of a unit: the stored durations of its items. A cell never timed (an
        adapter brought with --adapter) counts as the mean of the same check of the adapters
        that were; anything else never timed as the median item. sorted() is stable, so equal
        costs keep xdist's order (by item count, with its default --loadscope-reorder)."""
        return sum(self.item_cost(nodeid) for nodeid in unit)

    def item_cost(self, nodeid: str) -> float:
        stored = self.durations.get(bare(nodeid))
        if stored is not None:
            return stored
        cell = self.cells.get(param_id(nodeid))
        if cell is None:
            return self.median
        same_check = [
            seconds
            for other, seconds in self.durations.items()
            if param_id(other).endswith(f"-{cell.task}-{cell.check}")
        ]
        return statistics.fmean(same_check) if same_check else self.median
