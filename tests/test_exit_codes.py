"""Exit codes every command shares: 130 on Ctrl-C, a quiet 0 when the reader closes the pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

import aiprep.cli
import aiprep.render
from aiprep.cli import cli
from conftest import FIXTURES, GOOD_BANK

QUIZ_BANK = FIXTURES / "quiz"


def _interrupt(*_args: Any, **_kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "args",
    [["list"], ["show", "alpha.gradient_clipping"], ["run", "beta.mean_estimate"], ["stats"]],
)
def test_ctrl_c_exits_130_without_aborted(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setattr(aiprep.cli, "load_bank", _interrupt)
    result = CliRunner().invoke(cli, ["--bank", str(GOOD_BANK), *args])
    assert result.exit_code == 130
    assert "Aborted" not in result.output


def test_ctrl_c_during_run_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiprep.render, "run_and_show", _interrupt)
    result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), "run", "beta.mean_estimate"])
    assert result.exit_code == 130 and "Aborted" not in result.output


def _verdicts(monkeypatch: pytest.MonkeyPatch, verdicts: list[bool | None]) -> None:
    """run_and_show returns these verdicts in turn; None is a Ctrl-C mid-run."""

    def fake_run(*_args: Any, **_kwargs: Any) -> Any:
        verdict = verdicts.pop(0)
        if verdict is None:
            raise KeyboardInterrupt
        return SimpleNamespace(passed=verdict, message="", series={}, epochs={})

    monkeypatch.setattr(aiprep.render, "run_and_show", fake_run)
    # the reviews verify records go to the test's own AIPREP_HOME; no hints to look up
    monkeypatch.setattr(aiprep.cli, "_next_step", lambda _q: "next", raising=False)
    monkeypatch.setattr(aiprep.cli, "_wait_for_change", lambda _p, _c: (1, 2, 3))


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [([True, False, None], 1), ([False, True, None], 0), ([False, False, None], 1)],
)
def test_watch_exits_with_the_last_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verdicts: list[bool | None], code: int
) -> None:
    _verdicts(monkeypatch, verdicts)
    attempt = tmp_path / "attempt.py"
    attempt.write_text("x = 1\n")
    args = ["--bank", str(QUIZ_BANK), "verify", "beta.mean_estimate", str(attempt), "--watch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    assert "stopped watching" in result.output


def test_ctrl_c_while_watching_exits_with_the_last_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _verdicts(monkeypatch, [False])
    monkeypatch.setattr(aiprep.cli, "_wait_for_change", _interrupt)
    attempt = tmp_path / "attempt.py"
    attempt.write_text("x = 1\n")
    args = ["--bank", str(QUIZ_BANK), "verify", "beta.mean_estimate", str(attempt), "--watch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "stopped watching" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--lang", "both"],
        ["show", "alpha.gradient_clipping", "--answer"],
        ["export", "--format", "md", "-o", "-"],
        ["list", "--json"],
        ["validate"],
    ],
)
def test_closed_pipe_exits_0_quietly(args: list[str]) -> None:
    # The reader is gone before aiprep writes its first byte.
    script = (
        "import os, sys, subprocess\n"
        "r, w = os.pipe()\n"
        "os.close(r)\n"
        f"p = subprocess.run([sys.executable, '-m', 'aiprep', '--bank', {str(GOOD_BANK)!r}]"
        f" + {args!r}, stdout=w, stderr=subprocess.PIPE)\n"
        "sys.stdout.write(str(p.returncode) + '\\n' + p.stderr.decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    code, _, stderr = done.stdout.partition("\n")
    assert code == "0", stderr
    assert "Traceback" not in stderr and "Broken pipe" not in stderr and "Exception" not in stderr
