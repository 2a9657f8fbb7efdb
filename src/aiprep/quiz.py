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

from rich.cells import cell_len
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from aiprep.bank import Bank, Record
from aiprep.lang import Bilingual, LangChoice, bilingual
from aiprep.messages import count, rating_word, t
from aiprep.render import interval, key_point_list, when
from aiprep.schedule import Outcome, Session, due_again, pick
from aiprep.starter import practice_filename, write_starter
from aiprep.store import RATINGS, Store, now

LETTERS = "ABCDEFGHIJ"
_RATING_STYLE = {1: "red", 2: "yellow", 3: "green", 4: "cyan"}


def _hanging(lead: str | Text, body: str) -> Table:
    """``lead`` then ``body``, continuation lines indented under ``body`` (choices)."""
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(lead, Text(body))
    return grid


class Quit(Exception):
    """The candidate quit (q, Ctrl-C, Ctrl-D) or the terminal went away."""


class TimeUp(Exception):
    """The mock interview's clock ran out while a question was open."""


class Undo(Exception):
    """The candidate pressed u: take back the rating of the question before."""


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
    store: Store | None = None  # for the rating keys' next intervals
    can_undo: bool = False  # the question before was rated in this run: `u` takes it back

    @property
    def console(self) -> Console:
        return self.term.console

    def _text(self, value: Bilingual) -> str:
        return bilingual(value, self.lang)

    def _short(self, value: Bilingual) -> str:
        return bilingual(value, self.lang, " / ")

    def ui(self, key: str, **values: object) -> str:
        """A piece of the quiz's own text in the candidate's language (``quiz.<key>``)."""
        return t(f"quiz.{key}", self.lang, **values)

    def _clock(self) -> str:
        if self.deadline is None:
            return ""
        left = max(0, int(self.deadline - time.monotonic()))
        return f"⏱ {left // 60:02d}:{left % 60:02d}  "

    def wait_key(
        self,
        prompt: str,
        allowed: str | Sequence[str],
        *,
        keep: str | Sequence[str] = (),
        timed: bool = True,
    ) -> str:
        """Show ``prompt`` on the status line until one of ``allowed`` is pressed.

        A key in ``keep`` leaves the status line open, for the caller to redraw in place
        (a toggle), instead of a new prompt line per key press. When the mock's clock
        runs out: TimeUp, or with ``timed=False`` (the answer is already graded) the key
        ``"timeup"``.
        """
        self._status(prompt)
        while True:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.term.end_status()
                    if timed:
                        raise TimeUp
                    return "timeup"
                key = self.term.key(timeout=min(1.0, left))
            else:
                key = self.term.key()
            if key is None:  # a countdown tick
                self._status(prompt)
                continue
            if key in allowed:
                if key not in keep:
                    self.term.end_status()
                return key

    def _status(self, prompt: str) -> None:
        """The status line, cut to the terminal's width: a line that wraps could not be
        redrawn in place, and each redraw would print a new line."""
        text = self._clock() + prompt
        width = self.console.width - 1
        if cell_len(text) > width:
            from rich.cells import set_cell_size

            text = set_cell_size(text, width - 1) + "…"
        self.term.status(text)

    def ask(self, q: Record, index: int, total: int, label: str) -> Outcome:
        start = time.monotonic()
        hints = 0
        self.console.print()
        self.console.print(Rule(f"[{index}/{total}] {q['id']}", align="left", style="cyan"))
        meta = " · ".join(
            t(key, self.lang) for key in (f"kind.{q['kind']}", f"difficulty.{q['difficulty']}")
        )
        meta += " · " + t(f"label.{label}", self.lang)
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
        if self.can_undo:
            commands = commands[:-1] + "uq"
        keys = " · ".join(self.ui(f"key.{c}") for c in commands)
        while True:
            if multiple_choice:
                chosen = " ".join(sorted(picked)) or self.ui("none")
                span = f"{letters[0]}-{letters[-1]}"
                prompt = self.ui("mc_prompt", span=span, chosen=chosen, keys=keys)
                toggles = [*letters, *letters.lower()]
                key = self.wait_key(prompt, [*toggles, "enter", *commands], keep=toggles)
            else:
                prompt = self.ui("open_prompt", keys=keys)
                key = self.wait_key(prompt, ["a", "enter", " ", *commands])
            if key == "q":
                raise Quit
            if key == "u":
                raise Undo
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
            # after the last one, the summary (or the questions due again) comes next
            prompt = self.ui("next" if index < total else "last")
            self.wait_key(prompt, [*"abcdefghijklmnopqrstuvwxyz", "enter", " "], timed=False)
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
        if self.store is not None and self.store.hints_shown(q["id"]) < shown + 1:
            # seen here counts for `aiprep hint` too: it goes on with the next one
            self.store.set_hints_shown(q["id"], shown + 1)
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
            self.console.print(self.ui("correct", rating=rating_word(3, self.lang)))
            return 3
        answer = " ".join(sorted(correct))
        self.console.print(self.ui("wrong", answer=answer, rating=rating_word(1, self.lang)))
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
            shorts = [self._short(point) for point in points]
            self.console.print(key_point_list(shorts, numbered=True))
            numbers = [str(i) for i in range(1, len(points) + 1)]
            while True:
                got = " ".join(str(i) for i in sorted(ticked)) or self.ui("none")
                key = self.wait_key(
                    self.ui("tick", n=len(points), got=got),
                    [*numbers, "enter", "q"],
                    keep=numbers,
                )
                if key == "q":
                    raise Quit
                if key == "enter":
                    break
                ticked ^= {int(key)}
            if ticked:  # the list again, what was covered ticked ☑
                self.console.print(key_point_list(shorts, ticked, numbered=True))
            self.console.print(self.ui("covered", k=len(ticked), n=len(points)))
        share = len(ticked) / len(points) if points else 1.0
        suggested = 3 if share == 1 else 2 if share >= 0.5 else 1
        choices = self._choices(q["id"])
        prompt = self.ui("rate", choices=choices, suggested=rating_word(suggested, self.lang))
        if cell_len(self._clock() + prompt) >= self.console.width - 1:  # a narrow terminal
            self.console.print(self.ui("intervals", choices=choices), style="dim")
            prompt = self.ui("rate_short", suggested=rating_word(suggested, self.lang))
        key = self.wait_key(prompt, ["1", "2", "3", "4", "enter", "q"])
        if key == "q":
            raise Quit
        rating = suggested if key == "enter" else int(key)
        word = rating_word(rating, self.lang)
        self.console.print(self.ui("rated", style=_RATING_STYLE[rating], rating=word))
        return rating

    def _choices(self, question_id: str) -> str:
        """The rating keys with the interval each gives, like Anki's buttons:
        "1 again · 1m   2 hard · 6m   3 good · 10m   4 easy · 4d"."""
        if self.store is None:
            return "   ".join(f"{r} {rating_word(r, self.lang)}" for r in RATINGS)
        at = now()
        due = self.store.preview(question_id, at)
        return "   ".join(
            f"{r} {rating_word(r, self.lang)} · {interval(due[r] - at)}" for r in RATINGS
        )


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
        console.print(t("quiz.nothing", lang), style="dim")
        return session
    cards = store.cards()
    labels = ["due" if q["id"] in cards else "new" for q in queue]
    due = labels.count("due")
    console.print(t("quiz.queue", lang, total=len(queue), due=due, new=len(queue) - due))
    asker = Asker(term, bank, lang, store=store)
    finished = _ask_all(asker, queue, labels, store, session, "quiz")
    # Like Anki's learning steps: what was answered badly comes back in this session once
    # FSRS says it is due again (1 minute after "again", 10 after a first "hard"/"good").
    while finished:
        again = due_again(queue, session, store, now())
        if not again:
            break
        console.print(t("quiz.again_now", lang, n=len(again)), style="dim")
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

    ``u`` on a question takes back the rating of the one before (card and log restored,
    one transaction) and asks that one again. True when the whole queue was asked (no
    quit, no time up).
    """
    asked: list[int] = []  # indices into queue, in the order answered (or skipped)
    i = 0
    try:
        while i < len(queue):
            q = queue[i]
            if asker.deadline is not None and time.monotonic() >= asker.deadline:
                raise TimeUp
            before = session.outcomes[-1] if asked else None
            asker.can_undo = before is not None and before.rating is not None
            try:
                outcome = asker.ask(q, i + 1, len(queue), labels[i])
            except Undo:
                assert before is not None
                store.undo(before.question_id)
                session.outcomes.pop()
                i = asked.pop()
                asker.console.print(t("quiz.undone", asker.lang, id=before.question_id))
                continue
            session.outcomes.append(outcome)
            asked.append(i)
            if outcome.rating is not None:
                ms = int(outcome.seconds * 1000)
                store.rate(q["id"], outcome.rating, duration_ms=ms, source=source)
            i += 1
    except TimeUp:
        # at once, even with a question open: the open one counts as not reached
        asker.term.end_status()
        asker.console.print(t("quiz.time_up", asker.lang))
        return False
    except (Quit, KeyboardInterrupt):
        asker.term.end_status()
        return False
    return True


def print_summary(
    console: Console, session: Session, store: Store, ids: Sequence[str], lang: str = "en"
) -> None:
    counts = Counter(o.rating for o in session.rated)
    skipped = len(session.outcomes) - len(session.rated)
    ratings = " · ".join(f"{rating_word(r, lang)} {counts[r]}" for r in RATINGS)
    console.print()
    console.print(
        t("quiz.session", lang, answered=len(session.rated), ratings=ratings, skipped=skipped)
    )
    cards = store.cards()
    upcoming = sorted((cards[i].due, i) for i in ids if i in cards)
    if upcoming:
        due, qid = upcoming[0]
        console.print(t("quiz.next_due", lang, when=when(due, lang), id=qid))
    else:
        console.print(t("quiz.saved", lang))


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
    asker = Asker(term, bank, lang, deadline=time.monotonic() + minutes * 60, store=store)
    _ask_all(asker, queue, ["mock"] * len(queue), store, session, "mock")
    return session, list(queue[len(session.outcomes) :])  # the one quit on is not answered


def print_mock_summary(
    console: Console,
    session: Session,
    records: dict[str, Record],
    missed: Sequence[Record],
    lang: str = "en",
) -> None:
    table = Table(title=t("mock.title", lang), title_justify="left", header_style="bold")
    for name in ("question", "kind", "time", "hints", "rating"):
        right = name in ("time", "hints")
        table.add_column(t(f"mock.col.{name}", lang), justify="right" if right else "left")
    for o in session.outcomes:
        rating = (
            f"[{_RATING_STYLE[o.rating]}]{rating_word(o.rating, lang)}[/]"
            if o.rating
            else f"[dim]{t('mock.skipped', lang)}[/]"
        )
        minutes, seconds = divmod(int(o.seconds), 60)
        table.add_row(
            o.question_id,
            t(f"kind.{records[o.question_id]['kind']}", lang),
            f"{minutes}:{seconds:02d}",
            str(o.hints),
            rating,
        )
    for q in missed:
        table.add_row(
            q["id"],
            t(f"kind.{q['kind']}", lang),
            "–",
            "–",
            f"[dim]{t('mock.not_reached', lang)}[/]",
        )
    console.print()
    console.print(table)
    review = [o.question_id for o in session.outcomes if o.rating in (None, 1, 2)]
    review += [q["id"] for q in missed]
    if review:
        console.print(t("mock.review_next", lang, ids=", ".join(review)))
        command = f"aiprep show {review[0]} --answer"
        console.print(t("mock.example", lang, command=command), style="dim")
    else:
        console.print(t("mock.all_well", lang))


def mock_banner(count_questions: int, minutes: int, lang: str = "en") -> str:
    """The line before a mock: "mock interview: 3 questions in 1 minute; ..."."""
    return t(
        "mock.start",
        lang,
        questions=count(count_questions, "question", lang),
        minutes=count(minutes, "minute", lang),
    )
