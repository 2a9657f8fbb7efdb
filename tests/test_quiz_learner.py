"""Issue 14 in the quiz, through a real pseudo-terminal: the rating keys' next intervals,
undo, prompts redrawn in place, the last question's prompt, and a mock whose time runs out
while a question is open."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pexpect
from rich.console import Console
from test_quiz_pty import spawn

from aiprep.bank import load_bank
from aiprep.quiz import Asker, Terminal, _ask_all
from aiprep.schedule import Session
from aiprep.store import Store
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"


def test_rating_keys_show_the_next_interval_and_u_undoes(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--topic", "alpha")
    quiz.expect(r"\[1/3\] alpha\.clipping")
    quiz.expect("Enter reveal")
    assert "u undo" not in quiz.before  # nothing rated yet
    quiz.send("h")  # seen in the quiz: `aiprep hint` goes on with the next one
    quiz.expect("hint 1/2")
    quiz.send("\r")
    quiz.expect("tick the points")
    quiz.send("\r")
    # a new card, like Anki's buttons: again 1m, hard 6m, good 10m, easy in days
    quiz.expect(r"1 again · 1m   2 hard · 6m   3 good · 10m   4 easy · \d+d")
    quiz.send("1")
    quiz.expect("rated again")
    quiz.expect(r"\[2/3\] alpha\.optimizer")
    quiz.expect("u undo")
    quiz.send("u")
    quiz.expect("undid the rating of alpha.clipping")
    quiz.expect(r"\[1/3\] alpha\.clipping")  # asked again
    quiz.send("\r")
    quiz.expect("tick the points")
    quiz.send("\r")
    quiz.expect("1 again · 1m")
    quiz.send("3")
    quiz.expect("rated good")
    quiz.expect(r"\[2/3\] alpha\.optimizer")
    quiz.send("q")
    quiz.expect("answered 1 · again 0 · hard 0 · good 1")
    quiz.expect(pexpect.EOF)
    quiz.close()
    with Store() as store:
        assert [(r.question_id, r.rating) for r in store.reviews()] == [("alpha.clipping", 3)]
        assert store.hints_shown("alpha.clipping") == 1


def test_toggles_redraw_the_prompt_in_place(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--topic", "alpha")
    quiz.expect(r"\[1/3\] alpha\.clipping")
    quiz.expect("Enter reveal")
    quiz.send("\r")
    quiz.expect(r"tick the points you covered \(1-2\), Enter when done \[none\]")
    quiz.send("1")
    quiz.expect(r"Enter when done \[1\]")
    assert "\n" not in quiz.before  # the same line, redrawn
    quiz.send("2")
    quiz.expect(r"Enter when done \[1 2\]")
    assert "\n" not in quiz.before
    quiz.send("\r")
    quiz.expect("covered 2/2")
    quiz.send("3")
    quiz.expect(r"\[2/3\] alpha\.optimizer")
    quiz.expect(r"pick \[none\]")
    quiz.send("a")
    quiz.expect(r"pick \[A\]")
    assert "\n" not in quiz.before
    quiz.send("b")
    quiz.expect(r"pick \[A B\]")
    assert "\n" not in quiz.before
    quiz.send("q")
    quiz.expect(pexpect.EOF)
    quiz.close()


def test_after_the_last_question_the_prompt_does_not_promise_another(user_home: Path) -> None:
    quiz = spawn(user_home, "quiz", "--kind", "multiple-choice", "--new", "1")
    quiz.expect(r"\[1/1\] alpha\.optimizer")
    quiz.expect("pick")
    quiz.send("a\r")
    quiz.expect("rated good")
    quiz.expect("any key to continue")
    assert "next question" not in quiz.before
    quiz.send(" ")
    quiz.expect("answered 1")
    quiz.expect(pexpect.EOF)
    quiz.close()


def test_a_mock_says_time_is_up_at_once_with_a_question_open(tmp_path: Path) -> None:
    """No key is pressed: the open question must not hold the session past the deadline."""
    bank = load_bank(QUIZ_BANK)
    queue = [bank.questions["alpha.clipping"], bank.questions["strategy.moat"]]
    controller, terminal = os.openpty()
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    term = Terminal(console, fd=terminal)
    session = Session()

    class Hung(Exception):
        pass

    def watchdog(signum: int, frame: object) -> None:
        raise Hung

    old = signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(10)
    try:
        with Store(tmp_path / "p.db") as store, term.session():
            asker = Asker(term, bank, "en", deadline=time.monotonic() + 1.5, store=store)
            start = time.monotonic()
            finished = _ask_all(asker, queue, ["mock"] * 2, store, session, "mock")
            took = time.monotonic() - start
            assert store.reviews() == []
    except Hung:
        raise AssertionError("the mock waited for a key after its time ran out") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.close(controller)
        os.close(terminal)
    assert not finished and took < 3
    assert session.outcomes == []  # the open question counts as not reached
    assert "time is up" in out.getvalue()
