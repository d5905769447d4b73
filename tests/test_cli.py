"""The `rnn-behaviour` command and what it checks of the environment before anything runs (issue 23):
the report tools under its name, the GPU command's refusal without a GPU, one line for what is
missing, and records that carry no machine paths under -n. The installed wheel end to end is
tests/test_install.py."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from rnn_behaviour import HOME, cli, environment, gpu, invoke
from rnn_behaviour.benchmarks.collector import shareable

FIXTURE = Path(__file__).parent / "fixtures" / "results_small.json"


def test_the_report_tools_answer_under_the_commands_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", str(FIXTURE), str(FIXTURE)]) == 0
    assert cli.main(["merge", str(FIXTURE / "nothing.json"), "-o", "x.json"]) == 2
    assert capsys.readouterr().err.startswith("rnn-behaviour merge: error: ")


def test_an_unknown_command_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bnech"]) == 2
    assert "unknown command 'bnech'; choose one of run, bench, smoke, gpu, report" in capsys.readouterr().err
    assert cli.main(["--version"]) == 0 and capsys.readouterr().out.startswith("rnn-behaviour 0.")


def test_the_pytest_command_names_the_suites_files_from_anywhere() -> None:
    line = invoke.pytest_command(["-k", "benchmarks", "--tier", "smoke"])
    assert line[line.index("-c") + 1] == str(invoke.INI) and line[line.index("--rootdir") + 1] == str(HOME)
    assert str(HOME / "benchmarks") in line and line[-4:] == ["-k", "benchmarks", "--tier", "smoke"]
    named = invoke.pytest_command(["benchmarks/test_conformance.py::test_conformance"])
    assert named[-1] == f"{HOME}/benchmarks/test_conformance.py::test_conformance"
    assert str(HOME / "benchmarks") not in named


def test_an_old_pytest_is_one_line_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment.metadata, "version", lambda name: "8.3.5")
    assert environment.pytest_problem() == (
        "rnn-behaviour needs pytest >= 9, this environment has pytest 8.3.5: pip install 'pytest>=9'"
    )
    assert cli.main(["run", "-q"]) == 4

    def absent(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(environment.metadata, "version", absent)
    assert "has none: pip install 'pytest>=9'" in (environment.pytest_problem() or "")


def test_a_run_started_beside_another_copy_of_the_suite_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed suite run from inside a checkout: pytest would import the checkout's
    rnn_behaviour and collect the installed benchmarks ("import file mismatch"); said first, exit 4."""
    installed = tmp_path / "site-packages" / "rnn_behaviour"
    checkout = tmp_path / "checkout"
    for package in (installed, checkout / "rnn_behaviour"):
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
    line = environment.shadow_problem(checkout, installed)
    assert line and str(checkout / "rnn_behaviour") in line and str(installed) in line
    assert "run it from another directory" in line
    assert environment.shadow_problem(tmp_path, installed) is None  # no copy here
    assert environment.shadow_problem(installed.parent, installed) is None  # the installed copy itself
    strict = tmp_path / "strict"  # a strict editable install: a directory of links to the checkout's files
    (strict / "rnn_behaviour").mkdir(parents=True)
    (strict / "rnn_behaviour" / "__init__.py").symlink_to(checkout / "rnn_behaviour" / "__init__.py")
    assert environment.shadow_problem(checkout, strict / "rnn_behaviour") is None
    monkeypatch.chdir(checkout)  # this package's own directory is not the checkout's copy

    def started(*args: object) -> None:
        raise AssertionError(f"pytest was started: {args}")

    monkeypatch.setattr(cli.os, "execv", started)
    assert cli.main(["run", "-q"]) == 4
    assert "another copy of the suite" in capsys.readouterr().err


def test_no_framework_is_one_line_unless_a_row_brings_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "has", lambda module: False)
    line = environment.framework_problem(["torch:mypkg.rnn:mine"])
    assert line and "none of PyTorch, TensorFlow and JAX is installed" in line and "rnn-behaviour[torch]" in line
    assert environment.framework_problem(["mine=mypkg.adapters:JaxAdapter"]) is None
    assert environment.framework_problem(["jax:mypkg.rnn:mine"]) is not None  # a jax: row needs jax
    monkeypatch.setattr(environment, "has", lambda module: module == "tensorflow")
    assert environment.framework_problem([]) is None
    monkeypatch.setattr(environment, "has", lambda module: module == "jax")  # JAX alone is a framework
    assert environment.framework_problem(["jax:mypkg.rnn:mine"]) is None


def test_cuda_asked_of_a_torch_without_a_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    line = environment.device_problem("cuda")
    assert line and f"torch {torch.__version__}" in line and "sees no CUDA device" in line
    assert environment.device_problem("cpu") is None and environment.accelerator("cpu") is None
    assert gpu.main([]) == 4 and "sees no CUDA device" in capsys.readouterr().err


def test_the_gpu_steps_select_the_torch_rows_and_the_users_own() -> None:
    assert gpu.rows([]) == ["-k", "torch-"]
    given = ["--adapter", "torch:mypkg.rnn:my_lstm", "--adapter=mine=torch:pkg:f", "-q"]
    assert gpu.rows(given) == ["-k", "torch- or my_lstm- or mine-"]


def test_a_record_under_xdist_carries_no_worker_line_or_interpreter_path() -> None:
    longrepr = (
        "[gw1] linux -- Python 3.11.7 /home/someone/project/.venv/bin/python\n"
        "\x1b[31mmine failed count_steps.fit: passed 0/1 seeds\x1b[0m\n  seed 0: mse = 3\n"
    )
    assert shareable(longrepr) == "mine failed count_steps.fit: passed 0/1 seeds\n  seed 0: mse = 3"
    assert shareable("mine failed count_steps.fit\n") == "mine failed count_steps.fit"
