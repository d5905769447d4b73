"""Task registry: one line per task; ids, parametrisation and report rows derive from it."""

from __future__ import annotations

import difflib

from rnn_behaviour.tasks.adjacent import AdjacentSum
from rnn_behaviour.tasks.alphabet import (
    AlphabetFeatures,
    AlphabetOneChar,
    AlphabetStateful,
    AlphabetTimesteps,
    AlphabetVarlen,
)
from rnn_behaviour.tasks.base import TIERS, Task, TaskError
from rnn_behaviour.tasks.counting import CountLast, CountSteps
from rnn_behaviour.tasks.dyck import Dyck1
from rnn_behaviour.tasks.longrange import Adding, CopyMemory
from rnn_behaviour.tasks.nback import NBack
from rnn_behaviour.tasks.selective_copy import SelectiveCopy
from rnn_behaviour.tasks.sine import SineRollout
from rnn_behaviour.tasks.streams import MovingAverageStateful, Streams
from rnn_behaviour.tasks.tracking import CycleNavigation, Parity

TASKS: dict[str, Task] = {
    task.id: task
    for task in (
        CountLast(),
        CountSteps(),
        AlphabetOneChar(),
        AlphabetFeatures(),
        AlphabetTimesteps(),
        AlphabetStateful(),
        AlphabetVarlen(),
        AdjacentSum(),
        MovingAverageStateful(),
        SineRollout(),
        Streams(),
        Adding(),
        NBack(),
        CopyMemory(),
        Parity(),
        SelectiveCopy(),
        Dyck1(),
        CycleNavigation(),
    )
}

#: Implemented and proven by tests/ (oracle and null controls), but not in the matrix until a
#: budget that learns it reliably is calibrated; `pytest benchmarks --pending` runs them.
#: None at present (cycle_navigation left it with `restarts`, issue 16).
PENDING: dict[str, Task] = {}


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        close = difflib.get_close_matches(task_id, TASKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TaskError(f"unknown task {task_id!r}{hint} (known: {', '.join(TASKS)})") from None


__all__ = ["PENDING", "TASKS", "TIERS", "Task", "TaskError", "get_task"]
