"""The terminal quiz and the mock interview: single keys, FSRS ratings saved as they come.

``Terminal`` owns the keyboard (cbreak mode, restored on every exit path) and the rich
console. ``ask`` shows one question and returns the candidate's outcome; ``quiz`` and
``mock`` build a queue, ask, and rate each answer in its own transaction, so quitting,
Ctrl-C, a closed terminal or a crash never loses a rating already given.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import time
import tty
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from aiprep.bank import Bank, Record
from aiprep.lang import Bilingual, LangChoice, bilingual
from aiprep.render import when
from aiprep.schedule import Outcome, Session, due_again, pick
from aiprep.starter import practice_filename, write_starter
from aiprep.store import RATINGS, Store, now

LETTERS = "ABCDEFGHIJ"
_RATING_STYLE = {1: "red", 2: "yellow", 3: "green", 4: "cyan"}
# What the quiz says, in the candidate's language (``--lang both`` speaks English).
_UI = {
    "en": {
        "pick_all": "pick every right choice: one or several",
        "mc_prompt": "{span} pick [{chosen}] · Enter answer · {keys}",
        "none": "none",
        "open_prompt": "a type an answer · Enter reveal · {keys}",
        "h": "h hint",
        "r": "r run",
        "p": "p practice",
        "s": "s skip",
        "q": "q quit",
        "skipped": "skipped",
        "type": "your answer (an empty line ends it):",
        "next": "any key for the next question",
        "no_more_hints": "no more hints",
        "hint": "hint {i}/{n}:",
        "no_solution": "this question has no runnable solution",
        "no_code": "this question has no code to practise",
        "exists": "{path} exists already (kept)",
        "wrote": "wrote {path}",
        "check_with": "check it with: {command}",
        "correct": "[green]correct[/] — rated good",
        "wrong": "[red]not quite[/]: the answer is {answer} — rated again",
        "your_answer": "your answer",
        "reference": "reference answer",
        "as_of": "as of {as_of}",
        "key_points": "key points",
        "tick": "tick the points you covered (1-{n}), Enter when done [{got}]",
        "covered": "covered {k}/{n} key points",
        "rate": "rate: 1 again · 2 hard · 3 good · 4 easy · Enter {suggested} (suggested) · q quit",
        "rated": "rated [{style}]{rating}[/]",
    },
    "zh": {
        "pick_all": "选出所有正确选项：可能一个，也可能多个",
        "mc_prompt": "{span} 选择 [{chosen}] · Enter 作答 · {keys}",
        "none": "无",
        "open_prompt": "a 输入答案 · Enter 显示答案 · {keys}",
        "h": "h 提示",
        "r": "r 运行",
        "p": "p 练习",
        "s": "s 跳过",
        "q": "q 退出",
        "skipped": "已跳过",
        "type": "你的答案（空行结束）：",
        "next": "按任意键进入下一题",
        "no_more_hints": "没有更多提示了",
        "hint": "提示 {i}/{n}：",
        "no_solution": "这道题没有可运行的参考实现",
        "no_code": "这道题没有可练习的代码",
        "exists": "{path} 已存在（未覆盖）",
        "wrote": "已写入 {path}",
        "check_with": "用这条命令检查：{command}",
        "correct": "[green]正确[/]：评为 good",
        "wrong": "[red]不对[/]：正确答案是 {answer}，评为 again",
        "your_answer": "你的答案",
        "reference": "参考答案",
        "as_of": "信息截至 {as_of}",
        "key_points": "要点",
        "tick": "勾选你答到的要点（1-{n}），完成后按 Enter [{got}]",
        "covered": "答到 {k}/{n} 个要点",
        "rate": "自评：1 again · 2 hard · 3 good · 4 easy · Enter {suggested}（建议）· q 退出",
        "rated": "评为 [{style}]{rating}[/]",
    },
}


def _hanging(lead: str | Text, body: str) -> Table:
    """``lead`` then ``body``, continuation lines indented under ``body`` (choices)."""
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(lead, Text(body))
    return grid


class Quit(Exception):
    """The candidate quit (q, Ctrl-C, Ctrl-D) or the terminal went away."""


class Terminal:
    """Single-key input in cbreak mode and a rich console for output."""

    def __init__(self, console: Console, fd: int | None = None) -> None:
        self.console = console
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved: list[Any] | None = None
        self._pending: list[str] = []
        self.gone = False  # the terminal was closed: nothing more can be shown

    @contextmanager
    def session(self) -> Iterator[Terminal]:
        """cbreak mode for the session; the terminal's settings come back however it ends."""
        self._saved = termios.tcgetattr(self.fd)

        def hangup(signum: int, frame: Any) -> None:
            self.gone = True
            raise Quit

        old_hup = signal.signal(signal.SIGHUP, hangup)
        try:
            tty.setcbreak(self.fd)
            yield self
        finally:
            signal.signal(signal.SIGHUP, old_hup)
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass  # the terminal is gone

    def key(self, timeout: float | None = None) -> str | None:
        """One key press (``None`` after ``timeout`` seconds). Ctrl-C and Ctrl-D quit.

        Keys typed ahead (or pasted) are kept and returned one at a time.
        """
        if not self._pending:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            try:
                data = os.read(self.fd, 64)
            except OSError:
                self.gone = True
                raise Quit from None
            if not data:
                self.gone = True
                raise Quit  # the terminal closed
            if data.startswith(b"\x1b"):
                return "esc"  # arrow keys and the like: one escape sequence, ignored
            for char in data.decode("utf-8", "replace"):
                if char in "\x03\x04":
                    raise Quit
                self._pending.append("enter" if char in "\r\n" else char)
        return self._pending.pop(0)

    def lines(self, prompt: str) -> str:
        """Multi-line text typed by the candidate, ended by an empty line (echoed, editable)."""
        assert self._saved is not None
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)  # cooked: echo, backspace
        try:
            self.console.print(prompt, style="dim")
            out: list[str] = []
            while True:
                try:
                    line = input()
                except EOFError:
                    break
                if not line.strip():
                    break
                out.append(line)
            return "\n".join(out)
        except KeyboardInterrupt:
            raise Quit from None
        finally:
            tty.setcbreak(self.fd)

    def status(self, text: str) -> None:
        """Redraw the status line in place (prompts, countdowns)."""
        self._write("\r\x1b[2K" + text)

    def end_status(self) -> None:
        self._write("\n")

    def _write(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.console.file.write(text)
            self.console.file.flush()
        except OSError:
            self.gone = True  # the next key read ends the session


# -----------------------------------------------------------------------------
# Asking one question


@dataclass
class Asker:
    """Asks questions on a terminal; ``deadline`` (monotonic) adds a countdown."""

    term: Terminal
    bank: Bank
    lang: LangChoice
    deadline: float | None = None
    practice_dir: Path = field(default_factory=Path.cwd)

    @property
    def console(self) -> Console:
        return self.term.console

    def _text(self, value: Bilingual) -> str:
        return bilingual(value, self.lang)

    def _short(self, value: Bilingual) -> str:
        return bilingual(value, self.lang, " / ")

    def ui(self, key: str, **values: object) -> str:
        """A piece of the quiz's own text in the candidate's language."""
        return _UI["zh" if self.lang == "zh" else "en"][key].format(**values)

    def _clock(self) -> str:
        if self.deadline is None:
            return ""
        left = max(0, int(self.deadline - time.monotonic()))
        return f"⏱ {left // 60:02d}:{left % 60:02d}  "

    def wait_key(self, prompt: str, allowed: str | Sequence[str]) -> str:
        """Show ``prompt`` on the status line until one of ``allowed`` is pressed."""
        self.term.status(self._clock() + prompt)
        while True:
            key = self.term.key(timeout=1.0 if self.deadline is not None else None)
            if key is None:  # a countdown tick
                self.term.status(self._clock() + prompt)
                continue
            if key in allowed:
                self.term.end_status()
                return key

    def ask(self, q: Record, index: int, total: int, label: str) -> Outcome:
        start = time.monotonic()
        hints = 0
        self.console.print()
        self.console.print(Rule(f"[{index}/{total}] {q['id']}", align="left", style="cyan"))
        meta = f"{q['kind']} · {q['difficulty']} · {label}"
        self.console.print(Text(self._short(q["title"]), style="bold"))
        self.console.print(Text(meta, style="dim"))
        self.console.print(Markdown(self._text(q["prompt"])))
        multiple_choice = q["kind"] == "multiple-choice"
        choices = q["choices"] or []
        letters = LETTERS[: len(choices)] if multiple_choice else ""
        if multiple_choice:
            for letter, choice in zip(letters, choices, strict=False):
                self.console.print(_hanging(f"  {letter}. ", self._short(choice["text"])))
            self.console.print(self.ui("pick_all"), style="dim")
        picked: set[str] = set()
        typed = ""
        # r and p only where there is code to run or practise
        commands = "hrpsq" if q["solution"] else "hsq"
        keys = " · ".join(self.ui(c) for c in commands)
        while True:
            if multiple_choice:
                chosen = " ".join(sorted(picked)) or self.ui("none")
                span = f"{letters[0]}-{letters[-1]}"
                prompt = self.ui("mc_prompt", span=span, chosen=chosen, keys=keys)
                key = self.wait_key(prompt, [*letters, *letters.lower(), "enter", *commands])
            else:
                prompt = self.ui("open_prompt", keys=keys)
                key = self.wait_key(prompt, ["a", "enter", " ", *commands])
            if key == "q":
                raise Quit
            if key == "s":
                self.console.print(self.ui("skipped"), style="dim")
                return Outcome(q["id"], None, time.monotonic() - start, hints)
            if key == "h":
                hints = self._hint(q, hints)
            elif key == "r":
                self._run(q)
            elif key == "p":
                self._practice(q)
            elif multiple_choice and key.upper() in letters:
                picked ^= {key.upper()}
            elif key == "a":
                typed = self.term.lines(self.ui("type"))
            elif key in ("enter", " "):
                if multiple_choice and not picked:
                    continue
                break
        if multiple_choice:
            rating = self._grade_choices(q, picked)
            self.wait_key(self.ui("next"), [*"abcdefghijklmnopqrstuvwxyz", "enter", " "])
        else:
            rating = self._reveal_and_rate(q, typed)
        return Outcome(q["id"], rating, time.monotonic() - start, hints)

    def _hint(self, q: Record, shown: int) -> int:
        if shown >= len(q["hints"]):
            self.console.print(self.ui("no_more_hints"), style="dim")
            return shown
        text = self._text(q["hints"][shown])
        head = self.ui("hint", i=shown + 1, n=len(q["hints"]))
        self.console.print(f"[yellow]{head}[/] {escape(text)}")
        return shown + 1

    def _run(self, q: Record) -> None:
        if not q["solution"]:
            self.console.print(self.ui("no_solution"), style="dim")
            return
        from aiprep.render import run_and_show

        run_and_show(self.console, self.bank.root, q["solution"], q["id"])

    def _practice(self, q: Record) -> None:
        if not q["solution"]:
            self.console.print(self.ui("no_code"), style="dim")
            return
        path = self.practice_dir / practice_filename(q["id"])
        # soft_wrap: paths and commands stay on one line, to copy and paste
        if path.exists():
            self.console.print(self.ui("exists", path=path), style="dim", soft_wrap=True)
        else:
            write_starter(self.bank, q, path)
            self.console.print(self.ui("wrote", path=path), soft_wrap=True)
        command = f"aiprep verify {q['id']} {path}"
        self.console.print(self.ui("check_with", command=command), style="dim", soft_wrap=True)

    def _grade_choices(self, q: Record, picked: set[str]) -> int:
        choices = q["choices"] or []
        correct = {letter for letter, c in zip(LETTERS, choices, strict=False) if c["correct"]}
        right = picked == correct
        for letter, choice in zip(LETTERS, choices, strict=False):
            mark = "[green]✓[/]" if choice["correct"] else "[red]✗[/]"
            you = "›" if letter in picked else " "
            lead = Text.assemble(f"{you} ", Text.from_markup(mark), f" {letter}. ")
            self.console.print(_hanging(lead, self._short(choice["text"])))
            self.console.print(Padding(Text(self._text(choice["why"]), style="dim"), (0, 0, 0, 6)))
        if right:
            self.console.print(self.ui("correct"))
            return 3
        answer = " ".join(sorted(correct))
        self.console.print(self.ui("wrong", answer=answer))
        return 1

    def _reveal_and_rate(self, q: Record, typed: str) -> int:
        if typed:
            self.console.print(Text(self.ui("your_answer"), style="bold"))
            self.console.print(Text(typed), style="dim")
        head = Text(self.ui("reference"), style="bold green")
        if q.get("as_of"):
            head.append(" · " + self.ui("as_of", as_of=q["as_of"]), style="dim")
        self.console.print(head)
        self.console.print(Markdown(self._text(q["answer"])))
        points = q["key_points"]
        ticked: set[int] = set()
        if points:
            self.console.print(Text(self.ui("key_points"), style="bold green"))
            for i, point in enumerate(points, 1):
                self.console.print(f"  {i}. ☐ {escape(self._short(point))}")
            numbers = [str(i) for i in range(1, len(points) + 1)]
            while True:
                got = " ".join(str(i) for i in sorted(ticked)) or self.ui("none")
                key = self.wait_key(
                    self.ui("tick", n=len(points), got=got), [*numbers, "enter", "q"]
                )
                if key == "q":
                    raise Quit
                if key == "enter":
                    break
                ticked ^= {int(key)}
            self.console.print(self.ui("covered", k=len(ticked), n=len(points)))
        share = len(ticked) / len(points) if points else 1.0
        suggested = 3 if share == 1 else 2 if share >= 0.5 else 1
        key = self.wait_key(
            self.ui("rate", suggested=RATINGS[suggested]), ["1", "2", "3", "4", "enter", "q"]
        )
        if key == "q":
            raise Quit
        rating = suggested if key == "enter" else int(key)
        self.console.print(self.ui("rated", style=_RATING_STYLE[rating], rating=RATINGS[rating]))
        return rating


# -----------------------------------------------------------------------------
# Sessions


def run_quiz(
    term: Terminal,
    bank: Bank,
    records: Sequence[Record],
    store: Store,
    lang: LangChoice,
    new: int,
) -> Session:
    """Ask the due and new questions among ``records``; each rating saved at once."""
    session = Session()
    queue = pick(records, store, now(), new)
    console = term.console
    if not queue:
        console.print("nothing due and no new questions with these filters", style="dim")
        return session
    cards = store.cards()
    labels = ["due" if q["id"] in cards else "new" for q in queue]
    due = labels.count("due")
    console.print(f"{len(queue)} question(s): {due} due, {len(queue) - due} new", style="dim")
    asker = Asker(term, bank, lang)
    finished = _ask_all(asker, queue, labels, store, session, "quiz")
    # Like Anki's learning steps: what was answered badly comes back in this session once
    # FSRS says it is due again (1 minute after "again", 10 after a first "hard"/"good").
    while finished:
        again = due_again(queue, session, store, now())
        if not again:
            break
        console.print(f"{len(again)} question(s) due again now", style="dim")
        finished = _ask_all(asker, again, ["again"] * len(again), store, session, "quiz")
    return session


def _ask_all(
    asker: Asker,
    queue: Sequence[Record],
    labels: Sequence[str],
    store: Store,
    session: Session,
    source: str,
) -> bool:
    """Ask in order, saving each rating at once; stops at quit or the asker's deadline.

    True when the whole queue was asked (no quit, no time up).
    """
    try:
        for i, (q, label) in enumerate(zip(queue, labels, strict=True), 1):
            if asker.deadline is not None and time.monotonic() >= asker.deadline:
                asker.console.print("[bold red]time is up[/]")
                return False
            outcome = asker.ask(q, i, len(queue), label)
            session.outcomes.append(outcome)
            if outcome.rating is not None:
                ms = int(outcome.seconds * 1000)
                store.rate(q["id"], outcome.rating, duration_ms=ms, source=source)
    except (Quit, KeyboardInterrupt):
        asker.term.end_status()
        return False
    return True


def print_summary(console: Console, session: Session, store: Store, ids: Sequence[str]) -> None:
    counts = Counter(o.rating for o in session.rated)
    skipped = len(session.outcomes) - len(session.rated)
    ratings = " · ".join(f"{RATINGS[r]} {counts[r]}" for r in RATINGS)
    console.print()
    console.print(
        f"[bold]session:[/] answered {len(session.rated)} · {ratings} · skipped {skipped}"
    )
    cards = store.cards()
    upcoming = sorted((cards[i].due, i) for i in ids if i in cards)
    if upcoming:
        due, qid = upcoming[0]
        console.print(f"next due: {when(due)} ({qid}); progress saved")
    else:
        console.print("progress saved")


# -----------------------------------------------------------------------------
# Mock interview


def run_mock(
    term: Terminal,
    bank: Bank,
    queue: Sequence[Record],
    store: Store,
    lang: LangChoice,
    minutes: float,
) -> tuple[Session, list[Record]]:
    """Ask ``queue`` against the clock; returns the session and the questions not reached."""
    session = Session()
    asker = Asker(term, bank, lang, deadline=time.monotonic() + minutes * 60)
    _ask_all(asker, queue, ["mock"] * len(queue), store, session, "mock")
    return session, list(queue[len(session.outcomes) :])  # the one quit on is not answered


def print_mock_summary(
    console: Console, session: Session, records: dict[str, Record], missed: Sequence[Record]
) -> None:
    from rich.table import Table

    table = Table(title="mock interview", title_justify="left", header_style="bold")
    table.add_column("question")
    table.add_column("kind")
    table.add_column("time", justify="right")
    table.add_column("hints", justify="right")
    table.add_column("rating")
    for o in session.outcomes:
        rating = (
            f"[{_RATING_STYLE[o.rating]}]{RATINGS[o.rating]}[/]" if o.rating else "[dim]skipped[/]"
        )
        minutes, seconds = divmod(int(o.seconds), 60)
        table.add_row(
            o.question_id,
            records[o.question_id]["kind"],
            f"{minutes}:{seconds:02d}",
            str(o.hints),
            rating,
        )
    for q in missed:
        table.add_row(q["id"], q["kind"], "–", "–", "[dim]not reached[/]")
    console.print()
    console.print(table)
    review = [o.question_id for o in session.outcomes if o.rating in (None, 1, 2)]
    review += [q["id"] for q in missed]
    if review:
        console.print("[bold]review next:[/] " + ", ".join(review))
        console.print(f"  e.g. aiprep show {review[0]} --answer", style="dim")
    else:
        console.print("[bold green]all answered well[/]: try a longer mock or harder questions")
