"""Anki export: an ``.apkg`` made with genanki, one deck per topic under ``options.title``.

Each question is one note of a fixed note type ("aiprep question": Front, Hints, Back):

- Front: the title and prompt, and for a multiple-choice question its choices (A, B, ...).
  Hints sit behind Anki's ``{{hint:Hints}}`` link on the front.
- Back: the answer and key points; a multiple-choice question first lists its choices
  again, each marked correct (✓) or not (✗) with why; ``with_code`` adds the reference
  solution in a ``<pre><code>`` block. A footer names the question id, kind, difficulty,
  tags and source.
- Student sheet (``answers`` False): the back holds only that footer and a line saying the
  answers were left out; no answer, key point, correct mark, why or solution source is in
  the file. Hints stay: they help without giving the answer away.

What a question shows is decided once, in ``document.py``; texts are Markdown rendered by
``html.py`` (markdown-it, raw HTML disabled), so a ``<script>`` in a question is shown as
text. ``[`` is written ``&#91;`` so that no text can form Anki's ``[sound:...]`` or
``[latex]`` tags, and the card templates wrap the fields in ``class="tex2jax_ignore"`` so
that Anki's MathJax leaves a ``\\(`` in a text alone (the bank has no math).

Tags: ``topic::T``, ``kind::K``, ``difficulty::D`` (hierarchical in Anki's browser) and the
question's own tags, each with whitespace replaced by ``_``.

Same input, same bytes: deck and note type ids are hashes of fixed strings, note GUIDs are
``genanki.guid_for(question id)``, the SQLite file is built in memory and zipped with
``FIXED_TIME``. So importing a newer export updates notes instead of adding copies. A note's
modification time is ``FIXED_EPOCH`` plus a hash of its fields and tags: it changes when
the note does. Anki updates an existing note only when the incoming time differs
("Update notes: Always" in the import dialog) or is newer ("If newer", the default); a
hash is not newer half of the time, so **choose "Always" when importing an updated
export**. Notes edited by hand in Anki are overwritten then.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import sqlite3
import zipfile
from collections.abc import Sequence
from html import escape

import genanki
from pygments.formatters import HtmlFormatter

from aiprep.exporters import FIXED_EPOCH, FIXED_TIME, ExportOptions, Item, langs
from aiprep.exporters.document import Question, document
from aiprep.exporters.html import answer_sections, block, inline

MODEL_NAME = "aiprep question"
FIELDS = ("Front", "Hints", "Back")
FRONT = (
    '<div class="aiprep tex2jax_ignore">{{Front}}'
    '{{#Hints}}<div class="hints">{{hint:Hints}}</div>{{/Hints}}</div>'
)
BACK = '{{FrontSide}}\n<hr id="answer">\n<div class="aiprep tex2jax_ignore">{{Back}}</div>'
CSS = """\
.card { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC",
  "Microsoft YaHei", sans-serif; font-size: 18px; line-height: 1.5; text-align: left;
  color: #1f2328; background: #fff; }
.nightMode.card, .night_mode .card { color: #e6edf3; background: #0d1117; }
.aiprep { max-width: 46rem; margin: 0 auto; }
.aiprep h3 { margin: .2rem 0 .6rem; }
.aiprep pre { padding: .6rem; overflow-x: auto; border-radius: 6px; background: #f6f8fa; }
.nightMode .aiprep pre, .night_mode .aiprep pre { background: #161b22; }
.aiprep code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .9em; }
.aiprep ol.choices { list-style: upper-alpha; }
.aiprep ul.marked { list-style: none; padding-left: .5rem; }
.aiprep .ok { color: #1a7f37; font-weight: 600; } .aiprep .no { color: #cf222e; }
.aiprep .why, .aiprep .meta { color: #59636e; font-size: .9em; }
.aiprep .hints { margin-top: 1rem; }
""" + HtmlFormatter().get_style_defs(".aiprep .highlight")  # code blocks highlighted by html.py
SHEET_NOTE = {
    "en": "Answers are not included in this deck (student sheet).",
    "zh": "本牌组不含答案（学生版）。",
}


def stable_id(name: str) -> int:
    """An id in genanki's recommended range [2**30, 2**31), from a hash of ``name``."""
    digest = hashlib.sha256(f"aiprep:{name}".encode()).digest()
    return (1 << 30) + int.from_bytes(digest[:4], "big") % (1 << 30)


def _inert(html: str) -> str:
    # "[" opens Anki's [sound:], [latex], [$] tags; as an entity it is shown, never parsed.
    return html.replace("[", "&#91;")


def _model() -> genanki.Model:
    return genanki.Model(
        stable_id("model:" + MODEL_NAME),
        MODEL_NAME,
        fields=[{"name": name} for name in FIELDS],
        templates=[{"name": "Question", "qfmt": FRONT, "afmt": BACK}],
        css=CSS,
    )


def _front(q: Question) -> str:
    out = [f"<h3>{inline(q.title)}</h3>", block(q.prompt)]
    if q.choices:
        out.append('<ol class="choices">')
        out += [f"<li>{inline(c.text)}</li>" for c in q.choices]
        out.append("</ol>")
    return _inert("\n".join(out))


def _hints(q: Question) -> str:
    if not q.hints:
        return ""
    return _inert("<ol>" + "".join(f"<li>{block(h)}</li>" for h in q.hints) + "</ol>")


def _back(q: Question, heads: dict[str, str], options: ExportOptions) -> str:
    out = answer_sections(q, heads, highlight=False)
    if not options.answers:
        out.append("<p>" + escape(" / ".join(SHEET_NOTE[lg] for lg in langs(options))) + "</p>")
    out.append(f'<p class="meta">{escape(q.id)} · {escape(q.meta)} · {escape(q.source)}</p>')
    return _inert("\n".join(out))


def tag(value: str) -> str:
    """An Anki tag: no whitespace (a space separates tags)."""
    return re.sub(r"\s+", "_", value.strip())


def _tags(item: Item) -> list[str]:
    q = item.record
    own = [tag(t) for t in q["tags"]]
    fixed = [f"topic::{item.topic}", f"kind::{q['kind']}", f"difficulty::{q['difficulty']}"]
    return sorted({t for t in [*(tag(t) for t in fixed), *own] if t})


def _mtime(fields: Sequence[str], tags: Sequence[str]) -> int:
    digest = hashlib.sha256("\x1f".join([*fields, " ".join(tags)]).encode()).digest()
    return FIXED_EPOCH + int.from_bytes(digest[:3], "big")


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    """The ``.apkg`` bytes: a zip of ``collection.anki2`` (SQLite) and an empty ``media``."""
    doc = document(items, options)
    by_id = {item.id: item for item in items}
    model = _model()
    decks, mtimes = [], {}
    for topic in doc.topics:
        name = f"{options.title.strip() or 'aiprep questions'}::{topic.name}"
        deck = genanki.Deck(stable_id("deck:" + name), name)
        for q in topic.questions:
            fields = [_front(q), _hints(q), _back(q, doc.heads, options)]
            tags = _tags(by_id[q.id])
            guid = genanki.guid_for(by_id[q.id].first_id)  # a moved question keeps its note
            deck.add_note(genanki.Note(model=model, fields=fields, tags=tags, guid=guid))
            mtimes[guid] = _mtime(fields, tags)
        decks.append(deck)

    conn = sqlite3.connect(":memory:")
    try:
        cursor = conn.cursor()
        ids = itertools.count(FIXED_EPOCH * 1000)  # note and card ids, in export order
        genanki.Package(decks).write_to_db(cursor, FIXED_EPOCH, ids)
        for guid, mtime in mtimes.items():
            cursor.execute("UPDATE notes SET mod = ? WHERE guid = ?", (mtime, guid))
            cursor.execute(
                "UPDATE cards SET mod = ? WHERE nid = (SELECT id FROM notes WHERE guid = ?)",
                (mtime, guid),
            )
        conn.commit()
        collection = conn.serialize()
    finally:
        conn.close()

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in (("collection.anki2", collection), ("media", b"{}")):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out.getvalue()
