"""report.md and report.html of a run: the pivot, a table per task and the plots, self-contained.

The HTML is rendered from `templates/report.html.j2` (Jinja2, autoescaped); every figure is a PNG
inlined as base64, so the page needs no server, no CDN and no other file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rnn_behaviour.reports import plots, profile, table
from rnn_behaviour.reports.cells import plain_records
from rnn_behaviour.reports.document import failures, markdown, pivot_table, profile_table, run_summary, task_tables
from rnn_behaviour.reports.results import write_text_atomic

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Figure:
    title: str
    caption: str
    png: bytes

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


#: The report's figures in page order: (title, caption, plot function). Add one here.
FIGURES: tuple[tuple[str, str, Callable[[list[dict[str, Any]]], bytes | None]], ...] = (
    ("verdicts", "Pass/fail of every cell (k/N seeds passing when N > 1).", plots.heatmap),
    (
        "length generalisation",
        f"MSE vs sequence length per adapter, trained on length {plots.TRAIN_LENGTH} (seed 000); "
        "first seed bold, other seeds thin.",
        plots.length_curves,
    ),
    (
        "memory curves",
        "The memory-length and state-tracking tasks' curves side by side (first seed): recall vs delay, "
        "accuracy vs length.",
        profile.memory_curves,
    ),
    ("sine rollout", "Autoregressive rollout from 20 true values vs the true sine (seed 003).", plots.sine_rollout),
    ("loss curves", "Training loss per epoch (first seed bold).", plots.loss_curves),
    ("speed", "Median time per speed check (lower is better); labels give the FLOP rate.", plots.speed_bars),
)


def _figure(title: str, caption: str, png: bytes | None) -> Figure | None:
    return Figure(title, caption, png) if png else None


def figures(records: list[dict[str, Any]]) -> list[Figure]:
    """The figures the run has data for; a plot with nothing to draw is left out."""
    out = []
    for title, caption, draw in FIGURES:
        png = draw(records)
        if png:
            out.append(Figure(title, caption, png))
    return out


@cache
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(template: str, **context: Any) -> str:
    return str(environment().get_template(template).render(**context))


def html(payload: dict[str, Any]) -> str:
    """report.html: what report.md says, plus the figures, in one self-contained page; each
    failure's message is collapsed (<details>), ANSI escape codes are left out."""
    payload = plain_records(payload)
    records = payload["results"]
    return render_html(
        "report.html.j2",
        run=payload["run"],
        summary=run_summary(payload["run"]),
        pivot=pivot_table(records),
        capabilities=profile_table(records),
        radar=_figure(
            "capability profile", "Share of judged checks passed per capability, per adapter.", profile.radar(records)
        ),
        failures=failures(records),
        skipped=table.reason_groups(records, ["skipped"]),
        speed_html=table.speed_table(records, tablefmt="html"),  # tabulate escapes the cells
        lessons=table.lessons(records),
        better=table.better_than_expected(records),
        figures=figures(records),
        tasks=task_tables(records),
    )


def write(payload: dict[str, Any], directory: Path) -> list[Path]:
    """Write report.md and report.html into `directory` (atomically); the paths written."""
    md, page = directory / "report.md", directory / "report.html"
    write_text_atomic(md, markdown(payload))
    write_text_atomic(page, html(payload))
    return [md, page]
