"""Issue 14's small things: the run's label, which values are which, help texts, unknown
tags, the smoke summary's one-line cells and its overhead wording."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console

import aiprep.render
import aiprep.runner
from aiprep.cli import cli
from aiprep.kit.report import SolutionReport
from aiprep.render import LiveProgress, run_and_show, smoke_summary
from aiprep.runner import Job
from conftest import FIXTURES, GOOD_BANK

QUIZ_BANK = FIXTURES / "quiz"


def _text(renderable: object, width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_the_run_spinner_shows_the_title_not_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    labels: list[str] = []

    class Recorder(LiveProgress):
        def __init__(self, console: Console, label: str, *, enabled: bool = True) -> None:
            labels.append(label)
            super().__init__(console, label, enabled=False)

    fake = SimpleNamespace(report=None, message="x", output_tail="")
    monkeypatch.setattr(aiprep.render, "LiveProgress", Recorder)
    monkeypatch.setattr(aiprep.runner, "run_solution", lambda *_a, **_k: fake)
    console = Console(file=io.StringIO())
    run_and_show(console, Path("."), "distributed.mirrored", "d.m", title="Mirrored [strategy]")
    run_and_show(console, Path("."), "distributed.mirrored", "d.m")
    assert labels == ["Mirrored [strategy]", "d.m"]


def test_progress_values_say_they_are_the_runs() -> None:
    progress = LiveProgress(Console(file=io.StringIO()), "t [x]", enabled=False)
    assert progress.progress.tasks[0].description == "starting t \\[x]"  # markup escaped
    progress({"event": "start", "phase": "train", "total": 2})
    progress({"event": "advance", "phase": "train", "completed": 2, "values": {"loss": 0.5}})
    progress({"event": "finish", "phase": "train"})
    [task] = [t for t in progress.progress.tasks if t.description == "train"]
    assert task.fields["values"] == "loss 0.5 (during the run)"
    report = SolutionReport("m")
    report.metric("final train loss", 0.25)
    assert "measured by the checks" in _text(aiprep.render.report_tables(report))


def test_difficulty_and_lang_have_help() -> None:
    out = CliRunner().invoke(cli, ["list", "--help"]).output
    assert "Only this difficulty" in out and "Language of the questions" in out


def test_main_help_does_not_cut_descriptions() -> None:
    out = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["--help"]).output
    commands = out[out.index("Commands:") :]
    assert "..." not in commands
    assert "solution's own checks." in out  # verify's description, wrapped whole


def test_unknown_tag_lists_the_tags() -> None:
    result = CliRunner().invoke(cli, ["--bank", str(GOOD_BANK), "list", "--tag", "nosuchtag"])
    assert result.exit_code == 2
    assert "unknown tag nosuchtag; tags: " in result.output and "stability" in result.output


def _passed(qid: str, wall: float, compute: float) -> Job:
    report = SolutionReport(qid)
    for i in range(2):
        name = f"a rather long check name number {i} that says what it proves in words"
        report.check(name, 0.123456, "<", 1.0)
    return Job(qid, qid, state="passed", status="ok", wall_s=wall, compute_s=compute,
               report=report)  # fmt: skip


def test_smoke_key_metrics_stay_on_one_line() -> None:
    jobs = [_passed("topic.one", 3.0, 1.0), _passed("topic.two", 2.0, 1.0)]
    lines = _text(smoke_summary(jobs, 4.0, 1)).splitlines()
    first = next(i for i, line in enumerate(lines) if "PASS" in line)
    assert "PASS" in lines[first + 1] and not lines[first + 2].strip(), lines  # no 2nd lines
    assert "…" in lines[first]


def test_smoke_overhead_is_seconds_with_its_meaning() -> None:
    text = _text(smoke_summary([_passed("topic.one", 2.0, 1.0)], 2.0, 1))
    assert "%" not in text
    assert "1.0 s more for start-up and uneven load" in text


@pytest.mark.parametrize("width", [1, 2, 7, 20, 41, 100])
def test_titles_wrap_to_the_width_in_terminal_cells(width: int) -> None:
    """`aiprep list` wraps titles itself: every line fits in ``width`` cells (a CJK
    character takes two), nothing is lost, and English breaks only at spaces."""
    from rich.cells import cell_len

    from aiprep.render import wrap_cells

    english = "Agent unit economics: what does one agent task cost, and what must you charge?"
    chinese = "调试融资 BP 里的单位经济模型脚本：毛利率约 100%、CAC 回本只要 9 天"
    for text in (english, chinese, "x" * 45, "短"):
        lines = wrap_cells(text, width)
        assert all(cell_len(line) <= max(width, 2) for line in lines), lines
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    if width >= 12:  # wider than its longest word: whole words only
        assert " ".join(wrap_cells(english, width)) == english
    assert wrap_cells(chinese, 20)[0] == "调试融资 BP 里的单位"  # CJK fills the line
    if width >= 4:  # closing punctuation never starts a line: its character comes down too
        for line in wrap_cells("范围估计方法？还有，校准数据要多少。", width)[1:]:
            assert line[0] not in "？，。", line
