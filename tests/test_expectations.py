"""Expectations: the built-ins' known limits stay with the built-ins (a user's row named `min-gru`
is no GRU of this suite), `--like` lends them to a user's row, and `--expectations FILE` declares a
user's own, with the reason; a bad file is one usage error line (exit 4) before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnn_behaviour.benchmarks.expectations import ExpectationsError, expected_failure, load

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR = str(ROOT / "benchmarks" / "test_behaviour.py")
GRU_LIMIT = ("sine_rollout", "rollout", "smoke")
RNN_LIMIT = ("adding", "mse", "smoke")


def test_a_users_row_named_like_a_builtin_inherits_none_of_its_limits() -> None:
    assert "GRU's closed-loop forecast drifts" in str(expected_failure("torch-gru", *GRU_LIMIT))
    assert "plain tanh RNN" in str(expected_failure("keras-rnn", *RNN_LIMIT))
    for name in ("min-gru", "my-rnn", "torch-gru2"):
        assert expected_failure(name, *GRU_LIMIT) is None and expected_failure(name, *RNN_LIMIT) is None
    # A limit of the task itself (pattern "*") is every row's, and control checks stay expected.
    assert "no training data beyond length 20" in str(expected_failure("min-gru", "count_steps", "longer", "smoke"))


def test_like_lends_a_builtins_limits_to_a_users_row() -> None:
    assert "GRU's closed-loop" in str(expected_failure("min-gru", *GRU_LIMIT, like="keras-gru"))
    assert expected_failure("min-gru", *RNN_LIMIT, like="keras-gru") is None
    assert "torch.nn.RNN" in str(expected_failure("mine", "sine_rollout", "one_step", "smoke", like="torch-rnn"))


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_declared_limit_is_the_users_with_their_reason(tmp_path: Path) -> None:
    text = '[[expectation]]\nadapter = "min-gru"\ntask = "sine_rollout"\ncheck = "rollout"\n'
    toml = _file(
        tmp_path, "mine.toml", text + 'reason = "the log-space scan drifts in closed loop"\ntiers = ["smoke"]\n'
    )
    declared = load(toml, ["min-gru", "torch-gru"])
    assert expected_failure("min-gru", *GRU_LIMIT, declared=declared) == "the log-space scan drifts in closed loop"
    assert expected_failure("min-gru", "sine_rollout", "rollout", "standard", declared=declared) is None
    entry = {"adapter": "min-gru", "task": "adding", "check": "mse", "reason": "too slow to learn"}
    as_json = load(_file(tmp_path, "mine.json", json.dumps([entry])), ["min-gru"])
    assert expected_failure("min-gru", *RNN_LIMIT, declared=as_json) == "too slow to learn"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.toml", "[[expectation]\n", "not valid TOML"),
        ("a.json", "{", "not valid JSON"),
        ("a.json", "[]", "no entries"),
        ("a.json", '{"expectations": []}', "unknown key(s) ['expectations']"),
        ("a.json", '[{"adapter": "mine", "task": "adding", "check": "mse"}]', "entry 1 lacks reason"),
        ("a.json", '[{"adapter": "mine", "task": "adding", "check": "mse", "reason": " "}]', "must be non-empty"),
        ("a.json", '[{"adapter": "yours", "task": "adding", "check": "mse", "reason": "r"}]', "'yours' is no row"),
        ("a.json", '[{"adapter": "mine", "task": "adder", "check": "mse", "reason": "r"}]', "no task 'adder'"),
        ("a.json", '[{"adapter": "mine", "task": "adding", "check": "acc", "reason": "r"}]', "has no check 'acc'"),
        ("a.json", '[{"adapter": "mine", "task": "adding", "check": "mse", "reason": "r", "tiers": ["fast"]}]',
         "tiers must be"),
        ("a.json", '[{"adapter": "mine", "task": "adding", "check": "mse", "reason": "r", "why": 1}]',
         "unknown field(s) why"),
    ],
)  # fmt: skip
def test_a_bad_file_says_what_is_wrong_in_one_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(ExpectationsError) as caught:
        load(_file(tmp_path, name, text), ["mine"])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ExpectationsError, match="cannot read"):
        load(tmp_path / "missing.toml", ["mine"])


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        BEHAVIOUR, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "--report-dir",
        str(pytester.path / "report"), "-p", "no:cacheprovider", "--tier", "smoke", *args,
    )  # fmt: skip


def test_the_plugin_xfails_what_the_file_declares_with_the_reason(pytester: pytest.Pytester, tmp_path: Path) -> None:
    declared = _file(tmp_path, "mine.toml", '[[expectation]]\nadapter = "forgetful"\ntask = "count_steps"\n'
                     'check = "carry_state"\nreason = "our module drops the state on purpose"\n')  # fmt: skip
    result = _run(pytester, "--adapter", "forgetful=tests.fakes:ForgetfulState", "--expectations", str(declared),
                  "--like", "forgetful=torch-lstm", "-k", "forgetful-count_steps", "-rx")  # fmt: skip
    result.assert_outcomes(passed=2, failed=1, xfailed=1, xpassed=1)
    assert "our module drops the state on purpose" in result.stdout.str()
    records = json.loads((pytester.path / "report" / "results.json").read_text())["results"]
    carry = next(r for r in records if r["check"] == "carry_state")
    assert carry["outcome"] == "xfailed" and carry["reason"] == "our module drops the state on purpose"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expectations", "{bad}"], "--expectations {bad}: entry 1 lacks check"),
        (["--like", "forgetful"], "--like forgetful: expected NAME=BUILTIN"),
        (["--like", "torch-gru=torch-lstm"], "'torch-gru' is no row of yours"),
        (["--like", "forgetful=torch-mingru"], "'torch-mingru' is no built-in"),
    ],
)
def test_bad_options_are_one_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, args: list[str], message: str
) -> None:
    bad = _file(tmp_path, "bad.json", '[{"adapter": "forgetful", "task": "adding", "reason": "r"}]')
    args = [a.replace("{bad}", str(bad)) for a in args]
    result = _run(pytester, "--adapter", "forgetful=tests.fakes:ForgetfulState", *args, "-k", "forgetful-count_steps")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str().strip()
    assert message.replace("{bad}", str(bad)) in err and "Traceback" not in err, err
