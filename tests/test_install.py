"""The suite installed as a user installs it (issue 23): a wheel built from this checkout, pip-installed
into a scratch virtual environment that already holds the lock's torch and no TensorFlow, run from a
project directory with its own `tasks/`, `reports/`, `adapters/` and `benchmarks/` packages.

The scratch environment is the lock's packages linked in (TensorFlow and Keras left out), so pip
resolves every requirement against them offline (`--no-index`): it must install the suite alone and
leave torch as it found it. One test, run once: every step after the install needs the one before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the scratch environment does not get from the lock: TensorFlow and Keras (the user has none),
#: the packaging tools a venv brings its own of, and any install of this suite.
LEFT_OUT = ("tensorflow", "keras", "tensorboard", "tf_keras", "pip", "setuptools", "pkg_resources", "_distutils_hack",
            "distutils-precedence.pth", "__editable__", "rnn_behaviour", "__pycache__")  # fmt: skip
#: Each package raises on import: a suite that imports any of them instead of its own fails loudly.
SHADOWS = ("tasks", "reports", "adapters", "benchmarks")
ROW = "lstm_loop-count_steps"


def sh(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def checked(command: list[str], cwd: Path) -> str:
    done = sh(command, cwd)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def source_copy(target: Path) -> Path:
    """The checkout's files (tracked and not ignored), so that building leaves the checkout alone."""
    listed = sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def scratch_env(where: Path) -> Path:
    """A venv holding the lock's packages (its torch included) but not TensorFlow, Keras or the suite."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    python = where / "bin" / "python"
    site = Path(
        checked([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], where).strip()
    )
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(LEFT_OUT) and not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    return python


def torch_fingerprint(python: Path) -> dict[str, str]:
    """Where torch is, what its RECORD says, and when its files were written: any reinstall moves it."""
    code = (
        "import importlib.metadata as m, json, os, torch; d = m.distribution('torch'); "
        "rec = d.read_text('RECORD'); f = torch.__file__; "
        "print(json.dumps({'version': d.version, 'file': f, 'mtime': str(os.stat(f).st_mtime_ns), 'record': rec}))"
    )
    found = json.loads(checked([str(python), "-c", code], python.parent))
    found["record"] = hashlib.sha256(found["record"].encode()).hexdigest()
    return found


def user_project(where: Path) -> Path:
    """A project with its own packages named like the suite's, and an LSTM module of its own."""
    for name in SHADOWS:
        (where / name).mkdir(parents=True)
        (where / name / "__init__.py").write_text(f"raise ImportError('the project\\'s own {name} was imported')\n")
    shutil.copy(ROOT / "examples" / "lstm_loop.py", where / "my_rnn.py")
    (where / "test_mine.py").write_text("def test_mine():\n    assert 1 + 1 == 2\n")
    return where


def records(path: Path) -> dict[tuple[str, str, str], dict]:
    payload = json.loads(path.read_text())
    return {(r["adapter"], r["task"], r["check"]): r for r in payload["results"]}


@pytest.mark.timeout(900)
def test_the_wheel_installs_beside_a_users_torch_and_runs_from_their_project(tmp_path: Path) -> None:
    source = source_copy(tmp_path / "src")
    checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "./src"],
            tmp_path)  # fmt: skip
    wheel = next((tmp_path / "dist").glob("rnn_behaviour-*.whl"))
    python = scratch_env(tmp_path / "venv")
    before = torch_fingerprint(python)
    pip = checked([str(python), "-m", "pip", "install", "--no-index", str(wheel)], tmp_path)
    assert "Successfully installed rnn-behaviour" in pip and "torch" not in pip.split("Installing collected")[-1]
    assert "Uninstalling" not in pip
    assert torch_fingerprint(python) == before, "pip reinstalled, upgraded or moved torch"

    project = user_project(tmp_path / "project")
    command = tmp_path / "venv" / "bin" / "rnn-behaviour"
    spec = ["--adapter", "torch:my_rnn:lstm_loop", "--tier", "smoke"]
    run = sh(
        [str(command), "run", *spec, "-k", f"{ROW} or keras-lstm-count_steps", "-q", "--report-dir", "out"], project
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    installed = records(project / "out" / "results.json")
    keras = [r for key, r in installed.items() if key[0] == "keras-lstm"]
    assert keras and all(r["outcome"] == "skipped" and "not installed" in r["reason"] for r in keras), keras

    # The checkout's own command on the same row: the same records.
    env = {**os.environ, "PYTHONPATH": str(project)}
    here = sh([sys.executable, "-m", "pytest", "benchmarks", *spec, "-k", ROW, "-q",
               "--report-dir", str(tmp_path / "checkout")], ROOT, env)  # fmt: skip
    assert here.returncode == 0, here.stdout[-3000:]
    same = sh([sys.executable, str(ROOT / "scripts" / "same_results.py"), str(tmp_path / "checkout" / "results.json"),
               str(project / "out" / "results.json")], ROOT)  # fmt: skip
    assert same.returncode == 0 and "5/5 shared records identical" in same.stdout, same.stdout

    # The same exit codes: a usage error is 4 before anything trains, one line naming it.
    for bad, says in ((["--adapter", "torch:nope:x"], "module 'nope' not found"), (["--device", "cuda"], "cuda")):
        done = sh([str(command), "run", *bad, "-k", ROW, "-q"], project)
        assert done.returncode == 4 and says in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr

    # The plugin in the project's own pytest, next to its own test.
    own = sh([str(python), "-m", "pytest", "-p", "rnn_behaviour.plugin", "test_mine.py", "--pyargs",
              "rnn_behaviour.benchmarks", *spec, "-k", f"test_mine or {ROW}-fit", "-q"], project)  # fmt: skip
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout[-3000:] + own.stderr[-2000:]
    assert records(project / "rnn-behaviour-report" / "results.json")[("lstm_loop", "count_steps", "fit")]["passed"]

    # Editable, for development: the code imported is the source tree's.
    checked([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(source)],
            tmp_path)  # fmt: skip
    where = checked([str(python), "-c", "import rnn_behaviour.tasks as t; print(t.__file__)"], project)
    assert Path(where.strip()) == source / "tasks" / "__init__.py"
    assert torch_fingerprint(python) == before
