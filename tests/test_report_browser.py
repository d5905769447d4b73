"""report.html in a real browser (headless Chromium): the tables and every figure render, offline.

Skipped with the reason when Chromium is not installed, except under CI (CI=true), where a
missing browser fails: `.ci/run` installs the Debian package `chromium`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rnn_behaviour.reports import render
from rnn_behaviour.reports.results import load

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_small.json"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
]
#: Run on the `load` event of a copy of the page: what rendered, as JSON in <pre id="probe">.
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var tables = Array.from(document.querySelectorAll("table"));
  var probe = {
    images: images.length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
      .map(function (i) { return i.alt; }),
    widths: images.map(function (i) { return i.naturalWidth; }),
    tables: tables.length,
    emptyTables: tables.filter(function (t) { return t.getBoundingClientRect().height < 10; }).length,
    rows: document.querySelectorAll("table tbody tr").length,
    fetched: performance.getEntriesByType("resource").map(function (e) { return e.name; })
      .filter(function (name) { return name.indexOf("data:") !== 0; })
  };
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(probe);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but Chromium is not installed (.ci/run installs the Debian package `chromium`)")
    pytest.skip("Chromium is not installed (apt-get install -y chromium); the browser check of report.html needs it")


def _browser(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(tmp_path)},
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    render.write(load(FIXTURE), directory)
    return directory / "report.html"


def test_report_html_renders_tables_and_images_in_chromium(page: Path, tmp_path: Path) -> None:
    binary = chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</head>", PROBE + "</head>", 1))
    dom = _browser(binary, tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout)
    assert found, f"the probe did not run; chromium exited {dom.returncode}: {dom.stderr[-2000:]}"
    probe = json.loads(found.group(1))
    assert probe["fetched"] == [], "the page must be self-contained"
    assert probe["images"] == 4 and probe["broken"] == [], probe
    assert min(probe["widths"]) > 100, probe
    assert probe["tables"] >= 4 and probe["emptyTables"] == 0 and probe["rows"] == 11 + 20, (
        probe
    )  # pivot rows (the last: training time) + one per cell

    shot = tmp_path / "shot.png"
    run = _browser(
        binary, tmp_path, "--enable-logging=stderr", "--v=0", "--window-size=1280,2400", f"--screenshot={shot}",
        page.as_uri(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    # The page has no script: any console message (an error, a blocked resource) is a problem.
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    from PIL import Image

    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1280, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"


def test_a_missing_browser_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but Chromium is not installed"):
        chromium()
