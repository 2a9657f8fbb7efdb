"""Markdown export: one file, a table of contents by topic, a section per question.

The question texts are Markdown already and go in as they are, except that ``<`` outside
code is written ``&lt;``: a Markdown viewer that passes HTML through must show a
question's ``<script>`` as text, never run it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiprep.exporters import ExportOptions, Item
from aiprep.exporters.document import Document, Question, document
from aiprep.exporters.evidence import Evidence, summary

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def inert(text: str) -> str:
    """``text`` with every ``<`` outside code fences and code spans escaped."""
    out, fence = [], ""
    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if fence:
            out.append(line)
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = ""
            continue
        if marker:
            fence = marker.group(1)
            out.append(line)
            continue
        parts, last = [], 0
        for span in _CODE_SPAN.finditer(line):
            parts.append(line[last : span.start()].replace("<", "&lt;"))
            parts.append(span.group(0))
            last = span.end()
        parts.append(line[last:].replace("<", "&lt;"))
        out.append("".join(parts))
    return "\n".join(out)


def _cell(text: str) -> str:
    return inert(text).replace("|", "\\|").replace("\n", " ")


def _evidence(ev: Evidence, heads: dict[str, str], assets: str) -> list[str]:
    """The measured evidence: a table of checks, the metrics, and each chart as an image
    whose SVG file lies in ``assets`` beside the .md file (Markdown viewers such as
    GitHub's drop inline ``<svg>``, but show an image file)."""
    lines = [f"#### {heads['evidence']} · {inert(summary(ev, heads))}", ""]
    if ev.message and not ev.passed:
        lines += [f"> {_cell(ev.message)}", ""]
    if ev.checks:
        lines += [
            f"| | {heads['checks']} | {heads['value']} | {heads['rule']} |",
            "|---|---|---|---|",
        ]
        for c in ev.checks:
            mark = "✓" if c.passed else "✗"
            lines.append(f"| {mark} | {_cell(c.name)} | {_cell(c.value)} | {_cell(c.rule)} |")
        lines.append("")
    if ev.metrics:
        lines += [f"{heads['metrics']}:", ""]
        lines += [f"- {inert(name)}: **{inert(value)}**" for name, value in ev.metrics]
        if ev.more_metrics:
            lines.append(f"- and {ev.more_metrics} more")
        lines.append("")
    for chart in ev.charts:
        lines += [f"![{_cell(chart.metric)} by step](<{assets}/{chart.file}>)", ""]
    return lines


def assets(items: Sequence[Item], options: ExportOptions) -> dict[str, bytes]:
    """The chart files the Markdown links to, by file name (in ``options.assets``)."""
    out = {}
    for topic in document(items, options).topics:
        for q in topic.questions:
            for chart in q.evidence.charts if q.evidence else []:
                out[chart.file] = chart.svg.encode("utf-8")
    return out


def _question(q: Question, doc: Document, assets: str = "") -> list[str]:
    h = doc.heads
    lines = [f'<a id="{q.anchor}"></a>', "", f"### {q.id}: {inert(q.title)}", ""]
    lines += [f"*{inert(q.meta)}*", "", inert(q.prompt), ""]
    if q.choices:
        for c in q.choices:
            mark = "" if c.correct is None else ("✓ " if c.correct else "✗ ")
            lines.append(f"- **{c.letter}.** {mark}{inert(c.text)}")
            if c.why:  # a quote inside the list item, any number of paragraphs
                lines += ["", "  > " + inert(c.why).replace("\n", "\n  > "), ""]
        if lines[-1]:
            lines.append("")
    if q.hints:
        lines += [f"#### {h['hints']}", ""]
        lines += [f"{i}. {inert(hint)}".replace("\n", "\n   ") for i, hint in enumerate(q.hints, 1)]
        lines.append("")
    if q.answer is not None:
        dated = f" · {q.as_of}" if q.as_of else ""
        lines += [f"#### {h['answer']}{dated}", "", inert(q.answer), ""]
    if q.key_points:
        lines += [f"#### {h['key_points']}", ""]
        lines += [f"- [ ] {inert(k)}" for k in q.key_points]
        lines.append("")
    if q.references:
        lines += [f"#### {h['references']}", ""]
        lines += [f"- [{inert(title)}](<{url}>)" for title, url in q.references]
        lines.append("")
    if q.code is not None:
        fence = "`" * max([3, *(len(m) + 1 for m in re.findall(r"`{3,}", q.code))])
        lines += [f"#### {h['code']}", "", f"{fence}python", q.code.rstrip("\n"), fence, ""]
    if q.evidence is not None:
        lines += _evidence(q.evidence, h, assets)
    lines += [f"<sub>source: {inert(q.source)}</sub>", ""]
    return lines


def render_text(items: Sequence[Item], options: ExportOptions) -> str:
    doc = document(items, options)
    lines = [f"# {inert(doc.title)}", "", doc.subtitle, "", f"## {doc.heads['contents']}", ""]
    for topic in doc.topics:
        links = ", ".join(f"[{q.id}](#{q.anchor})" for q in topic.questions)
        lines.append(f"- **{topic.name}**: {links}")
    lines.append("")
    for topic in doc.topics:
        lines += [f"## {topic.name}", ""]
        for q in topic.questions:
            lines += _question(q, doc, options.assets)
    text = "\n".join(lines).rstrip("\n") + "\n"
    return "\n".join(line.rstrip() for line in text.split("\n"))


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    return render_text(items, options).encode("utf-8")
