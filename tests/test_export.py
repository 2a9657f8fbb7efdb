"""`aiprep export`: the command, Markdown / HTML / JSON output, and hostile text."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep.bank import load_bank
from aiprep.cli import cli
from aiprep.exporters import ExportOptions, items, render
from aiprep.files import write_atomic
from aiprep.schema import ExportFile, Question
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
HOSTILE_BANK = FIXTURES / "hostile"
GOLDEN = FIXTURES / "export_golden"


def export(bank: Path, fmt: str, **options: object) -> bytes:
    loaded = load_bank(bank, use_cache=False)
    opts = ExportOptions(**options)  # type: ignore[arg-type]
    return render(fmt, items(bank, list(loaded.questions.values()), opts), opts)


def invoke(*args: str, bank: Path = QUIZ_BANK) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(bank), "export", *args])
    return result.exit_code, result.output


# -----------------------------------------------------------------------------
# The command


def test_export_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "set.md"
    code, text = invoke("--format", "md", "-o", str(out))
    assert code == 0, text
    assert "wrote" in text and "5 question(s)" in text
    first = out.read_bytes()
    out.write_text("the instructor's own notes")
    code, text = invoke("--format", "md", "-o", str(out))
    assert code == 2 and "--force" in text
    assert out.read_text() == "the instructor's own notes"
    assert invoke("--format", "md", "-o", str(out), "--force")[0] == 0
    assert out.read_bytes() == first


def test_filters_and_ids_select_questions(tmp_path: Path) -> None:
    out = tmp_path / "set.json"
    assert invoke("--format", "json", "-o", str(out), "--kind", "multiple-choice")[0] == 0
    ids = [q["id"] for q in json.loads(out.read_text())["questions"]]
    assert ids == ["alpha.optimizer", "alpha.precision"]
    args = ("--format", "json", "-o", str(out), "--force", "--ids", "strategy.moat,alpha.clipping")
    assert invoke(*args)[0] == 0
    ids = [q["id"] for q in json.loads(out.read_text())["questions"]]
    assert ids == ["alpha.clipping", "strategy.moat"]


def test_bad_selections_are_one_line(tmp_path: Path) -> None:
    code, text = invoke("--format", "md", "-o", str(tmp_path / "x.md"), "--ids", "alpha.clipin")
    assert code == 2 and "did you mean alpha.clipping" in text
    code, text = invoke("--format", "md", "-o", str(tmp_path / "x.md"), "--tag", "nothing")
    assert code == 2 and "unknown tag nothing; tags: " in text
    assert not (tmp_path / "x.md").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "set.html"
    target.write_text("old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new content", force=True)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["set.html"]


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_same_input_same_bytes(fmt: str) -> None:
    assert export(QUIZ_BANK, fmt) == export(QUIZ_BANK, fmt)
    assert export(QUIZ_BANK, fmt) != export(QUIZ_BANK, fmt, answers=False)


# -----------------------------------------------------------------------------
# Golden files (regenerate: AIPREP_UPDATE_GOLDEN=1 pytest tests/test_export.py)


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("quiz.md", "md", {}),
        ("quiz.students.md", "md", {"answers": False, "lang": "both"}),
        ("quiz.html", "html", {}),
        ("quiz.json", "json", {"lang": "both", "with_code": True}),
    ],
)
def test_golden(name: str, fmt: str, options: dict[str, object]) -> None:
    got = export(QUIZ_BANK, fmt, **options)
    if fmt == "html":  # the stylesheet comes partly from Pygments: its version may differ
        head, _, rest = got.partition(b"<style>")
        got = head + b"<style>..." + rest.partition(b"</style>")[2]
    path = GOLDEN / name
    if os.environ.get("AIPREP_UPDATE_GOLDEN"):
        path.write_bytes(got)
    assert path.exists(), f"{path} missing: run AIPREP_UPDATE_GOLDEN=1 pytest {__file__}"
    assert got == path.read_bytes(), (
        f"{name} differs from the golden file; if the change is intended, run "
        f"AIPREP_UPDATE_GOLDEN=1 pytest tests/test_export.py and review the diff"
    )


# -----------------------------------------------------------------------------
# JSON: versioned, documented, loads back


def test_json_round_trips_into_the_bank_model() -> None:
    bank = load_bank(QUIZ_BANK, use_cache=False)
    data = json.loads(export(QUIZ_BANK, "json", lang="both", with_code=True))
    ExportFile.model_validate(data)
    assert (data["format"], data["version"]) == ("aiprep-questions", 1)
    for q in data["questions"]:
        code = q.pop("code")
        assert (code is not None) == (q["solution"] is not None)
        Question.model_validate(q)
        assert q == bank.questions[q["id"]]


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_json_student_sheets_validate_and_hide_answers(lang: str) -> None:
    data = json.loads(export(QUIZ_BANK, "json", lang=lang, answers=False, with_code=True))
    ExportFile.model_validate(data)
    for q in data["questions"]:
        assert "answer" not in q and "key_points" not in q and "code" not in q
        for choice in q["choices"] or []:
            assert set(choice) == {"text"}
        assert set(q["title"]) == ({"en", "zh"} if lang == "both" else {lang})


def test_the_committed_export_schema_is_current() -> None:
    from aiprep.schema import export_json_schema

    committed = json.loads((FIXTURES.parent.parent / "schema" / "export.schema.json").read_text())
    assert committed == export_json_schema()


# -----------------------------------------------------------------------------
# Hostile text: inert and intact


class _Visible(HTMLParser):
    """The elements and the visible text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, _ in attrs:
            assert not name.startswith("on"), f"event handler attribute {name}"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_hostile_text_is_inert_and_intact() -> None:
    page = export(HOSTILE_BANK, "html", lang="both").decode()
    parser = _Visible()
    parser.feed(page)
    for tag in ("script", "img", "iframe", "textarea"):
        assert tag not in parser.tags, tag
    assert parser.tags.count("style") == 1  # ours, in <head>
    visible = "".join(parser.text)
    for shown in (
        "<script>alert('t')</script> {braces} ~=#: \\back\\slash & \"quotes\"",
        "<img src=x onerror=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        'print("<script>")  # {} ~=#: \\\\',
        "</textarea><script>x</script> {~=#:}",
        "<style>body{display:none}</style>",
        "问答",
    ):
        assert shown in visible, shown


def test_markdown_hostile_text_has_no_raw_html_outside_code() -> None:
    text = export(HOSTILE_BANK, "md", lang="both").decode()
    outside_code = []
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            outside_code.append(line)
    body = "\n".join(outside_code)
    for tag in ("<script", "<img", "<iframe", "<style", "<b>", "<em>"):
        assert tag not in body, tag
    assert "&lt;script>alert('t')&lt;/script> {braces} ~=#: \\back\\slash" in body
    assert 'print("<script>")  # {} ~=#: \\\\' in text  # code stays verbatim


def test_html_student_sheet_has_no_answers() -> None:
    page = export(QUIZ_BANK, "html", answers=False).decode()
    assert "Show the answer" not in page
    assert "AdamW, with warm-up and decay" not in page
    assert "Decoupled decay regularizes properly" not in page
    assert "Show the hints" in page and "Adam with a twist" in page


def _readable(data: bytes) -> str:
    """The text of an export; a zip (qti, anki) as the text of all its members."""
    import io
    import zipfile

    if not data.startswith(b"PK"):
        return data.decode("utf-8")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())


@pytest.mark.parametrize("fmt", ["md", "html", "anki", "gift", "moodle-xml", "qti"])
def test_as_of_shows_beside_the_answer_in_every_format(fmt: str) -> None:
    """strategy.moat carries `as_of: 2025-06`: every sheet with answers dates its answer."""
    assert "as of 2025-06" in _readable(export(QUIZ_BANK, fmt))
    assert "信息截至 2025-06" in _readable(export(QUIZ_BANK, fmt, lang="zh"))
    assert "2025-06" not in _readable(export(QUIZ_BANK, fmt, answers=False))


@pytest.mark.parametrize("fmt", ["md", "html", "anki", "gift", "moodle-xml", "qti"])
def test_references_follow_the_answer_in_every_format(fmt: str) -> None:
    """strategy.moat cites one reference: every sheet with answers links it, in both
    languages' headings; a student sheet leaves it out with the answer."""
    text = _readable(export(QUIZ_BANK, fmt))
    assert "Distribution beats product (essay, section 2)" in text
    assert "example.org/moats" in text  # escaped as each format escapes (GIFT, XML, HTML)
    if fmt in ("md", "html", "anki"):
        assert "References" in text and "参考资料" in _readable(export(QUIZ_BANK, fmt, lang="zh"))
    assert "example.org/moats" not in _readable(export(QUIZ_BANK, fmt, answers=False))


def test_json_export_keeps_references_with_the_answers() -> None:
    questions = json.loads(export(QUIZ_BANK, "json"))["questions"]
    cited = {q["id"]: q["references"] for q in questions if q["references"]}
    assert cited == {
        "strategy.moat": [
            {
                "title": "Distribution beats product (essay, section 2)",
                "url": "https://example.org/moats?a=1&b=2",
            }
        ]
    }
    students = json.loads(export(QUIZ_BANK, "json", answers=False))["questions"]
    assert all("references" not in q for q in students)


def test_json_export_keeps_as_of() -> None:
    questions = json.loads(export(QUIZ_BANK, "json"))["questions"]
    assert {q["id"]: q["as_of"] for q in questions if q["as_of"]} == {"strategy.moat": "2025-06"}
