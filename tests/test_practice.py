"""`aiprep practice` writes a starter; `aiprep verify` checks an attempt with the same checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep.cli import cli
from aiprep.store import Store
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
QID = "beta.mean_estimate"

GOOD = "def estimate_mean(samples, *, trim=0.0):\n    return sum(samples) / len(samples)\n"
WRONG = "def estimate_mean(samples, *, trim=0.0):\n    return max(samples)\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), *args])
    return result.exit_code, result.output


def test_practice_writes_a_starter_with_stubs_only(tmp_path: Path) -> None:
    path = tmp_path / "attempt.py"
    code, out = invoke("practice", QID, "-o", str(path))
    assert code == 0, out
    assert f"aiprep verify {QID} {path}" in out
    text = path.read_text()
    assert "def estimate_mean(samples: list[float], *, trim: float = 0.0) -> float:" in text
    assert "The mean of ``samples``" in text  # the docstring is kept
    assert 'raise NotImplementedError("estimate_mean: your code here")' in text
    for kept_out in ("def check", "def make_data", "sorted(samples)", "SolutionReport"):
        assert kept_out not in text
    # never overwrites without --force
    path.write_text("my work")
    code, out = invoke("practice", QID, "-o", str(path))
    assert code == 2 and "--force" in out
    assert path.read_text() == "my work"
    assert invoke("practice", QID, "-o", str(path), "--force")[0] == 0
    assert "NotImplementedError" in path.read_text()


def test_practice_refuses_questions_without_code() -> None:
    code, out = invoke("practice", "alpha.clipping")
    assert code == 2 and "no code to practise" in out


def test_the_starter_fails_and_a_correct_attempt_passes_and_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "attempt.py"
    invoke("practice", QID, "-o", str(path))
    code, out = invoke("verify", QID, str(path))
    assert code == 1
    assert "attempt.py:" in out and "NotImplementedError" in out
    with Store() as store:
        assert store.card(QID) is None
    path.write_text(GOOD)
    code, out = invoke("verify", QID, str(path))
    assert code == 0, out
    assert "PASS" in out and "1/1 checks passed" in out
    assert "recorded a good review" in out
    with Store() as store:
        assert [(r.question_id, r.rating, r.source) for r in store.reviews()] == [
            (QID, 3, "verify")
        ]


def test_a_wrong_attempt_fails_with_value_threshold_and_detail(tmp_path: Path) -> None:
    path = tmp_path / "attempt.py"
    path.write_text(WRONG)
    code, out = invoke("verify", QID, str(path))
    assert code == 1
    assert "FAIL" in out and "abs error vs true mean 3.0" in out and "<= 0.1" in out
    assert "got " in out  # the check's detail: what the attempt returned
    with Store() as store:  # the learner got it wrong: one review, rated Again
        assert [(r.rating, r.source) for r in store.reviews()] == [(1, "verify")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "import numpy as np\n\ndef estimate_mean(xs):\n    return 0.0\n",
            "attempt.py:3: estimate_mean(xs) does not match the question's "
            "estimate_mean(samples, *, trim=0.0)",
        ),
        ("def mean(samples):\n    return 0.0\n", "attempt.py:1: defines no 'estimate_mean'"),
        ("import not_a_module_anywhere\n", "attempt.py:1: ModuleNotFoundError"),
        ("def estimate_mean(samples, *, trim=0.0)\n    return 1\n", "attempt.py:1: SyntaxError"),
        (
            "def estimate_mean(samples, *, trim=0.0):\n    return samples[0] / 0\n",
            "attempt.py:2: ZeroDivisionError: float division by zero",
        ),
    ],
    ids=["signature", "missing", "import", "syntax", "runtime"],
)
def test_a_broken_attempt_is_one_readable_line(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "attempt.py"
    path.write_text(source)
    code, out = invoke("verify", QID, str(path))
    assert code == 1
    error_line = next(line for line in out.splitlines() if line.startswith("error:"))
    assert expected in error_line, out
    # A bug met while checking shows the traceback too; a file that does not load needs none.
    assert ("Traceback" in out) == ("ZeroDivisionError" in expected)


def test_a_hanging_attempt_times_out(tmp_path: Path) -> None:
    path = tmp_path / "attempt.py"
    path.write_text("def estimate_mean(samples, *, trim=0.0):\n    while True:\n        pass\n")
    start = time.monotonic()
    code, out = invoke("verify", QID, str(path), "--timeout", "2")
    assert code == 1
    assert "timed out after 2 s" in out
    assert time.monotonic() - start < 30


def test_verify_json_reports_the_attempt(tmp_path: Path) -> None:
    import json

    path = tmp_path / "attempt.py"
    path.write_text(GOOD)
    code, out = invoke("verify", QID, str(path), "--json")
    assert code == 0
    data = json.loads(out[out.index("{") :])
    assert data["passed"] is True and data["attempt"] == str(path)
    assert data["report"]["checks"][0]["passed"] is True


def test_watch_verifies_again_when_the_file_is_saved(tmp_path: Path, user_home: Path) -> None:
    path = tmp_path / "attempt.py"
    path.write_text(WRONG)
    env = dict(os.environ, AIPREP_HOME=str(user_home), COLUMNS="120", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiprep",
            "--bank",
            str(QUIZ_BANK),
            "verify",
            QID,
            str(path),
            "--watch",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        # A background job of a shell without job control (as CI may start us) inherits
        # SIGINT ignored; the Ctrl-C below must reach the CLI as a terminal's would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    seen = ""
    try:
        for line in proc.stdout:  # first run fails, then it watches
            seen += line
            if "watching" in line:
                break
        assert "0/1 checks passed" in seen
        time.sleep(0.05)
        path.write_text(GOOD)
        for line in proc.stdout:
            seen += line
            if "watching" in line:
                break
        assert "1/1 checks passed" in seen
        assert "recorded a good review" in seen
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a hang: SIGABRT makes faulthandler show where
            proc.send_signal(signal.SIGABRT)
            out, _ = proc.communicate(timeout=15)
            pytest.fail(f"verify --watch still running 60 s after Ctrl-C:\n{out[-6000:]}")
    assert "stopped watching" in out
    assert proc.returncode == 0


def test_a_save_made_while_the_last_verdict_ran_is_seen_without_watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file changed since the verdict's version (saved during the run, or before the
    watcher was ready): verify again at once, not when the watcher's poll comes round."""
    import watchfiles

    from aiprep.cli import _stamp, _wait_for_change

    attempt = tmp_path / "attempt.py"
    attempt.write_text("x = 1\n")
    checked = _stamp(attempt)
    attempt.write_text("x = 12\n")

    def no_watching(*args: object, **kwargs: object) -> None:
        raise AssertionError("watched the folder for a change already made")

    monkeypatch.setattr(watchfiles, "watch", no_watching)
    assert _wait_for_change(attempt, checked) == _stamp(attempt) != checked
