"""One renderer of a question, shared by the Markdown and HTML exports.

``document`` turns the items into a neutral structure (topics, questions, each part as
Markdown source); ``markdown.py`` and ``html.py`` only serialize it. What a question shows,
in which order, and what a student sheet leaves out is decided here, once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiprep.exporters import ExportOptions, Item, langs
from aiprep.exporters.evidence import Evidence, evidence_of
from aiprep.lang import Bilingual

LETTERS = "ABCDEFGHIJ"
HEADS = {
    "en": {
        "contents": "Contents",
        "hints": "Hints",
        "answer": "Answer",
        "key_points": "Key points",
        "code": "Reference solution",
        "show": "Show the answer",
        "show_hints": "Show the hints",
        "questions": "questions",
        "with_answers": "answers included",
        "students": "student sheet, no answers",
        "as_of": "as of",
        "references": "References",
        "evidence": "Measured",
        "checks": "Checks",
        "metrics": "Metrics",
        "verdict_passed": "passed",
        "checks_hold": "checks hold",
        "measured_on": "measured",
        "value": "value",
        "rule": "rule",
    },
    "zh": {
        "contents": "目录",
        "hints": "提示",
        "answer": "参考答案",
        "key_points": "要点",
        "code": "参考实现",
        "show": "显示答案",
        "show_hints": "显示提示",
        "questions": "道题",
        "with_answers": "含参考答案",
        "students": "学生版，不含答案",
        "as_of": "信息截至",
        "references": "参考资料",
        "evidence": "实测结果",
        "checks": "检查",
        "metrics": "指标",
        "verdict_passed": "通过",
        "checks_hold": "项检查成立",
        "measured_on": "测于",
        "value": "数值",
        "rule": "判据",
    },
}


@dataclass
class Choice:
    letter: str
    text: str  # Markdown
    correct: bool | None  # None on a student sheet
    why: str | None


@dataclass
class Question:
    id: str
    anchor: str  # safe for an HTML id and a URL fragment
    title: str  # inline Markdown
    meta: str  # plain text: kind · difficulty · tags
    prompt: str  # Markdown
    choices: list[Choice]
    hints: list[str]
    answer: str | None  # None on a student sheet
    key_points: list[str]
    code: str | None
    source: str  # plain text
    as_of: str | None  # "as of 2026-11" in the sheet's language(s), beside the answer; or None
    references: list[tuple[str, str]] = field(default_factory=list)  # (title, url); answers only
    # What a smoke run of its reference measured (``--results``); answers only.
    evidence: Evidence | None = None


@dataclass
class Topic:
    name: str
    questions: list[Question] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    lang: str  # the first language shown: the page's language
    heads: dict[str, str]
    topics: list[Topic]


def heading(key: str, options: ExportOptions) -> str:
    return " / ".join(HEADS[lg][key] for lg in langs(options))


def document(items: Sequence[Item], options: ExportOptions) -> Document:
    ls = langs(options)

    def md(value: Bilingual) -> str:
        return "\n\n".join(value[lg].strip() for lg in ls)

    def inline(value: Bilingual) -> str:
        return " / ".join(value[lg].strip() for lg in ls)

    topics: dict[str, Topic] = {}
    for item in items:
        q = item.record
        choices = [
            Choice(
                LETTERS[i],
                inline(c["text"]),
                c["correct"] if options.answers else None,
                md(c["why"]) if options.answers else None,
            )
            for i, c in enumerate(q["choices"] or [])
        ]
        source = q["source"]
        where = (
            source
            if isinstance(source, str)
            else "; ".join(f"{s['seed']} § {s['section']}" for s in source)
        )
        topics.setdefault(item.topic, Topic(item.topic)).questions.append(
            Question(
                id=item.id,
                anchor="q-" + re.sub(r"[^a-z0-9_-]", "-", item.id),
                title=inline(q["title"]),
                meta=" · ".join([q["kind"], q["difficulty"], ", ".join(q["tags"])]),
                prompt=md(q["prompt"]),
                choices=choices,
                hints=[md(h) for h in q["hints"]],
                answer=md(q["answer"]) if options.answers else None,
                key_points=[inline(k) for k in q["key_points"]] if options.answers else [],
                code=item.code if options.answers else None,
                source=where,
                as_of=(
                    f"{heading('as_of', options)} {q['as_of']}"
                    if q.get("as_of") and options.answers
                    else None
                ),
                references=(
                    [(r["title"], r["url"]) for r in q.get("references") or []]
                    if options.answers
                    else []
                ),
                evidence=evidence_of(item.id, options.results) if options.answers else None,
            )
        )
    count = len(items)
    sheet = heading("with_answers" if options.answers else "students", options)
    names = ", ".join(sorted(topics))
    counted = " / ".join(f"{count} {HEADS[lg]['questions']}" for lg in ls)
    return Document(
        title=options.title,
        subtitle=f"{counted} · {names} · {sheet}",
        lang=ls[0],
        heads={key: heading(key, options) for key in HEADS["en"]},
        topics=[topics[name] for name in sorted(topics)],
    )
