"""The quiz and the mock interview driven through a real pseudo-terminal, as a person would."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner

from aiprep.cli import cli
from aiprep.store import Store
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
T0 = "2026-03-02T09:00:00+00:00"
T1 = "2026-03-02T10:00:00+00:00"  # an hour later: learning steps (1 and 10 min) are due


def spawn(user_home: Path, *args: str, now: str = T0) -> pexpect.spawn:
    env = dict(
        os.environ,
        AIPREP_HOME=str(user_home),
        AIPREP_BANK=str(QUIZ_BANK),
        AIPREP_NOW=now,
        TERM="xterm",
        NO_COLOR="1",
        COLUMNS="120",
        PYTHONFAULTHANDLER="1",  # a hang's SIGABRT shows every thread's stack
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aiprep", *args],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 120),
        # SIGINT at its default, as in a terminal: a background job of a shell without job
        # control (as CI may start us) inherits it ignored, and Ctrl-C would do nothing.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.logfile_read = sys.stdout  # pytest shows the transcript of a failing test
    return child


def stats(user_home: Path, now: str) -> dict:
    os.environ["AIPREP_NOW"] = now
    try:
        result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), "stats", "--json"])
    finally:
        del os.environ["AIPREP_NOW"]
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_session_then_the_next_one_follows_the_ratings(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--new", "5")
    quiz.expect(r"5 question\(s\): 0 due, 5 new")
    # 1: a concept question: a hint, reveal, tick one key point, rate easy
    quiz.expect(r"\[1/5\] alpha\.clipping")
    quiz.expect("Enter reveal")
    quiz.send("h")
    quiz.expect("hint 1/2: Think of a loss spike.")
    quiz.send("\r")
    quiz.expect("reference answer")
    quiz.expect("tick the points you covered")
    quiz.send("1")
    quiz.expect(r"\[1\]")
    quiz.send("\r")
    quiz.expect("covered 1/2 key points")
    quiz.expect(r"Enter hard \(suggested\)")
    quiz.send("4")
    quiz.expect("rated easy")
    # 2: multiple choice, right
    quiz.expect(r"\[2/5\] alpha\.optimizer")
    quiz.expect("A-B pick")
    quiz.send("a")
    quiz.expect(r"pick \[A\]")
    quiz.send("\r")
    quiz.expect("correct.*rated good")
    quiz.expect("any key")
    quiz.send(" ")
    # 3: multiple choice, wrong; every choice's why is shown
    quiz.expect(r"\[3/5\] alpha\.precision")
    quiz.expect("A-C pick")
    quiz.send("c")
    quiz.send("\r")
    quiz.expect("That is float32.")
    quiz.expect("not quite.*the answer is B.*rated again")
    quiz.expect("any key")
    quiz.send(" ")
    # 4: quit
    quiz.expect(r"\[4/5\]")
    quiz.expect("Enter reveal")
    quiz.send("q")
    quiz.expect("answered 3 · again 1 · hard 0 · good 1 · easy 1 · skipped 0")
    quiz.expect(r"next due: .*\(alpha\.precision\); progress saved")
    quiz.expect(pexpect.EOF)
    quiz.close()
    assert quiz.exitstatus == 0

    # stats an hour later: three seen, the two multiple-choice cards due, the easy one not
    data = stats(user_home, T1)
    assert data["total"]["seen"] == 3 and data["total"]["reviews"] == 3
    assert data["total"]["due_now"] == 2
    alpha = next(t for t in data["topics"] if t["topic"] == "alpha")
    assert (alpha["seen"], alpha["due_now"]) == (3, 2)
    assert data["streak_days"] == 1

    # the next session: the card rated "again" comes first, then the "good" one; no new ones
    quiz = spawn(user_home, "quiz", "--new", "0", now=T1)
    quiz.expect(r"2 question\(s\): 2 due, 0 new")
    quiz.expect(r"\[1/2\] alpha\.precision")
    quiz.expect("due")
    quiz.send("b")
    quiz.send("\r")
    quiz.expect("rated good")
    quiz.send(" ")
    quiz.expect(r"\[2/2\] alpha\.optimizer")
    quiz.send("q")
    quiz.expect("answered 1")
    quiz.expect(pexpect.EOF)
    quiz.close()
    with Store() as store:
        assert [r.rating for r in store.reviews(["alpha.precision"])] == [1, 3]


def test_keys_skip_run_and_practice_inside_the_quiz(
    user_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiz = spawn(user_home, "quiz", "--topic", "beta", "--topic", "strategy")
    quiz.expect(r"\[1/2\] beta\.mean_estimate")
    quiz.expect("Enter reveal")
    quiz.send("r")  # run the reference inline, same display as `aiprep run`
    quiz.expect("1/1 checks passed")
    quiz.expect("Enter reveal")
    quiz.send("\r")
    quiz.expect("reference answer")
    quiz.send("q")
    quiz.expect(pexpect.EOF)
    quiz.close()
    monkeypatch.chdir(tmp_path)  # the starter is written to the current folder
    quiz = spawn(user_home, "quiz", "--topic", "beta")
    quiz.expect("Enter reveal")
    quiz.send("p")
    quiz.expect(r"wrote [^\r\n]*beta\.mean_estimate\.py")
    quiz.expect("aiprep verify beta.mean_estimate")
    starter = tmp_path / "beta.mean_estimate.py"  # in the working folder
    assert starter.is_file()
    source = starter.read_text(encoding="utf-8")
    assert "def estimate_mean(samples: list[float], *, trim: float = 0.0) -> float:" in source
    assert "raise NotImplementedError" in source and "sum(samples)" not in source
    quiz.send("s")
    quiz.expect("skipped")
    quiz.expect("answered 0 .* skipped 1")
    quiz.expect(pexpect.EOF)
    quiz.close()


def test_a_killed_quiz_keeps_every_rating_given(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--new", "5")
    quiz.expect(r"\[1/5\]")
    quiz.send("\r")
    quiz.expect("tick the points")
    quiz.send("\r")
    quiz.expect("rate:")
    quiz.send("3")
    quiz.expect(r"\[2/5\]")
    quiz.send("a\r")
    quiz.expect("any key")
    quiz.send(" ")
    quiz.expect(r"\[3/5\]")
    quiz.expect("A-C pick")
    os.kill(quiz.pid, signal.SIGKILL)  # no chance to clean up
    quiz.expect(pexpect.EOF)
    quiz.close()
    db = sqlite3.connect(user_home / "progress.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Store() as store:
        assert [(r.question_id, r.rating) for r in store.reviews()] == [
            ("alpha.clipping", 3),
            ("alpha.optimizer", 3),
        ]
        assert set(store.cards()) == {"alpha.clipping", "alpha.optimizer"}


def test_a_closed_terminal_ends_the_quiz_cleanly(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--topic", "alpha")
    quiz.expect(r"\[1/3\]")
    quiz.send("\r")
    quiz.expect("tick the points")
    quiz.send("\r")
    quiz.expect("rate:")
    quiz.send("2")
    quiz.expect(r"\[2/3\]")
    quiz.expect("A-B pick")
    quiz.close(force=False)  # hang up: SIGHUP, as when the terminal window is closed
    assert quiz.signalstatus in (None, signal.SIGHUP)  # no hang; ended or hung up
    with Store() as store:
        assert [(r.question_id, r.rating) for r in store.reviews()] == [("alpha.clipping", 2)]


def test_ctrl_c_ends_the_quiz_with_a_summary(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz")
    quiz.expect(r"\[1/5\]")
    quiz.expect("Enter reveal")
    quiz.sendintr()
    try:
        quiz.expect("answered 0", timeout=90)
    except pexpect.TIMEOUT:  # a hang: SIGABRT makes faulthandler show where (transcript)
        quiz.kill(signal.SIGABRT)
        quiz.expect(pexpect.EOF, timeout=15)
        pytest.fail("the quiz did not sum up 90 s after Ctrl-C (its stacks are above)")
    quiz.expect("progress saved")
    quiz.expect(pexpect.EOF)
    quiz.close()
    assert quiz.exitstatus == 0


def _clock(child: pexpect.spawn) -> int:
    """Seconds left on the countdown shown next."""
    child.expect("⏱ (0[0-4]):([0-5][0-9])")
    return int(child.match.group(1)) * 60 + int(child.match.group(2))


def test_mock_interview_counts_down_and_sums_up(user_home: Path) -> None:
    mock = spawn(user_home, "mock", "--minutes", "5", "--seed", "3")
    mock.expect(r"mock interview: 3 questions in 5 minutes")
    kinds_seen = []
    for i in (1, 2, 3):
        mock.expect(rf"\[{i}/3\] (\S+)")
        kinds_seen.append(mock.match.group(1))
        mock.expect("(multiple-choice|concept|coding)")
        kind = mock.match.group(1)
        first = _clock(mock)
        if i == 1:  # the clock runs down: a frozen one never gets here (pexpect times out)
            while _clock(mock) > first - 2:
                pass
        if kind == "multiple-choice":
            mock.expect("pick")
            mock.send("a\r")
            mock.expect("any key")
            mock.send(" ")
        elif i < 3:
            mock.expect("Enter reveal")
            mock.send("s")
        else:
            mock.expect("Enter reveal")
            mock.send("q")
    mock.expect("mock interview")  # the summary table: a row per question, in order
    for qid in kinds_seen:
        mock.expect(re.escape(qid))
    mock.expect("review next:")
    mock.expect(pexpect.EOF)
    mock.close()
    assert "beta.mean_estimate" in kinds_seen  # the one coding question
    assert "strategy.moat" in kinds_seen  # the one strategy question


def test_quiz_refuses_without_a_terminal() -> None:
    result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), "quiz"])
    assert result.exit_code == 2
    assert "needs a terminal on stdin" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["quiz", "mock"])
def test_help_explains_the_keys(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "q quit" in result.output or "same keys" in result.output


def test_the_quiz_speaks_chinese_with_lang_zh(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--lang", "zh", "--topic", "alpha")
    quiz.expect("为什么要做梯度裁剪？")
    quiz.expect("Enter 显示答案")
    quiz.send("h")
    quiz.expect("提示 1/2：")
    quiz.expect("想想损失突然飙升的情况。")
    quiz.send("\r")
    quiz.expect("参考答案")
    quiz.expect("勾选你答到的要点")
    quiz.send("12\r")
    quiz.expect("答到 2/2 个要点")
    quiz.send("\r")
    quiz.expect("评为")
    quiz.expect("选出所有正确选项")
    quiz.send("q")
    quiz.expect(pexpect.EOF)
    quiz.close()
    with Store() as store:
        assert [(r.question_id, r.rating) for r in store.reviews()] == [("alpha.clipping", 3)]


def test_the_reference_answer_shows_its_as_of(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--topic", "strategy")
    quiz.expect(r"\[1/1\] strategy\.moat")
    quiz.expect("Enter reveal")
    quiz.send("\r")
    quiz.expect(r"reference answer(\x1b\[[0-9;]*m)* · as of 2025-06")
    quiz.expect("Proprietary data loops")
    quiz.send("q")
    quiz.expect(pexpect.EOF)
    quiz.close()
