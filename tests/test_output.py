"""Terminal and piped output: hanging indents, no trailing spaces, ticked key points."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from aiprep.cli import cli
from aiprep.render import hanging, key_point_list
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"


def show(*args: str, columns: int = 30) -> str:
    runner = CliRunner(env={"COLUMNS": str(columns)})
    result = runner.invoke(cli, ["--bank", str(QUIZ_BANK), "show", *args])
    assert result.exit_code == 0, result.output
    return result.output


def render(renderable: object, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


def test_a_choices_why_keeps_its_indent_when_it_wraps() -> None:
    lines = show("alpha.optimizer", "--answer").splitlines()
    start = next(i for i, line in enumerate(lines) if "A. AdamW" in line)
    why = lines[start + 1 : start + 3]
    assert why == ["       Decoupled decay", "       regularizes properly."], lines


def test_show_has_no_trailing_spaces() -> None:
    out = show("alpha.optimizer", "--answer", "--lang", "both", columns=80)
    assert out.strip()
    assert [line for line in out.splitlines() if line != line.rstrip()] == []


def test_hanging_indent_for_a_long_text() -> None:
    lines = render(hanging("  1. ☐ ", "one two three four five six seven"), 20)
    assert lines[0].startswith("  1. ☐ one")
    assert all(line.startswith(" " * 7) and line[7] != " " for line in lines[1:]), lines
    assert len(lines) > 1


def test_ticked_key_points_show_ticked() -> None:
    lines = render(key_point_list(["first", "second", "third"], {1, 3}, numbered=True), 40)
    assert lines == ["  1. ☑ first", "  2. ☐ second", "  3. ☑ third"]
    assert render(key_point_list(["only"]), 40) == ["  ☐ only"]


def test_the_quiz_shows_ticked_key_points_ticked(user_home: Path) -> None:
    import os
    import sys

    import pexpect

    env = dict(
        os.environ,
        AIPREP_HOME=str(user_home),
        AIPREP_BANK=str(QUIZ_BANK),
        AIPREP_NOW="2026-03-02T09:00:00+00:00",
        TERM="xterm",
        NO_COLOR="1",
        COLUMNS="120",
    )
    quiz = pexpect.spawn(
        sys.executable,
        ["-m", "aiprep", "quiz", "--new", "1", "--topic", "alpha", "--kind", "concept"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 120),
    )
    quiz.logfile_read = sys.stdout
    try:
        quiz.expect("Enter reveal")
        quiz.send("\r")
        quiz.expect("tick the points you covered")
        quiz.send("1")
        quiz.expect(r"\[1\]")
        quiz.send("\r")
        quiz.expect("1. ☑ ")  # the list again, the covered point ticked
        quiz.expect("2. ☐ ")
        quiz.expect("covered 1/2 key points")
    finally:
        quiz.terminate(force=True)
