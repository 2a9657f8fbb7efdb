"""HTML export: one standalone page (inline CSS, no script, no external resource).

Question texts are Markdown rendered by markdown-it with raw HTML disabled, so a
``<script>`` in a question is shown as text; code blocks are highlighted by Pygments.
Answers (and hints) fold away behind a toggle made of a checkbox and CSS, which needs
no JavaScript; printing shows everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from aiprep.exporters import ExportOptions, Item
from aiprep.exporters.document import Choice, Document, Question, document
from aiprep.exporters.evidence import Evidence, summary

_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, attrs: Any) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    return f'<pre class="highlight"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>\n'


_MD = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})


def block(markdown: str) -> str:
    return str(_MD.render(markdown))


def inline(markdown: str) -> str:
    return str(_MD.renderInline(markdown))


def plain(markdown: str) -> str:
    """One line of Markdown as plain text: what it shows, without its markup (a name in a
    learning system, where `code` or **bold** would show as backticks or tags)."""
    out: list[str] = []
    for token in _MD.parseInline(markdown):
        for child in token.children or []:
            if child.type in ("text", "code_inline", "html_inline"):
                out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                out.append(" ")
    return "".join(out).strip()


CSS = """
:root { --fg: #1f2328; --dim: #59636e; --line: #d1d9e0; --ok: #1a7f37; --no: #cf222e; }
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC",
  "Microsoft YaHei", sans-serif; color: var(--fg); max-width: 52rem; margin: 2rem auto;
  padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .subtitle, .meta, .source, .as-of { color: var(--dim); }
.meta, .source, .as-of { font-size: .9rem; }
nav.toc ul { padding-left: 1.2rem; } nav.toc a { text-decoration: none; }
article { border-top: 1px solid var(--line); padding: .6rem 0 1rem; break-inside: avoid-page; }
h3 { margin: .6rem 0 .2rem; } h3 .qid { font-family: ui-monospace, monospace;
  font-weight: normal; color: var(--dim); font-size: .85em; }
pre { background: #f6f8fa; padding: .7rem; overflow-x: auto; border-radius: 6px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
ol.choices { list-style: upper-alpha; } ol.choices li { margin: .2rem 0; }
.ok { color: var(--ok); font-weight: 600; } .no { color: var(--no); }
.why { color: var(--dim); margin: .1rem 0 .4rem; }
.toggle { position: absolute; opacity: 0; }
.toggle + label { display: inline-block; cursor: pointer; color: #0969da; margin: .3rem 0; }
.toggle + label::before { content: "▸ "; } .toggle:checked + label::before { content: "▾ "; }
.toggle:focus-visible + label { outline: 2px solid #0969da; }
.folded { display: none; } .toggle:checked + label + .folded { display: block; }
ul.points { list-style: "☐ "; } ul.marked { list-style: none; padding-left: .5rem; }
.evidence { border-left: 3px solid var(--line); padding-left: .8rem; margin: .6rem 0; }
.evidence.passed { border-color: var(--ok); } .evidence.failed { border-color: var(--no); }
.evidence table { border-collapse: collapse; font-size: .9rem; }
.evidence td, .evidence th { padding: .1rem .6rem .1rem 0; text-align: left; }
.evidence td.num { font-family: ui-monospace, monospace; }
.evidence .metrics { color: var(--dim); font-size: .9rem; }
.evidence figure { margin: .4rem 0; }
.evidence svg { display: block; max-width: 100%; height: auto; }
@media print {
  body { margin: 0; max-width: none; } .toggle + label { display: none; }
  .folded { display: block; } nav.toc { break-after: page; } a { color: inherit; }
}
"""


# -----------------------------------------------------------------------------
# Answer fragments, shared with the Anki, Moodle and QTI exports


def marked_choices(choices: Sequence[Choice]) -> str:
    """Each choice marked right (✓) or wrong (✗), with why it is."""
    items = []
    for c in choices:
        mark = '<span class="ok">✓</span>' if c.correct else '<span class="no">✗</span>'
        why = f'<div class="why">{block(c.why)}</div>' if c.why else ""
        items.append(f"<li>{mark} <b>{c.letter}.</b> {inline(c.text)}{why}</li>")
    return '<ul class="marked">' + "".join(items) + "</ul>"


def points_list(points: Sequence[str]) -> str:
    return '<ul class="points">' + "".join(f"<li>{inline(k)}</li>" for k in points) + "</ul>"


def code_block(code: str, *, highlight: bool = True) -> str:
    """The solution's source: Pygments-highlighted, or plain (escaped) for an LMS."""
    if highlight:
        return _highlight(code, "python", None)
    return f'<pre><code class="language-python">{escape(code, quote=False)}</code></pre>'


def references_list(references: Sequence[tuple[str, str]]) -> str:
    """Each reference as a link that opens its source."""
    items = "".join(
        f'<li><a href="{escape(url)}">{escape(title)}</a></li>' for title, url in references
    )
    return f'<ul class="references">{items}</ul>'


def answer_sections(q: Question, heads: dict[str, str], *, highlight: bool = True) -> list[str]:
    """What a sheet with answers adds to a question: marked choices, answer, key points,
    the solution's source; nothing on a student sheet."""
    out = []
    if q.choices and q.choices[0].correct is not None:
        out.append(marked_choices(q.choices))
    if q.answer is not None:
        dated = f' <span class="as-of">· {escape(q.as_of)}</span>' if q.as_of else ""
        out.append(f"<h4>{escape(heads['answer'])}{dated}</h4>\n{block(q.answer)}")
    if q.key_points:
        out.append(f"<h4>{escape(heads['key_points'])}</h4>\n{points_list(q.key_points)}")
    if q.references:
        out.append(f"<h4>{escape(heads['references'])}</h4>\n{references_list(q.references)}")
    if q.code is not None:
        out.append(f"<h4>{escape(heads['code'])}</h4>\n{code_block(q.code, highlight=highlight)}")
    return out


def evidence_section(ev: Evidence, heads: dict[str, str]) -> str:
    """What a smoke run measured for the question: verdict, checks, metrics and the
    training curves as inline SVG (inert, see ``svg_chart``)."""
    ok, no = '<span class="ok">✓</span>', '<span class="no">✗</span>'
    rows = "".join(
        f"<tr><td>{ok if c.passed else no}</td><td>{escape(c.name)}</td>"
        f'<td class="num">{escape(c.value)}</td><td class="num">{escape(c.rule)}</td></tr>'
        for c in ev.checks
    )
    out = [
        f'<section class="evidence {"passed" if ev.passed else "failed"}">',
        f"<h4>{escape(heads['evidence'])} · {escape(summary(ev, heads))}</h4>",
    ]
    if ev.message and not ev.passed:
        out.append(f'<p class="no">{escape(ev.message)}</p>')
    if rows:
        out.append(f'<table class="checks"><caption hidden>{escape(heads["checks"])}</caption>')
        out.append(f"{rows}</table>")
    if ev.metrics:
        shown = " · ".join(f"{escape(name)}: <b>{escape(value)}</b>" for name, value in ev.metrics)
        more = f" · and {ev.more_metrics} more" if ev.more_metrics else ""
        out.append(f'<p class="metrics">{escape(heads["metrics"])}: {shown}{more}</p>')
    out += [f'<figure class="chart">{chart.svg}</figure>' for chart in ev.charts]
    out.append("</section>")
    return "\n".join(out)


def _fold(ident: str, label: str, body: str) -> str:
    return (
        f'<input type="checkbox" class="toggle" id="{ident}">'
        f'<label for="{ident}">{escape(label)}</label>\n<div class="folded">\n{body}</div>\n'
    )


def _question(q: Question, doc: Document) -> str:
    h = doc.heads
    out = [
        f'<article id="{q.anchor}">',
        f'<h3><span class="qid">{escape(q.id)}</span> {inline(q.title)}</h3>',
        f'<p class="meta">{escape(q.meta)}</p>',
        f'<div class="prompt">\n{block(q.prompt)}</div>',
    ]
    if q.choices:
        out.append('<ol class="choices">')
        for c in q.choices:
            out.append(f"<li>{inline(c.text)}</li>")
        out.append("</ol>")
    if q.hints:
        hints = "".join(f"<li>{block(hint)}</li>" for hint in q.hints)
        out.append(_fold(f"{q.anchor}-hints", h["show_hints"], f"<ol>{hints}</ol>\n"))
    answer = answer_sections(q, h)
    if answer:
        out.append(_fold(f"{q.anchor}-answer", h["show"], "\n".join(answer) + "\n"))
    if q.evidence is not None:
        out.append(evidence_section(q.evidence, h))
    out.append(f'<p class="source">source: {escape(q.source)}</p>')
    out.append("</article>")
    return "\n".join(out)


def render_text(items: Sequence[Item], options: ExportOptions) -> str:
    doc = document(items, options)
    lang = "zh-CN" if doc.lang == "zh" else "en"
    toc = []
    for topic in doc.topics:
        links = "".join(
            f'<li><a href="#{q.anchor}">{escape(q.id)}</a> {inline(q.title)}</li>'
            for q in topic.questions
        )
        toc.append(
            f'<li><a href="#topic-{escape(topic.name)}">{escape(topic.name)}</a>'
            f"<ul>{links}</ul></li>"
        )
    body = []
    for topic in doc.topics:
        body.append(f'<section id="topic-{escape(topic.name)}">\n<h2>{escape(topic.name)}</h2>')
        body += [_question(q, doc) for q in topic.questions]
        body.append("</section>")
    css = CSS + _FORMATTER.get_style_defs(".highlight")
    return (
        "<!doctype html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(doc.title)}</title>\n<style>{css}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(doc.title)}</h1>\n"
        f'<p class="subtitle">{escape(doc.subtitle)}</p></header>\n'
        f'<nav class="toc"><h2>{escape(doc.heads["contents"])}</h2>\n'
        f"<ul>{''.join(toc)}</ul></nav>\n"
        f"<main>\n{chr(10).join(body)}\n</main>\n</body>\n</html>\n"
    )


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    return render_text(items, options).encode("utf-8")
