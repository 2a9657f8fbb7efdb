"""Questions as HTML parts for the learning-system formats (GIFT, Moodle XML, QTI).

What a question shows and what a student sheet leaves out comes from the shared
``document`` renderer; Markdown becomes HTML through ``html.block``/``html.inline``
(markdown-it-py with raw HTML disabled), so a ``<script>`` in a text reaches the learner
as the characters ``<script>``, never as markup. Each format then escapes these HTML
strings by its own rules. One thing ``document`` drops on a student sheet is kept here:
which choices are correct, as a learning system grades by it and never shows it before
the attempt is over.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from aiprep.exporters import ExportOptions, Item
from aiprep.exporters.document import Choice, Question, document
from aiprep.exporters.html import (
    block,
    code_block,
    inline,
    plain,
    points_list,
    references_list,
)

# Characters XML 1.0 forbids; a stray one would make the whole file unparsable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Entry:
    topic: str
    question: Question  # the shared parts; answer, key points, whys None/empty without answers
    correct: list[bool]  # the grading key, one flag per choice, kept on a student sheet too


def entries(items: Sequence[Item], options: ExportOptions) -> list[Entry]:
    """The questions grouped by topic (sorted), in id order within a topic."""
    flags = {it.id: [bool(c["correct"]) for c in it.record.get("choices") or []] for it in items}
    ordered = sorted(items, key=lambda it: it.id)
    return [
        Entry(topic.name, q, flags[q.id])
        for topic in document(ordered, options).topics
        for q in topic.questions
    ]


def xml_safe(value: str) -> str:
    """``value`` with characters that XML 1.0 cannot carry replaced by U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", value)


def name(q: Question, *, html: bool = True) -> str:
    """The question's name in the learning system: its title as plain text (Markdown's
    backticks and stars dropped: a name shows no markup), then its id in brackets.

    Moodle treats a question name as HTML (``format_string`` strips tags, keeps entities),
    so by default the plain text is HTML-escaped: a ``<script>`` in a title shows as text.
    Canvas shows an item title as plain text: ``html=False`` leaves it unescaped.
    """
    title = plain(q.title)
    return xml_safe(f"{escape(title, quote=False) if html else title} [{q.id}]")


def prompt_html(q: Question) -> str:
    """What the learner reads: the prompt as HTML."""
    return xml_safe(block(q.prompt).strip())


def choice_html(c: Choice) -> str:
    return xml_safe(inline(c.text).strip())


def why_html(c: Choice) -> str | None:
    """A choice's feedback as HTML, or None (a student sheet, or no why)."""
    return xml_safe(block(c.why).strip()) if c.why else None


def reference_html(q: Question) -> str | None:
    """What the grader reads: answer, key points, solution (``with_code``); None without answers."""
    if q.answer is None:
        return None
    parts = [f"<p><em>{escape(q.as_of)}</em></p>"] if q.as_of else []
    parts.append(block(q.answer).strip())
    if q.key_points:
        parts.append(points_list(q.key_points))
    if q.references:
        parts.append(references_list(q.references))
    if q.code is not None:
        parts.append(code_block(q.code, highlight=False))
    return xml_safe("\n".join(parts))


def fractions(correct: Sequence[bool]) -> list[str]:
    """Moodle grade percentages for each choice, as Moodle writes them.

    One correct choice: it gets ``100``, the others ``0``. Several: the correct ones share
    100 (``50``, ``33.33333``, ...: values on Moodle's list of grades up to ten correct
    choices) and each wrong one gets ``-100``, Moodle's documented pattern for a
    multiple-answer question, so ticking every box scores nothing (Moodle floors at 0).
    """
    right = sum(correct)
    share = f"{100 / right:.7g}"
    wrong = "0" if right == 1 else "-100"
    return [share if c else wrong for c in correct]


def ident(*parts: str) -> str:
    """A fixed identifier derived from ``parts`` (a question id, a choice index)."""
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]
