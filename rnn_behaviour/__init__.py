"""rnn-behaviour: a pytest-based behavioural benchmark suite for recurrent neural networks.

Installed, the suite is this one package: `rnn_behaviour.adapters`, `.tasks`, `.reports` and
`.benchmarks` beside the plugin (`rnn_behaviour.plugin`) and the command (`rnn_behaviour.cli`), so
that none of its names can shadow, or be shadowed by, a user's own `tasks` or `reports` package.
In a checkout those four live at the repository's top (the layout the project was designed with)
and this package's path reaches them there; an installed wheel holds them inside it.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

#: The directory that holds adapters/, tasks/, reports/ and benchmarks/: the checkout's root, or
#: this package's own directory when installed from a wheel.
_HERE = Path(__file__).resolve().parent
if not (_HERE / "benchmarks").is_dir() and (_HERE.parent / "benchmarks" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))  # a checkout (or an editable install of one)
    HOME = _HERE.parent
    CHECKOUT: Path | None = _HERE.parent
else:
    HOME = _HERE
    CHECKOUT = None


def base_dir() -> Path:
    """What a relative --report-dir is from: the checkout's root, else the working directory."""
    return CHECKOUT if CHECKOUT is not None else Path.cwd()


#: The default --report-dir: reports/latest in a checkout; installed, a folder in the working
#: directory named for the suite (a project's own reports/ is left alone).
DEFAULT_REPORT_DIR = "reports/latest" if CHECKOUT is not None else "rnn-behaviour-report"
