"""Moodle GIFT text: one ``$CATEGORY: aiprep/<topic>`` per topic, then its questions.

A multiple-choice question becomes a GIFT multichoice question: ``=`` marks the one
correct choice, or, with several correct, ``~%50%`` style weights that sum to 100 and
``~%-100%`` on the wrong ones. Every other kind becomes an essay question (``{}``).

Every text is HTML (see ``_lms``) behind an explicit ``[html]`` marker, on the question
text, each choice, each feedback and the general feedback: explicit, so that a choice whose
own text begins with ``[markdown]`` is not taken for a format marker. The GIFT specials
``~ = # { } :`` and the backslash are escaped with a backslash, and a newline is written as
``\\n``, so each question text stays on one line: a blank line would end the question and a
line starting ``//`` would be dropped as a comment.

GIFT has no field for an essay's reference answer (Moodle XML's ``graderinfo``), so the
answer, key points and (``with_code``) solution go into the general feedback
(``####``), which Moodle shows after an attempt. On a multichoice question the general
feedback holds the same, and each choice's ``why`` is its ``#`` feedback.

With ``answers`` off, the feedback and general feedback are left out. The correct marks
stay: they are how Moodle grades a multichoice question, and Moodle never shows them to a
student before the attempt is over.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiprep.exporters import ExportOptions, Item, _lms

_SPECIAL = re.compile(r"([\\~=#{}:])")


def escape(value: str) -> str:
    """``value`` with every GIFT special escaped and newlines as ``\\n``: one inert line."""
    escaped = _SPECIAL.sub(r"\\\1", value.replace("\r\n", "\n").replace("\r", "\n"))
    return escaped.replace("\n", "\\n")


def _html(value: str) -> str:
    return "[html]" + escape(value)


def _question(e: _lms.Entry) -> str:
    q = e.question
    head = f"::{escape(_lms.name(q))}::{_html(_lms.prompt_html(q))}"
    reference = _lms.reference_html(q)
    general = "" if reference is None else f"####{_html(reference)}"
    if not q.choices:
        return f"{head}{{{general}}}"
    single = sum(e.correct) == 1
    lines = [head + "{"]
    for choice, correct, fraction in zip(
        q.choices, e.correct, _lms.fractions(e.correct), strict=True
    ):
        if single:
            mark = "=" if correct else "~"
        else:
            mark = f"~%{fraction}%"
        line = mark + _html(_lms.choice_html(choice))
        why = _lms.why_html(choice)
        if why is not None:
            line += "#" + _html(why)
        lines.append(line)
    if general:
        lines.append(general)
    lines.append("}")
    return "\n".join(lines)


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    """The questions as GIFT, grouped by topic (sorted), in id order within a topic."""
    header = " ".join(options.title.split())
    sheet = "with answers" if options.answers else "without answers"
    blocks = [f"// {header}\n// aiprep export, Moodle GIFT, lang {options.lang}, {sheet}"]
    topic = None
    for e in _lms.entries(items, options):
        if e.topic != topic:
            topic = e.topic
            blocks.append(f"$CATEGORY: aiprep/{topic}")
        blocks.append(_question(e))
    return ("\n\n".join(blocks) + "\n").encode("utf-8")
