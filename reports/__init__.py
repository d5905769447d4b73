"""Reports: pure functions over the results JSON (schema, atomic writes, tables, report pages,
compare, leaderboard, merge). No ML framework; matplotlib and Jinja2 load only when a page is drawn."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Set (to "1") by `benchmarks/run.py` for its matrix run: that run writes results.json but not its
#: report, which the report of the matrix and speed items together would replace (~6 s for 18 rows).
REPORTS_LATER = "RNN_BEHAVIOUR_REPORTS_LATER"


def write_reports(payload: dict[str, Any], directory: Path, log: Callable[[str], Any] | None = None) -> bool:
    """Write report.md and report.html next to results.json; True when both were written.

    Never raises: a report that cannot be drawn must not cost the run its results.json (already
    written), so the problem goes to `log` (stderr by default) as one line and False comes back."""
    try:
        from rnn_behaviour.reports import render

        render.write(payload, Path(directory))
    except Exception as exc:
        (log or (lambda line: print(line, file=sys.stderr)))(
            f"rnn-behaviour: report.md/report.html not written ({type(exc).__name__}: {exc}); "
            f"results.json is intact, re-draw with: python -m reports report {Path(directory) / 'results.json'} "
            f"-o {directory}"
        )
        return False
    return True
