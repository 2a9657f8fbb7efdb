"""Moodle XML: a ``<quiz>`` with a category per topic, then its questions.

A multiple-choice question becomes ``type="multichoice"`` (``<single>`` true when exactly one
choice is correct; fractions as in ``_lms.fractions``) with each choice's ``why`` as its
``<feedback>``. Every other kind becomes ``type="essay"`` with the answer, key points and
(``with_code``) solution as ``<graderinfo>``, which only graders see. A multichoice
question's general feedback holds the same reference text.

All texts are HTML (``format="html"``) escaped by ElementTree, not wrapped in CDATA, so a
``]]>`` inside a text needs no special care. With ``answers`` off, feedback, general
feedback and grader information are left empty; the fractions stay, as Moodle grades by them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from aiprep.exporters import ExportOptions, Item, _lms


def _text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
    """``<tag format="html"><text>value</text></tag>`` (``format`` first, for stable output)."""
    el = ET.SubElement(parent, tag, attrs)
    ET.SubElement(el, "text").text = value
    return el


def _leaf(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, tag).text = value


def _category(quiz: ET.Element, topic: str) -> None:
    q = ET.SubElement(quiz, "question", {"type": "category"})
    _text(q, "category", f"aiprep/{topic}")


def _question(quiz: ET.Element, e: _lms.Entry) -> None:
    q = e.question
    kind = "multichoice" if q.choices else "essay"
    el = ET.SubElement(quiz, "question", {"type": kind})
    _text(el, "name", _lms.name(q))
    _text(el, "questiontext", _lms.prompt_html(q), format="html")
    reference = _lms.reference_html(q) or ""
    _text(el, "generalfeedback", reference if q.choices else "", format="html")
    _leaf(el, "defaultgrade", "1")
    _leaf(el, "penalty", "0.3333333" if q.choices else "0")
    _leaf(el, "hidden", "0")
    _leaf(el, "idnumber", q.id)
    if not q.choices:
        _leaf(el, "responseformat", "editor")
        _leaf(el, "responserequired", "1")
        _leaf(el, "responsefieldlines", "15")
        _leaf(el, "attachments", "0")
        _leaf(el, "attachmentsrequired", "0")
        _text(el, "graderinfo", reference, format="html")
        _text(el, "responsetemplate", "", format="html")
        return
    _leaf(el, "single", "true" if sum(e.correct) == 1 else "false")
    _leaf(el, "shuffleanswers", "true")
    _leaf(el, "answernumbering", "abc")
    for choice, fraction in zip(q.choices, _lms.fractions(e.correct), strict=True):
        answer = _text(el, "answer", _lms.choice_html(choice), fraction=fraction, format="html")
        _text(answer, "feedback", _lms.why_html(choice) or "", format="html")


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    """The questions as Moodle XML, grouped by topic (sorted), in id order within a topic."""
    quiz = ET.Element("quiz")
    topic = None
    for e in _lms.entries(items, options):
        if e.topic != topic:
            topic = e.topic
            _category(quiz, topic)
        _question(quiz, e)
    ET.indent(quiz)
    body = ET.tostring(quiz, encoding="unicode", short_empty_elements=False)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")
