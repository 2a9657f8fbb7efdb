"""The Anki export, checked by importing it with Anki's own library into a fresh collection."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import genanki
import pytest
from anki.collection import Collection
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
    ImportAnkiPackageUpdateCondition,
)
from anki.notes import Note
from click.testing import CliRunner

from aiprep.bank import Record, load_bank
from aiprep.cli import cli
from aiprep.exporters import FIXED_TIME, ExportOptions, Item, items
from aiprep.exporters.anki import render
from conftest import FIXTURES

QUIZ = FIXTURES / "quiz"
HOSTILE = FIXTURES / "hostile"
ALWAYS = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_ALWAYS


class Page(HTMLParser):
    """The elements and the visible text of an HTML fragment, as a browser would parse it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def records(root: Path) -> list[Record]:
    return list(load_bank(root, use_cache=False).questions.values())


def export(root: Path, **options: Any) -> tuple[list[Item], bytes]:
    opts = ExportOptions(**options)
    exported = items(root, records(root), opts)
    return exported, render(exported, opts)


@pytest.fixture
def col(tmp_path: Path) -> Iterator[Collection]:
    c = Collection(str(tmp_path / "collection.anki2"))
    yield c
    c.close()


def import_apkg(col: Collection, data: bytes, path: Path) -> Any:
    path.write_bytes(data)
    request = ImportAnkiPackageRequest(
        package_path=str(path), options=ImportAnkiPackageOptions(update_notes=ALWAYS)
    )
    return col.import_anki_package(request).log


def notes(col: Collection) -> dict[str, Note]:
    """The collection's notes by GUID."""
    return {n.guid: n for n in (col.get_note(nid) for nid in col.find_notes(""))}


def visible(field: str) -> str:
    return Page(field).text


def plain(markdown: str) -> str:
    """The visible text of the fixtures' simple Markdown (emphasis and code spans only)."""
    return re.sub(r"[*`]", "", markdown.strip())


def by_guid(exported: Sequence[Item]) -> dict[str, Item]:
    return {genanki.guid_for(item.id): item for item in exported}


def test_import_holds_one_note_per_question(col: Collection, tmp_path: Path) -> None:
    exported, data = export(QUIZ, title="aiprep questions::training", with_code=True)
    log = import_apkg(col, data, tmp_path / "set.apkg")
    assert len(log.new) == 5 and col.note_count() == 5
    found = notes(col)
    assert found.keys() == by_guid(exported).keys()  # GUIDs come from the question ids
    names = {d.name for d in col.decks.all_names_and_ids()}
    assert {"aiprep questions::training::alpha", "aiprep questions::training::beta"} <= names
    assert "aiprep questions::training::strategy" in names
    for guid, item in by_guid(exported).items():
        note, q = found[guid], item.record
        front, back = visible(note["Front"]), visible(note["Back"])
        assert plain(q["prompt"]["en"]) in front
        assert plain(q["answer"]["en"]) in back
        assert q["key_points"][0]["en"] in back
        assert visible(note["Hints"]).startswith(q["hints"][0]["en"])
        assert set(note.tags) == {
            f"topic::{item.topic}",
            f"kind::{q['kind']}",
            f"difficulty::{q['difficulty']}",
            *q["tags"],
        }
        (card,) = note.cards()
        assert col.decks.name(card.did) == f"aiprep questions::training::{item.topic}"
        assert plain(q["prompt"]["en"]) in visible(card.question())

    coding = found[genanki.guid_for("beta.mean_estimate")]
    code = (QUIZ / "solutions/beta/mean_estimate.py").read_text(encoding="utf-8")
    assert '<pre><code class="language-python">' in coding["Back"]
    assert code in visible(coding["Back"])  # escaped in the field, intact once parsed


def test_multiple_choice_front_lists_choices_back_marks_correct(
    col: Collection, tmp_path: Path
) -> None:
    _, data = export(QUIZ)
    import_apkg(col, data, tmp_path / "set.apkg")
    note = notes(col)[genanki.guid_for("alpha.precision")]
    front, back = visible(note["Front"]), visible(note["Back"])
    assert "How many bytes does one bfloat16 parameter take?" in front
    assert Page(note["Front"]).tags.count("li") == 3 and "✓" not in front
    assert "✗ A. 1" in back and "✓ B. 2" in back and "✗ C. 4" in back
    assert "That is float32." in back  # each choice's why


def test_student_sheet_leaves_out_answers(col: Collection, tmp_path: Path) -> None:
    exported, data = export(QUIZ, answers=False, with_code=True, lang="both")
    import_apkg(col, data, tmp_path / "set.apkg")
    found = notes(col)
    assert len(found) == 5
    for guid, item in by_guid(exported).items():
        q, note = item.record, found[guid]
        back = visible(note["Back"])
        assert plain(q["prompt"]["zh"]) in visible(note["Front"])
        for lg in ("en", "zh"):
            assert plain(q["answer"][lg]) not in back
            assert all(k[lg] not in back for k in q["key_points"])
            assert all(c["why"][lg] not in back for c in q["choices"] or [])
        assert "✓" not in back and "✗" not in back and "<pre>" not in note["Back"]
        assert "student sheet" in back
    assert "Plain SGD" in visible(found[genanki.guid_for("alpha.optimizer")]["Front"])


def test_reimport_of_changed_export_updates_instead_of_duplicating(
    col: Collection, tmp_path: Path
) -> None:
    opts = ExportOptions()
    first = items(QUIZ, records(QUIZ), opts)
    import_apkg(col, render(first, opts), tmp_path / "first.apkg")
    untouched = {g: (n["Back"], n.mod) for g, n in notes(col).items()}

    edited = [
        Item({**i.record, "answer": {"en": "Edited: clip by norm.", "zh": "改过"}})
        if i.id == "alpha.clipping"
        else i
        for i in first
    ]
    log = import_apkg(col, render(edited, opts), tmp_path / "second.apkg")
    assert (len(log.new), len(log.updated), len(log.duplicate)) == (0, 1, 4)
    found = notes(col)
    assert col.note_count() == 5
    changed = genanki.guid_for("alpha.clipping")
    assert "Edited: clip by norm." in visible(found[changed]["Back"])
    assert "It bounds the update" not in visible(found[changed]["Back"])
    for guid, (back, mod) in untouched.items():
        if guid != changed:
            assert (found[guid]["Back"], found[guid].mod) == (back, mod)


def test_hostile_text_is_escaped_and_intact(col: Collection, tmp_path: Path) -> None:
    opts = ExportOptions(lang="both")
    exported = items(HOSTILE, records(HOSTILE), opts)
    essay = next(i for i in exported if i.id == "evil.essay")
    noisy = Item(
        {**essay.record, "hints": [{"en": "[sound:evil.mp3] [latex]x[/latex]", "zh": "["}]}
    )
    exported = [noisy if i is essay else i for i in exported]
    import_apkg(col, render(exported, opts), tmp_path / "evil.apkg")
    found = notes(col)
    assert len(found) == 2
    shown = ""
    for note in found.values():
        (card,) = note.cards()
        for html in note.fields:
            assert not {"script", "style", "img", "iframe", "textarea", "u", "i"} & set(
                Page(html).tags
            ), html
        for html in (card.question(), card.answer()):  # as Anki shows it: our CSS, no script
            tags = Page(html).tags
            assert tags.count("style") == 1 and not {"script", "img", "iframe"} & set(tags)
            assert 'class="aiprep tex2jax_ignore"' in html  # Anki's MathJax skips our text
        assert card.question_av_tags() == [] and card.answer_av_tags() == []
        shown += "\n".join(visible(f) for f in note.fields)
    for text in [
        "<script>alert(2)</script>",
        "<img src=x onerror=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        "</textarea><script>x</script> {~=#:} \\",
        "<style>body{display:none}</style> {} ~=#: \\",
        "=<b>甲</b> {~} #1: \\",
        "~B <script>x</script> }{",
        "<u>要</u> \\",
        "=wrong ]]> \\n",
        "[sound:evil.mp3] [latex]x[/latex]",
        "解释 <script>alert(2)</script> {花} ~ = # : \\",
    ]:
        assert text in shown, text


def test_same_input_same_bytes() -> None:
    _, first = export(QUIZ, with_code=True, lang="both")
    _, again = export(QUIZ, with_code=True, lang="both")
    assert first == again
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert zf.namelist() == ["collection.anki2", "media"]
        assert {i.date_time for i in zf.infolist()} == {FIXED_TIME}
    _, student = export(QUIZ, with_code=True, lang="both", answers=False)
    _, english = export(QUIZ, with_code=True)
    assert len({first, student, english}) == 3


def test_cli_writes_an_apkg(tmp_path: Path) -> None:
    out = tmp_path / "set.apkg"
    args = ["--bank", str(QUIZ), "export", "--format", "anki", "-o", str(out), "--topic", "alpha"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    opts = ExportOptions()
    alpha = [q for q in records(QUIZ) if q["id"].startswith("alpha.")]
    assert out.read_bytes() == render(items(QUIZ, alpha, opts), opts)


def test_a_moved_question_updates_its_old_note(col: Collection, tmp_path: Path) -> None:
    """alpha.clipping re-homed as gamma.clipping (``moved_from: [alpha.clipping]``): the new
    deck, imported over the old one, updates that note and adds none."""
    opts = ExportOptions()
    first = items(QUIZ, records(QUIZ), opts)
    import_apkg(col, render(first, opts), tmp_path / "first.apkg")
    moved = [
        Item({**i.record, "id": "gamma.clipping", "moved_from": ["alpha.clipping"]})
        if i.id == "alpha.clipping"
        else i
        for i in first
    ]
    log = import_apkg(col, render(moved, opts), tmp_path / "moved.apkg")
    assert len(log.new) == 0 and col.note_count() == len(first)
    note = notes(col)[genanki.guid_for("alpha.clipping")]
    assert "gamma.clipping" in visible(note["Back"])  # the note now shows its new id
