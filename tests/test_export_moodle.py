"""Moodle exports: GIFT text (read back by a strict parser) and Moodle XML (read by ElementTree)."""

from __future__ import annotations

import copy
import html
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiprep.bank import load_bank
from aiprep.cli import cli
from aiprep.exporters import ExportOptions, Item, items, render
from aiprep.exporters.html import block, inline
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
HOSTILE_BANK = FIXTURES / "hostile"
GOLDEN = FIXTURES / "export_golden"
UPDATE = "AIPREP_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_export_moodle.py -k golden"


def bank_items(bank: Path, **options: object) -> tuple[list[Item], ExportOptions]:
    opts = ExportOptions(**options)  # type: ignore[arg-type]
    loaded = load_bank(bank, use_cache=False)
    return items(bank, list(loaded.questions.values()), opts), opts


def export(bank: Path, fmt: str, **options: object) -> bytes:
    exported, opts = bank_items(bank, **options)
    return render(fmt, exported, opts)


def records(bank: Path) -> dict[str, Any]:
    return dict(load_bank(bank, use_cache=False).questions)


def multi_answer_item(correct: list[bool]) -> Item:
    """alpha.precision with ``correct`` as its key: several correct choices."""
    record = copy.deepcopy(records(QUIZ_BANK)["alpha.precision"])
    for choice, ok in zip(record["choices"], correct, strict=True):
        choice["correct"] = ok
    return Item(record)


def visible(fragment: str) -> str:
    """What a browser shows for an HTML fragment: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", fragment))


def assert_inert(fragment: str) -> None:
    """No live markup from the bank's hostile texts: only the tags markdown-it makes."""
    for tag in re.findall(r"<\s*/?\s*([a-zA-Z!\[]+)", fragment):
        assert tag.lower() in {"p", "pre", "code", "span", "ul", "li", "strong", "em"}, tag


# -----------------------------------------------------------------------------
# A strict GIFT reader: tokens on unescaped specials; anything unexpected fails

SPECIALS = "~=#{}:"


@dataclass
class GiftChoice:
    mark: str  # "=" (the correct one), "~" (wrong) or "~%50%" (a weight)
    text: str
    feedback: str | None


@dataclass
class GiftQuestion:
    category: str
    title: str
    text: str
    choices: list[GiftChoice] = field(default_factory=list)
    general: str | None = None


def tokens(source: str) -> list[str]:
    """Text tokens (escapes resolved, prefixed ``t``) and unescaped specials (``s``/``n``)."""
    out: list[str] = []
    buf: list[str] = []
    i = 0

    def flush() -> None:
        if buf:
            out.append("t" + "".join(buf))
            buf.clear()

    while i < len(source):
        ch = source[i]
        if ch == "\\":
            nxt = source[i + 1]
            assert nxt in SPECIALS + "\\n", f"unknown escape \\{nxt} in {source!r}"
            buf.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        if ch in SPECIALS or ch == "\n":
            flush()
            out.append(("n" if ch == "\n" else "s") + ch)
        else:
            buf.append(ch)
        i += 1
    flush()
    return out


def html_text(token: str) -> str:
    assert token.startswith("t[html]"), f"no [html] marker: {token!r}"
    return token[len("t[html]") :]


def parse_question(block_: str, category: str) -> GiftQuestion:
    toks = tokens(block_)
    head_end = toks.index("s{")
    head, body = toks[:head_end], toks[head_end + 1 :]
    assert "n\n" not in head, "a question's name and text must stay on one line"
    assert head[:2] == ["s:", "s:"] and head[3:5] == ["s:", "s:"] and len(head) == 6, head
    q = GiftQuestion(category, head[2][1:], html_text(head[5]))
    assert body[-1] == "s}" and "s}" not in body[:-1] and "s{" not in body, body
    body = [t for t in body[:-1] if t != "n\n"]
    while body:
        if body[:4] == ["s#"] * 4:
            assert q.general is None and len(body) == 5, body
            q.general = html_text(body[4])
            body = []
        elif body[0] in ("s=", "s~"):
            mark, text = body[0][1], body[1]
            weight = re.match(r"t(%-?[0-9.]+%)", text)
            if weight:
                assert mark == "~", "a weight goes after ~"
                mark += weight.group(1)
                text = "t" + text[weight.end() :]
            choice = GiftChoice(mark, html_text(text), None)
            body = body[2:]
            if body[:1] == ["s#"] and body[1:2] != ["s#"]:
                choice.feedback = html_text(body[1])
                body = body[2:]
            q.choices.append(choice)
        else:
            raise AssertionError(f"unexpected tokens {body[:3]}")
    return q


def parse_gift(data: bytes) -> list[GiftQuestion]:
    text = data.decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    out: list[GiftQuestion] = []
    category = ""
    for chunk in text.strip("\n").split("\n\n"):
        lines = chunk.split("\n")
        if all(line.startswith("//") for line in lines):
            continue
        if chunk.startswith("$CATEGORY: "):
            assert len(lines) == 1, chunk
            category = chunk.removeprefix("$CATEGORY: ")
            continue
        assert not any(line.startswith("//") for line in lines), "a line Moodle would drop"
        out.append(parse_question(chunk, category))
    return out


def by_id(questions: list[GiftQuestion]) -> dict[str, GiftQuestion]:
    found = {re.search(r"\[([^\]]+)\]$", q.title).group(1): q for q in questions}
    assert len(found) == len(questions)
    return found


# -----------------------------------------------------------------------------
# GIFT


def test_gift_quiz_questions_kinds_and_correct_answers() -> None:
    qs = by_id(parse_gift(export(QUIZ_BANK, "gift")))
    assert sorted(qs) == [
        "alpha.clipping",
        "alpha.optimizer",
        "alpha.precision",
        "beta.mean_estimate",
        "strategy.moat",
    ]
    assert [q.category for q in qs.values()] == ["aiprep/alpha"] * 3 + [
        "aiprep/beta",
        "aiprep/strategy",
    ]
    optimizer = qs["alpha.optimizer"]
    assert [(c.mark, c.text) for c in optimizer.choices] == [("=", "AdamW"), ("~", "Plain SGD")]
    assert optimizer.choices[0].feedback == "<p>Decoupled decay regularizes properly.</p>"
    assert [c.mark for c in qs["alpha.precision"].choices] == ["~", "=", "~"]
    for essay in ("alpha.clipping", "beta.mean_estimate", "strategy.moat"):
        assert qs[essay].choices == []
        assert qs[essay].general is not None
    assert qs["alpha.clipping"].text == (
        "<p>When does <strong>gradient clipping</strong> help, and what does it cost?</p>"
    )
    general = qs["alpha.clipping"].general or ""
    assert "It bounds the update" in general
    assert "<li>Clipping by global norm keeps the direction</li>" in general


def test_gift_student_sheet_keeps_the_key_and_drops_every_why() -> None:
    data = export(QUIZ_BANK, "gift", answers=False)
    qs = by_id(parse_gift(data))
    assert len(qs) == 5
    assert [c.mark for c in qs["alpha.precision"].choices] == ["~", "=", "~"]
    assert all(q.general is None for q in qs.values())
    assert all(c.feedback is None for q in qs.values() for c in q.choices)
    for leaked in (b"AdamW, with warm-up", b"That is float32", b"Data flywheel", b"Two bytes"):
        assert leaked not in data


@pytest.mark.parametrize(
    ("correct", "marks"),
    [
        ([True, True, False], ["~%50%", "~%50%", "~%-100%"]),
        ([True, True, True], ["~%33.33333%"] * 3),
        ([False, True, False], ["~", "=", "~"]),
    ],
    ids=["two-of-three", "all-three", "one"],
)
def test_gift_weights_for_several_correct_choices(correct: list[bool], marks: list[str]) -> None:
    opts = ExportOptions()
    (q,) = parse_gift(render("gift", [multi_answer_item(correct)], opts))
    assert [c.mark for c in q.choices] == marks
    weights = [float(m[2:-1]) for m in marks if m.startswith("~%") and not m.startswith("~%-")]
    assert not weights or abs(sum(weights) - 100) < 1e-3


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_gift_hostile_text_round_trips_inert(lang: str) -> None:
    data = export(HOSTILE_BANK, "gift", lang=lang)
    qs = by_id(parse_gift(data))
    recs = records(HOSTILE_BANK)
    langs = ("en", "zh") if lang == "both" else (lang,)
    for qid, q in qs.items():
        rec = recs[qid]
        title = " / ".join(rec["title"][lg] for lg in langs)
        assert visible(q.title) == f"{title} [{qid}]"
        prompt = "\n\n".join(rec["prompt"][lg].strip() for lg in langs)
        assert q.text == block(prompt).strip()
        for part in [q.title, q.text, q.general or "", *(c.text for c in q.choices)]:
            assert_inert(part)
    essay = visible(qs["evil.essay"].text)
    if "en" in langs:
        for raw in ("<script>alert(2)</script>", "{curly}", "~tilde", "=eq", "#hash", ":colon"):
            assert raw in essay
        assert "\\backslash" in essay
        assert "]]> & <style>body{display:none}</style> {} ~=#: \\" in visible(
            qs["evil.essay"].general or ""
        )
        markup = qs["evil.markup"]
        assert [visible(c.text).split(" / ")[0] for c in markup.choices] == [
            "=<b>A</b> {~} #1: \\",
            "~B <script>x</script> }{",
        ]
        assert [c.mark for c in markup.choices] == ["=", "~"]
        assert visible(markup.choices[1].feedback or "").startswith("=wrong ]]> \\n")
    if "zh" in langs:
        assert "解释 <script>alert(2)</script> {花} ~ = # : \\" in essay
    if lang == "both":
        assert essay.index("Explain") < essay.index("解释")


def test_gift_escapes_every_special_in_a_text() -> None:
    data = export(HOSTILE_BANK, "gift").decode()
    # every special in the question texts is escaped: the strict reader found no stray ones
    assert "\\{curly\\} \\~tilde \\=eq \\#hash \\:colon \\\\backslash" in data
    assert "{curly}" not in data


def test_gift_is_byte_stable_and_options_change_it() -> None:
    first = export(QUIZ_BANK, "gift", lang="both", with_code=True)
    assert first == export(QUIZ_BANK, "gift", lang="both", with_code=True)
    assert first != export(QUIZ_BANK, "gift", lang="both")
    assert first != export(QUIZ_BANK, "gift", lang="both", with_code=True, answers=False)
    general = by_id(parse_gift(first))["beta.mean_estimate"].general or ""
    assert "def estimate_mean(samples: list[float]" in visible(general)
    assert b"def estimate_mean" not in export(QUIZ_BANK, "gift", with_code=True, answers=False)


def test_cli_exports_gift_in_both_languages(tmp_path: Path) -> None:
    out = tmp_path / "set.gift.txt"
    result = CliRunner().invoke(
        cli,
        ["--bank", str(QUIZ_BANK), "export", "--format", "gift", "-o", str(out)]
        + ["--lang", "both", "--topic", "alpha"],
    )
    assert result.exit_code == 0, result.output
    qs = by_id(parse_gift(out.read_bytes()))
    assert sorted(qs) == ["alpha.clipping", "alpha.optimizer", "alpha.precision"]
    assert (
        qs["alpha.optimizer"].title
        == "Optimizer for fine-tuning / 微调用的优化器 [alpha.optimizer]"
    )


# -----------------------------------------------------------------------------
# Moodle XML


def quiz_xml(data: bytes) -> list[ET.Element]:
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<quiz>')
    root = ET.fromstring(data)
    assert root.tag == "quiz"
    return list(root)


def xml_questions(data: bytes) -> dict[str, ET.Element]:
    return {q.findtext("idnumber", ""): q for q in quiz_xml(data) if q.get("type") != "category"}


def fractions(q: ET.Element) -> list[str]:
    return [a.get("fraction", "?") for a in q.findall("answer")]


def test_moodle_xml_quiz_questions_kinds_and_fractions() -> None:
    data = export(QUIZ_BANK, "moodle-xml")
    elements = quiz_xml(data)
    categories = [q.findtext("category/text") for q in elements if q.get("type") == "category"]
    assert categories == ["aiprep/alpha", "aiprep/beta", "aiprep/strategy"]
    qs = xml_questions(data)
    assert {k: q.get("type") for k, q in qs.items()} == {
        "alpha.clipping": "essay",
        "alpha.optimizer": "multichoice",
        "alpha.precision": "multichoice",
        "beta.mean_estimate": "essay",
        "strategy.moat": "essay",
    }
    optimizer, precision = qs["alpha.optimizer"], qs["alpha.precision"]
    assert fractions(optimizer) == ["100", "0"]
    assert fractions(precision) == ["0", "100", "0"]
    assert optimizer.findtext("single") == precision.findtext("single") == "true"
    assert [a.findtext("text") for a in precision.findall("answer")] == ["1", "2", "4"]
    assert precision.findtext("answer/feedback/text") == "<p>That is int8 or fp8.</p>"
    assert optimizer.findtext("questiontext/text") == (
        "<p>Which optimizer is the usual default for fine-tuning a transformer?</p>"
    )
    assert optimizer.find("questiontext").get("format") == "html"
    grader = qs["strategy.moat"].findtext("graderinfo/text") or ""
    assert "Proprietary data loops" in grader and "<li>Data flywheel</li>" in grader
    assert qs["alpha.clipping"].findtext("name/text") == "Why clip gradients? [alpha.clipping]"


def test_moodle_xml_student_sheet_has_no_feedback() -> None:
    data = export(QUIZ_BANK, "moodle-xml", answers=False)
    qs = xml_questions(data)
    assert len(qs) == 5
    assert fractions(qs["alpha.precision"]) == ["0", "100", "0"]
    for q in qs.values():
        for path in ("generalfeedback/text", "graderinfo/text", "answer/feedback/text"):
            assert not q.findtext(path), (q.findtext("idnumber"), path)
    for leaked in (b"Two bytes", b"That is float32", b"Data flywheel", b"Proprietary"):
        assert leaked not in data


def test_moodle_xml_several_correct_choices() -> None:
    opts = ExportOptions()
    data = render("moodle-xml", [multi_answer_item([True, False, True])], opts)
    (q,) = xml_questions(data).values()
    assert q.findtext("single") == "false"
    assert fractions(q) == ["50", "-100", "50"]


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_moodle_xml_hostile_text_round_trips_inert(lang: str) -> None:
    data = export(HOSTILE_BANK, "moodle-xml", lang=lang)
    assert b"<script" not in data and b"]]>" not in data
    qs = xml_questions(data)
    recs = records(HOSTILE_BANK)
    langs = ("en", "zh") if lang == "both" else (lang,)
    for qid, q in qs.items():
        rec = recs[qid]
        title = " / ".join(rec["title"][lg] for lg in langs)
        assert visible(q.findtext("name/text") or "") == f"{title} [{qid}]"
        prompt = "\n\n".join(rec["prompt"][lg].strip() for lg in langs)
        assert q.findtext("questiontext/text") == block(prompt).strip()
        for el in q.iter("text"):
            assert_inert(el.text or "")
    markup = qs["evil.markup"]
    texts = [a.findtext("text") for a in markup.findall("answer")]
    choices = recs["evil.markup"]["choices"]
    assert texts == [" / ".join(inline(c["text"][lg].strip()) for lg in langs) for c in choices]
    assert fractions(markup) == ["100", "0"]
    general = visible(markup.findtext("generalfeedback/text") or "")
    if "en" in langs:
        assert "A: <b>not bold</b> {x} ~=#: \\ ]]> <![CDATA[ x ]]>" in general
    if lang == "both":
        assert general.index("not bold") < general.index("不是粗体")


def test_moodle_xml_is_byte_stable_and_options_change_it() -> None:
    first = export(QUIZ_BANK, "moodle-xml", lang="both", with_code=True)
    assert first == export(QUIZ_BANK, "moodle-xml", lang="both", with_code=True)
    assert first != export(QUIZ_BANK, "moodle-xml", with_code=True)
    grader = xml_questions(first)["beta.mean_estimate"].findtext("graderinfo/text") or ""
    assert "def estimate_mean(samples: list[float]" in visible(grader)
    assert b"def estimate_mean" not in export(
        QUIZ_BANK, "moodle-xml", with_code=True, answers=False
    )


# -----------------------------------------------------------------------------
# Golden files (regenerate: see UPDATE)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("quiz.gift.txt", "gift"), ("quiz.moodle.xml", "moodle-xml")],
    ids=["gift", "moodle-xml"],
)
def test_golden(name: str, fmt: str) -> None:
    got = export(QUIZ_BANK, fmt)
    path = GOLDEN / name
    if os.environ.get("AIPREP_UPDATE_GOLDEN"):
        path.write_bytes(got)
    assert path.exists(), f"{path} missing: run {UPDATE}"
    assert got == path.read_bytes(), (
        f"{name} differs from the golden file; if the change is intended, run {UPDATE} "
        "and review the diff"
    )
