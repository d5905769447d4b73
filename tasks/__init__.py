"""Task registry: one line per task; ids, parametrisation and report rows derive from it."""

from __future__ import annotations

import difflib

from tasks.base import TIERS, Task, TaskError
from tasks.counting import CountLast, CountSteps

TASKS: dict[str, Task] = {task.id: task for task in (CountLast(), CountSteps())}


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        close = difflib.get_close_matches(task_id, TASKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TaskError(f"unknown task {task_id!r}{hint} (known: {', '.join(TASKS)})") from None


__all__ = ["TASKS", "TIERS", "Task", "TaskError", "get_task"]
