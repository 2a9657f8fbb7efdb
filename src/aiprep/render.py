"""Terminal rendering with rich: question tables and pages, live training progress, reports."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.text import Text

from aiprep.bank import Record
from aiprep.lang import LangChoice, bilingual, langs
from aiprep.messages import count, t

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table  # imported where a table is built: `list` never builds one

    from aiprep.check_coverage import SolutionCoverage
    from aiprep.kit.report import Check, SolutionReport
    from aiprep.runner import Job, RunResult
    from aiprep.store import TopicStats


# Chinese has no spaces between words: a line may break after any character. rich breaks
# only at whitespace (a CJK run is one "word", moved whole to the next line, leaving the
# line before it half empty: " Keras CNN " alone on a line). Its word pattern, widened
# once here, makes every CJK character a word of its own, with the closing punctuation
# that must not start a line ("。", "，") kept on it. Every rich output of aiprep (pages,
# the quiz, Markdown) wraps through this pattern.
_CJK_CHARS = (
    "\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
)
_CJK_CLOSING = "，。、；：！？）》」』】〉・．,.;:!?)"


class _CjkWord:
    """rich's word pattern, widened as above, compiled on its first use: the character
    classes take milliseconds to compile, and output to a pipe never wraps."""

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(
            rf"\s*(?:[{_CJK_CHARS}][{_CJK_CLOSING}]*|[^\s{_CJK_CHARS}]+[{_CJK_CLOSING}]*)\s*"
        )

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:  # what rich calls
        return self.pattern.match(text, pos)


CJK_WORD = _CjkWord()


def _wrap_cjk_at_characters() -> None:
    import rich._wrap

    rich._wrap.re_word = CJK_WORD  # type: ignore[assignment]


_wrap_cjk_at_characters()


def question_lines(
    records: Iterable[Record], lang: LangChoice, statuses: dict[str, str] | None = None
) -> str:
    """The bank as plain lines, one per question, columns padded: for a pipe or a file.

    With ``statuses`` (id -> new, due, failed, verified, seen), a status column: the plain
    word, for grep."""
    rows = list(records)
    head = ("id", "kind", "difficulty", "run", *(("status",) if statuses else ()), "title")
    cells = [
        (
            q["id"],
            q["kind"],
            q["difficulty"],
            "✓" if q["solution"] else "-",
            *((statuses.get(q["id"], "new"),) if statuses else ()),
            bilingual(q["title"], lang, " / "),
        )
        for q in rows
    ]
    n = len(head) - 1  # padded columns: all but the title
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head[:n])]
    lines = ["  ".join([*(c[i].ljust(widths[i]) for i in range(n)), c[n]]) for c in [head, *cells]]
    return "\n".join(lines)


Piece = tuple[str, str]  # text, rich style ("" for none)


def question_rows(
    records: Iterable[Record],
    lang: LangChoice,
    width: int,
    statuses: dict[str, str] | None = None,
) -> list[list[Piece]]:
    """The bank as aligned columns for a terminal ``width`` cells wide, one list of styled
    pieces per line: id, kind, difficulty, run, your status (with ``statuses``: id -> new,
    due, failed, verified, seen), and the title, wrapped last.

    Laid out here rather than with ``rich.table.Table``, whose per-cell measuring costs
    ~1 ms a row: a 180-question listing must stay about as quick as the imports it needs.
    """
    rows = list(records)
    head = {k: t(f"list.col.{k}", lang) for k in ("id", "kind", "difficulty", "run", "status")}
    kinds = {q["id"]: t(f"kind.{q['kind']}", lang) for q in rows}
    levels = {q["id"]: t(f"difficulty.{q['difficulty']}", lang) for q in rows}
    marks = {i: t(f"status.{s}", lang) for i, s in (statuses or {}).items()}
    new = t("status.new", lang)
    widths = [
        max([_cells(head["id"]), *(_cells(q["id"]) for q in rows)]),
        max([_cells(head["kind"]), *map(_cells, kinds.values())]),
        max([_cells(head["difficulty"]), *map(_cells, levels.values())]),
        max(3, _cells(head["run"])),
    ]
    names = [head["id"], head["kind"], head["difficulty"], head["run"]]
    if statuses is not None:
        widths.append(max([_cells(head["status"]), _cells(new), *map(_cells, marks.values())]))
        names.append(head["status"])
    indent = sum(w + 2 for w in widths)
    # A narrow terminal gets each title on its own line(s) under the row.
    below = width - indent < 24
    if below:
        indent = 4
    title_width = width - indent
    title_head = t("list.col.title", lang)
    header = [(_pad(name, w + 2), "bold") for name, w in zip(names, widths, strict=True)]
    if below:
        lines = [header, [("    " + title_head, "bold")]]
    else:
        lines = [[*header, (title_head, "bold")]]
    lines.append([("─" * width, "dim")])
    margin = " " * indent
    for q in rows:
        qid = q["id"]
        row: list[Piece] = [
            (qid.ljust(widths[0] + 2), "cyan"),
            (_pad(kinds[qid], widths[1] + 2), ""),
            (_pad(levels[qid], widths[2] + 2), _DIFFICULTY_STYLE.get(q["difficulty"], "")),
            (_pad(" ✓" if q["solution"] else "", widths[3] + 2), "green"),
        ]
        if statuses is not None:
            status = statuses.get(qid, "new")
            row.append((_pad(marks.get(qid, new), widths[4] + 2), _STATUS_STYLE.get(status, "")))
        title = wrap_cells(bilingual(q["title"], lang, " / "), title_width) or [""]
        if below:
            lines.append(row)
            lines.extend([(margin + line, "")] for line in title)
        else:
            lines.append([*row, (title[0], "")])
            lines.extend([(margin + line, "")] for line in title[1:])
    return lines


def question_table(
    records: Iterable[Record],
    lang: LangChoice,
    console: Console,
    statuses: dict[str, str] | None = None,
) -> Text:
    """``question_rows`` at the console's width, as one ``Text`` (for layouts and tests)."""
    out = Text(no_wrap=True)
    for i, line in enumerate(question_rows(records, lang, console.width, statuses)):
        if i:
            out.append("\n")
        for text, style in line:
            out.append(text, style=style or None)
    out.rstrip()
    return out


def print_rows(console: Console, lines: list[list[Piece]]) -> None:
    """Print lines of styled pieces as they are, already laid out to the console's width.

    Hands rich the finished segments (its styles, colour system, ``NO_COLOR`` and
    recording still apply) and skips the measuring, wrapping and per-append cleaning of
    ``Text``: 180 rows in a few milliseconds, where printing them as one ``Text`` took ~90."""
    from rich.segment import Segment, Segments

    styles: dict[str, Any] = {}
    segments: list[Segment] = []
    newline = Segment.line()
    for line in lines:
        for text, name in line:
            style = styles.get(name)
            if style is None:
                style = styles[name] = console.get_style(name) if name else None
            segments.append(Segment(text, style))
        segments.append(newline)
    console.print(Segments(segments), soft_wrap=True, end="")


def _cells(text: str) -> int:
    """Terminal cells of ``text``: its length when ASCII (most titles and every id), else
    rich's count (a CJK character takes two)."""
    return len(text) if text.isascii() else cell_len(text)


def wrap_cells(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` terminal cells (a CJK character takes two):
    broken at spaces, and a run of CJK (which has no spaces to break at) folded anywhere to
    fill the line; a word wider than a line is folded too. A few microseconds a title, where
    ``rich.text.Text.wrap`` takes about a millisecond."""
    width = max(1, width)
    if _cells(text) <= width:
        return [text]
    lines: list[str] = []
    line, used = "", 0  # the line so far and its cells
    for word in text.split():
        gap = 1 if line else 0
        size = _cells(word)
        if used + gap + size <= width:
            line, used = line + " " * gap + word, used + gap + size
            continue
        if line and size == len(word):  # not CJK (that folds into what is left of this line)
            lines.append(line)
            line, used, gap = "", 0, 0
        while used + gap + size > width:
            room = width - used - gap
            cut = 0
            while cut < len(word) and cell_len(word[: cut + 1]) <= room:
                cut += 1
            while 1 < cut < len(word) and word[cut] in _CJK_CLOSING:
                cut -= 1  # "。" or "？" never starts a line: its character goes down with it
            if cut == 0 and not line:  # a character wider than the whole line
                cut = 1
            if cut:
                line += " " * gap + word[:cut]
                word = word[cut:]
                size = _cells(word)
            lines.append(line)
            line, used, gap = "", 0, 0
        line, used = line + " " * gap + word, used + gap + size
    if line:
        lines.append(line)
    return lines


_DIFFICULTY_STYLE = {"easy": "green", "medium": "yellow", "hard": "red"}
_STATUS_STYLE = {"new": "dim", "due": "yellow", "failed": "red", "verified": "green"}


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a CJK character takes two)."""
    return text + " " * max(0, width - _cells(text))


_MARKUP = re.compile(r"[`*_#>|\[\]<&]|^\s*([-+*]|\d+\.)\s", re.M)


def markdown(source: str) -> RenderableType:
    """``source`` rendered as Markdown; plain text when it has no Markdown in it, which
    keeps rich.markdown (markdown_it and pygments, ~45 ms to import) out of the way."""
    if not _MARKUP.search(source):
        paragraphs = re.split(r"\n\s*\n", source.strip())
        texts = [Text(" ".join(line.strip() for line in p.splitlines())) for p in paragraphs]
        return Group(*[part for t in texts for part in (Text(), t)][1:])  # blank lines between
    from rich.markdown import Markdown

    return Markdown(source)


class _Hanging:
    """``prefix`` then ``body``, the body's wrapped lines indented under its first
    character (a choice's why, a key point), not back at column 0."""

    def __init__(self, prefix: str, body: str, style: str) -> None:
        self.prefix, self.body, self.style = prefix, body, style

    def __rich_console__(self, console: Console, options: Any) -> Any:
        indent = cell_len(self.prefix)
        width = max(8, options.max_width - indent)
        # fold: a long word or a CJK run still breaks inside the indented column
        lines = Text(self.body, style=self.style, overflow="fold").wrap(console, width)
        out = Text(no_wrap=True, end="")
        for i, line in enumerate(lines):
            out.append(self.prefix if i == 0 else " " * indent)
            line.rstrip()
            out.append_text(line)
            out.append("\n")
        yield out


def hanging(prefix: str, body: str, *, style: str = "") -> RenderableType:
    """``prefix`` + ``body`` with a hanging indent: continuation lines start under the body."""
    return _Hanging(prefix, body, style)


def key_point_list(
    points: Sequence[str], ticked: set[int] | None = None, *, numbered: bool = False
) -> RenderableType:
    """Key points as a checklist: ☑ for the ``ticked`` ones (1-based), ☐ for the others;
    ``numbered`` puts the number to press before each (the quiz). Wrapped lines keep the
    indent."""
    rows = []
    for i, point in enumerate(points, 1):
        box = "☑" if ticked and i in ticked else "☐"
        number = f"{i}. " if numbered else ""
        rows.append(hanging(f"  {number}{box} ", point, style="green" if box == "☑" else ""))
    return Group(*rows)


def print_trimmed(console: Console, renderable: RenderableType) -> None:
    """Print with no trailing spaces on any line (rich pads Markdown to the width): for
    ``show | cat``, a diff or a copy from the terminal."""
    with console.capture() as captured:
        console.print(renderable)
    text = _TRAILING.sub(r"\1", captured.get())
    console.file.write(text)
    console.file.flush()


# spaces at the end of a line, also when style codes close after them
_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)


def question_page(q: Record, lang: LangChoice, *, answer: bool = False) -> RenderableType:
    """A question as a page: title, metadata, prompt; with ``answer`` also answer and rubric."""

    shown = langs(lang)
    ui = shown[0] if len(shown) == 1 else "en"  # the page's own words: --lang both speaks en
    parts: list[RenderableType] = []
    kind, level = t(f"kind.{q['kind']}", ui), t(f"difficulty.{q['difficulty']}", ui)
    meta = f"{q['id']} · {kind} · {level}"
    if q["tags"]:
        meta += " · " + ", ".join(q["tags"])
    if q["solution"]:
        meta += " · " + t("show.runnable", ui, id=q["id"])
    for lg in shown:
        parts.append(Text(q["title"][lg], style="bold underline"))
    parts.append(Text(meta, style="dim"))
    for lg in shown:
        parts += [Text(), markdown(q["prompt"][lg])]
        if q["choices"]:
            parts.append(Text())
            for letter, choice in zip("ABCDEFGHIJ", q["choices"], strict=False):
                mark = ("✓ " if choice["correct"] else "✗ ") if answer else ""
                parts.append(hanging(f"  {mark}{letter}. ", choice["text"][lg]))
                if answer:
                    parts.append(hanging(" " * 7, choice["why"][lg], style="dim"))
    if answer:
        for lg in shown:
            head = Text(t("show.answer", lg), style="bold green")
            if q.get("as_of"):
                head.append(f" · {t('show.as_of', lg)} {q['as_of']}", style="dim")
            parts += [Text(), head, markdown(q["answer"][lg])]
            parts += [Text(), Text(t("show.key_points", lg), style="bold green")]
            parts.append(key_point_list([kp[lg] for kp in q["key_points"]]))
    if answer and q.get("references"):  # once, after the answer in every language
        title = " / ".join(t("show.references", lg) for lg in shown)
        parts += [Text(), Text(title, style="bold green")]
        for ref in q["references"]:
            line = Text(f"  · {ref['title']} ")
            line.append(ref["url"], style=f"dim link {ref['url']}")
            parts.append(line)
    source = q["source"]
    if not isinstance(source, str):  # "original" needs no line
        where = "; ".join(f"{s['seed']} § {s['section']}" for s in source)
        parts += [Text(), Text(t("show.source", ui, where=where), style="dim")]
    if q["see_also"]:
        parts.append(Text(t("show.see_also", ui, ids=", ".join(q["see_also"])), style="dim"))
    return Group(*parts)


def report_tables(report: SolutionReport) -> RenderableType:
    """The metrics table, the seed's facts (debug questions) and the checks of a report."""
    from rich.table import Table

    from aiprep.kit.report import format_value

    parts: list[RenderableType] = []
    if report.metrics:
        metrics = Table(
            title="metrics (measured by the checks, not the progress bars' running values)",
            title_justify="left",
            show_edge=False,
            header_style="bold",
        )
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        metrics.add_column("unit", style="dim")
        for m in report.metrics:
            metrics.add_row(m.name, format_value(m.value), m.unit)
        parts += [metrics, Text()]
    if report.seed_facts:
        parts += [
            _check_table(
                "reference facts: seed, controls (not in the verdict)",
                report.seed_facts,
            )
        ]
        parts.append(Text())
    parts.append(_check_table("checks", report.checks))
    return Group(*parts)


def _check_table(title: str, checks: Iterable[Check]) -> Table:
    from rich.table import Table

    from aiprep.kit.report import format_value

    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    table.add_column("")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("threshold")
    for c in checks:
        mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
        name = Text(c.name)
        if c.detail:  # expected vs got, the first differing values: shown under the name
            name.append(f"\n{c.detail}", style="dim")
        table.add_row(mark, name, format_value(c.value), c.rule)
    return table


def run_and_show(
    console: Console,
    root: Path,
    module: str,
    question_id: str,
    *,
    attempt: Path | None = None,
    title: str | None = None,
    timeout: float = 120.0,
    verbose: bool = False,
    live: bool = True,
    show: bool = True,
) -> RunResult:
    """Run a solution (or an attempt at it) with live progress, then print its report.

    The one display of a run, shared by ``aiprep run``, ``aiprep verify`` and the quiz.
    ``show=False`` keeps only the progress (the caller prints the result as JSON).
    ``title``: the question's, for the spinner (a module path means nothing to a reader).
    """
    from rich.markup import escape

    from aiprep.runner import run_solution

    if attempt:
        label = f"checks on {attempt.name}"
    else:
        label = _shorten(title or question_id, 50)
    with LiveProgress(console, label, enabled=live) as progress:
        result = run_solution(
            root, module, attempt=attempt, timeout=timeout, verbose=verbose, on_event=progress
        )
    if not show:
        return result
    if result.report is None:
        console.print(f"[red]error:[/] {question_id}: {escape(result.message)}", soft_wrap=True)
        # The traceback helps with a real bug, not with a function left unwritten.
        if result.output_tail and ": NotImplementedError:" not in result.message:
            console.print(result.output_tail, style="dim", markup=False)
        return result
    report = result.report
    console.print(report_tables(report))
    passed = sum(c.passed for c in report.checks)
    style = "green" if report.passed else "red"
    console.print(
        f"\n[{style}]{passed}/{len(report.checks)} checks passed[/] in {result.wall_s:.1f} s"
    )
    if not report.seed_facts_hold:
        wrong = ", ".join(c.name for c in report.seed_facts if not c.passed)
        console.print(
            f"[yellow]about the seed: {wrong} no longer holds[/] (a library changed how "
            "the seed's code behaves; the answer's account of the seed needs updating)",
            soft_wrap=True,
        )
    return result


_SHOWN_VALUES = 3


def _shorten(text: str, cells: int) -> str:
    if cell_len(text) <= cells:
        return text
    short = Text(text)
    short.truncate(cells, overflow="ellipsis")
    return short.plain


class LiveProgress:
    """Turns the runner's progress events into rich progress bars (one per phase)."""

    def __init__(self, console: Console, label: str, *, enabled: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[values]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self._tasks: dict[str, Any] = {}
        from rich.markup import escape

        self._starting: TaskID | None = self.progress.add_task(
            escape(f"starting {label}"), total=None, values=""
        )

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done_starting()  # a solution that never reported a phase
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind, phase = event.get("event"), str(event.get("phase", ""))
        if kind == "start":
            self._done_starting()
            if phase in self._tasks:
                self.progress.reset(self._tasks[phase], total=event["total"])
            else:
                self._tasks[phase] = self.progress.add_task(phase, total=event["total"], values="")
        elif kind == "advance" and phase in self._tasks:
            from aiprep.kit.report import format_value

            values = event.get("values") or {}
            numbers = [(k, v) for k, v in values.items() if isinstance(v, int | float)]
            # The first few values (loss, a metric, the epoch) fit on one line with the bar.
            shown = "  ".join(f"{k} {format_value(v)}" for k, v in numbers[:_SHOWN_VALUES])
            self.progress.update(self._tasks[phase], completed=event["completed"], values=shown)
        elif kind == "finish" and phase in self._tasks:
            task = self._tasks[phase]
            state = self.progress.tasks[self.progress.task_ids.index(task)]
            done = state.completed
            # The bar's values are the training loop's running ones (Keras averages the
            # epoch's batches); the metrics table's are measured afterwards: say which.
            values = state.fields.get("values", "")
            values = f"{values} (during the run)" if values else ""
            self.progress.update(task, total=max(done, 1), completed=max(done, 1), values=values)

    def _done_starting(self) -> None:
        if self._starting is not None:
            self.progress.remove_task(self._starting)
            self._starting = None


# -----------------------------------------------------------------------------
# aiprep smoke


_STATE_STYLE = {"queued": "dim", "running": "yellow", "passed": "green", "failed": "red"}


class SmokeDisplay:
    """A live table of the smoke run on a terminal; one line per finished job elsewhere."""

    def __init__(self, console: Console, jobs: list[Job]) -> None:
        from rich.live import Live

        self.console, self.jobs = console, jobs
        self.live = Live(
            get_renderable=self._table, console=console, refresh_per_second=4, transient=True
        )
        self._reported: set[str] = set()

    def __enter__(self) -> SmokeDisplay:
        if self.console.is_terminal:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.console.is_terminal:
            self.live.stop()

    def update(self, job: Job) -> None:
        if self.console.is_terminal or job.state not in ("passed", "failed"):
            return
        if job.id not in self._reported:  # a plain log for CI
            self._reported.add(job.id)
            mark = "PASS" if job.state == "passed" else "FAIL"
            done = len(self._reported)
            self.console.print(
                f"[{done}/{len(self.jobs)}] {mark} {job.id} ({job.wall_s:.1f} s)"
                + (f": {job.message}" if job.state != "passed" else ""),
                markup=False,
                soft_wrap=True,
            )

    def _table(self) -> Table:
        import time

        from rich.table import Table

        counts = {s: sum(j.state == s for j in self.jobs) for s in _STATE_STYLE}
        title = " · ".join(f"{n} {s}" for s, n in counts.items())
        table = Table(title=title, title_justify="left", header_style="bold", show_edge=False)
        table.add_column("solution")
        table.add_column("state")
        table.add_column("phase", style="dim")
        table.add_column("wall", justify="right")
        now = time.monotonic()
        for job in self.jobs:
            wall = now - job.started if job.state == "running" else job.wall_s
            shown = f"{wall:.1f} s" if job.state != "queued" else ""
            table.add_row(
                job.id,
                Text(job.state, style=_STATE_STYLE[job.state]),
                job.phase if job.state == "running" else "",
                shown,
            )
        return table


def smoke_summary(jobs: list[Job], wall_s: float, workers: int) -> RenderableType:
    """The results, slowest first, and how the wall time compares with the work done."""
    from rich.table import Table

    from aiprep.kit.report import format_value

    table = Table(title="smoke", title_justify="left", header_style="bold", show_edge=False)
    for name in ("solution", "result", "wall s", "compute s", "cpu s", "key metrics"):
        table.add_column(name, justify="right" if name.endswith(" s") else "left")
    for job in sorted(jobs, key=lambda j: -j.wall_s):
        if job.state == "passed" and job.report is not None:
            key = "; ".join(f"{c.name} {format_value(c.value)}" for c in job.report.checks[:2])
            # one line a solution, cut with "…": the full checks are in the JSON report
            cell = Text(key, no_wrap=True, overflow="ellipsis")
            result = Text("PASS", style="green")
        else:
            cell, result = Text(job.message), Text("FAIL", style="red")
        compute = f"{job.compute_s:.1f}" if job.compute_s is not None else "–"
        cpu = f"{job.cpu_s:.1f}" if job.cpu_s is not None else "–"
        table.add_row(job.id, result, f"{job.wall_s:.1f}", compute, cpu, cell)
    passed = sum(j.state == "passed" for j in jobs)
    work = sum(j.compute_s or 0.0 for j in jobs) / workers
    # Wall time beyond the ideal (all compute spread evenly), in seconds and with what it
    # is: a percentage alarms on a small run, where process start-up is most of the wall.
    extra = wall_s - work
    overhead = (
        f"; {extra:.1f} s more for start-up and uneven load"
        if passed == len(jobs) and work > 0 and extra >= 0.05
        else ""
    )
    style = "green" if passed == len(jobs) else "red"
    line = Text.from_markup(
        f"[{style}]{passed}/{len(jobs)} passed[/] in {wall_s:.1f} s with {workers} job(s); "
        f"compute / jobs {work:.1f} s{overhead}"
    )
    parts: list[RenderableType] = [table, Text(), line]
    for job in jobs:
        if not job.state == "passed" and job.output_tail:
            parts += [
                Text(),
                Text(f"{job.id}: {job.message}", style="red"),
                Text(job.output_tail, style="dim"),
            ]
    return Group(*parts)


def coverage_table(results: Sequence[SolutionCoverage], summary: dict[str, Any]) -> Group:
    """``aiprep check-coverage``: per solution, the checks no wrong answer failed."""
    from rich.table import Table

    table = Table(
        title="checks a wrong answer was seen failing",
        title_justify="left",
        header_style="bold",
        show_edge=False,
    )
    table.add_column("solution")
    table.add_column("covered", justify="right")
    table.add_column("wrong answers", justify="right")
    table.add_column("not shown failing")
    for r in sorted(results, key=lambda r: r.module):
        name = Text(r.module)
        if not r.reference_ok:
            name.append("\nreference fails its checks", style="red")
        missing = Text("\n".join(r.uncovered), style="yellow")
        guards = [g for g in r.guards if g not in r.covered]
        if guards:
            missing.append(
                ("\n" if r.uncovered else "") + "\n".join(f"guard: {g}" for g in guards),
                style="dim",
            )
        ran = f"{len(r.ran)} ran" + (f", {len(r.crashed)} n/a" if r.crashed else "")
        table.add_row(name, f"{len(r.covered)}/{len(r.checks)}", ran, missing)
    style = "green" if summary["uncovered"] == 0 else "yellow"
    line = Text.from_markup(
        f"[{style}]check coverage: {summary['covered']}/{summary['checks']} checks "
        f"({summary['coverage']:.0%}) seen failing for a wrong answer[/]; "
        f"{summary['guards']} guard(s), {summary['uncovered']} not shown failing, "
        f"over {summary['solutions']} solution(s)"
    )
    return Group(table, Text(), line)


# -----------------------------------------------------------------------------
# The learner's progress


def when(moment: datetime, lang: str = "en") -> str:
    """A due time as a person reads it: "now", "14:05 today", "09:30 tomorrow", a date."""
    from aiprep.store import now  # fsrs and sqlite3: not for `list` and `show`

    delta = moment - now()
    local = moment.astimezone()
    if delta <= timedelta(0):
        return t("when.now", lang)
    if delta < timedelta(days=1):
        day = "today" if local.date() == now().astimezone().date() else "tomorrow"
        return t(f"when.{day}", lang, time=local.strftime("%H:%M"))
    return local.strftime("%Y-%m-%d")


def interval(delta: timedelta) -> str:
    """A time span the way Anki's rating buttons show it: 1m, 10m, 3h, 4d, 2.5mo, 1.2y."""
    minutes = max(0.0, delta.total_seconds() / 60)
    if minutes < 60:
        return f"{max(1, round(minutes))}m"
    if minutes < 24 * 60:
        return f"{round(minutes / 60)}h"
    days = minutes / (24 * 60)
    if days < 30:
        return f"{round(days)}d"
    if days < 365:
        return f"{days / 30:.1f}mo"
    return f"{days / 365:.1f}y"


def print_stats(
    console: Console,
    rows: Sequence[TopicStats],
    reviews: int,
    streak: int,
    next_due: datetime | None,
    lang: str = "en",
) -> None:
    """``aiprep stats``: per topic seen/total, learning, due now, due this week and recall
    (of the cards past their learning steps); totals."""
    from rich.table import Table

    table = Table(header_style="bold", show_edge=False)
    for name in ("topic", "seen", "learning", "due_now", "due_week", "recall"):
        table.add_column(
            t(f"stats.col.{name}", lang), justify="left" if name == "topic" else "right"
        )
    for r in rows:
        recall = f"{r.retrievability:.0%}" if r.retrievability is not None else "–"
        table.add_row(
            r.topic,
            f"{r.seen}/{r.total}",
            str(r.learning),
            str(r.due_now),
            str(r.due_week),
            recall,
        )
    table.add_section()
    table.add_row(
        t("stats.all", lang),
        f"{sum(r.seen for r in rows)}/{sum(r.total for r in rows)}",
        str(sum(r.learning for r in rows)),
        str(sum(r.due_now for r in rows)),
        str(sum(r.due_week for r in rows)),
        "",
    )
    console.print(table)
    nxt = t("stats.next", lang, when=when(next_due, lang)) if next_due else ""
    days = count(streak, "day", lang)
    console.print("\n" + t("stats.line", lang, reviews=reviews, streak=days, next=nxt), style="dim")
    console.print(t("stats.recall_note", lang), style="dim")
