"""The ``aiprep`` command line. Commands are thin: the work lives in the library modules.

Exit codes: 0 ok, 1 a check failed (or the solution crashed or timed out), 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from aiprep.bank import Bank, BankError, Record, load_bank
from aiprep.ids import topic_of
from aiprep.lang import LangChoice

if TYPE_CHECKING:
    from rich.console import Console

    from aiprep.store import Store

LANG_CHOICE = click.Choice(["en", "zh"])
LANG_BOTH_CHOICE = click.Choice(["en", "zh", "both"])
KIND_CHOICE = click.Choice(["concept", "multiple-choice", "coding", "estimate", "debug"])
DIFFICULTY_CHOICE = click.Choice(["easy", "medium", "hard"])


class BadInput(click.ClickException):
    """A user error: one clear line, exit code 2."""

    exit_code = 2


class BankProblems(click.ClickException):
    """The bank does not validate: every problem on its own line, exit code 2."""

    exit_code = 2

    def __init__(self, error: BankError) -> None:
        super().__init__(f"{len(error.problems)} problem(s) in the bank")
        self.problems = error.problems

    def show(self, file: Any = None) -> None:
        for problem in self.problems:
            click.echo(str(problem), err=True)
        click.echo(f"aiprep: {self.message}; run `aiprep validate` after fixing", err=True)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, emoji=False)


def _bank(ctx: click.Context) -> Bank:
    try:
        return load_bank(ctx.obj)
    except BankError as e:
        raise BankProblems(e) from None


def _question(bank: Bank, question_id: str) -> Record:
    q = bank.get(question_id)
    if q is None:
        near = bank.closest(question_id)
        hint = f"; did you mean {', '.join(near)}?" if near else "; see `aiprep list`"
        raise BadInput(f"no question {question_id!r}{hint}")
    return q


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _filters(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--topic", multiple=True, help="Only this topic (repeatable)."),
            click.option("--kind", type=KIND_CHOICE, multiple=True, help="Only this kind."),
            click.option("--difficulty", type=DIFFICULTY_CHOICE, multiple=True),
            click.option("--tag", multiple=True, help="Questions carrying this tag."),
        ]
    ):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--bank",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AIPREP_BANK",
    help="Folder holding questions/ and solutions/ (default: the bank shipped with aiprep).",
)
@click.version_option(package_name="aiprep")
@click.pass_context
def cli(ctx: click.Context, bank: Path | None) -> None:
    """aiprep: interview prep for AI / large-model engineering.

    Every technical answer is a program: run the reference, watch it train on
    synthetic data, and see the checks that prove its claim.
    """
    ctx.obj = bank


@cli.command("list")
@_filters
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the full records as a JSON array.")
@click.pass_context
def list_(
    ctx: click.Context,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    lang: LangChoice,
    as_json: bool,
) -> None:
    """List the questions of the bank, filtered."""
    bank = _bank(ctx)
    unknown = set(topic) - set(bank.topics)
    if unknown:
        names, known = ", ".join(sorted(unknown)), ", ".join(bank.topics)
        raise BadInput(f"unknown topic {names}; topics: {known}")
    records = bank.select(topic, kind, difficulty, tag)
    if as_json:
        _print_json(records)
        return
    runnable = sum(1 for q in records if q["solution"])
    summary = f"{len(records)} of {len(bank)} questions, {runnable} runnable"
    if not sys.stdout.isatty():  # for grep, cut and friends: one line per question
        from aiprep.render import question_lines

        sys.stdout.write(question_lines(records, lang) + f"\n{summary}\n")
        return
    from aiprep.render import question_table

    console = _console()
    console.print(question_table(records, lang, console), crop=True)
    console.print(f"\n{summary}", style="dim")


@cli.command()
@click.argument("question_id", metavar="ID")
@click.option("--answer", is_flag=True, help="Also show the reference answer and key points.")
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the question's record as JSON.")
@click.pass_context
def show(
    ctx: click.Context, question_id: str, answer: bool, lang: LangChoice, as_json: bool
) -> None:
    """Show one question (prompt as Markdown; --answer adds the answer)."""
    q = _question(_bank(ctx), question_id)
    if as_json:
        _print_json(q)
        return
    from aiprep.render import question_page

    _console().print(question_page(q, lang, answer=answer))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON array.")
@click.option(
    "--stale",
    type=click.IntRange(min=0),
    metavar="MONTHS",
    help="Also list the questions whose `as_of` is more than MONTHS months old: a report "
    "for reviewers of dated facts (it does not change the exit code).",
)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, stale: int | None) -> None:
    """Check question files and solution links; exit 2 if anything is wrong.

    PATHS may be bank folders, topic folders or single files (default: the whole bank).
    Each problem is printed as `path:line: what is wrong — how to fix it`. With --json and
    --stale, the output is {"problems": [...], "stale": [...]}.
    """
    import datetime

    from aiprep.bank import validate_and_date

    targets = list(paths) or ([ctx.obj] if ctx.obj else [])
    problems, dated = validate_and_date(targets)
    today = datetime.date.today()
    old = [d for d in dated if stale is not None and d.months_old(today) > stale]
    if as_json:
        found = [
            {"path": str(p.path), "line": p.line, "message": p.message, "fix": p.fix}
            for p in problems
        ]
        if stale is None:
            _print_json(found)
        else:
            _print_json(
                {
                    "problems": found,
                    "stale": [
                        {
                            "id": d.id,
                            "path": str(d.path),
                            "line": d.line,
                            "as_of": d.as_of,
                            "months_old": d.months_old(today),
                        }
                        for d in old
                    ],
                }
            )
    else:
        for problem in problems:
            click.echo(str(problem))
        for d in old:
            click.echo(d.stale_line(today))
        if stale is not None:
            click.echo(
                f"{len(old)} of {len(dated)} dated question(s) older than {stale} months",
                err=True,
            )
    if problems:
        if not as_json:
            click.echo(f"{len(problems)} problem(s)", err=True)
        ctx.exit(2)
    if not as_json:
        click.echo("ok: no problems found", err=True)


@cli.command()
@click.option("--export", is_flag=True, help="The schema of `aiprep export --format json` files.")
def schema(export: bool) -> None:
    """Print the JSON Schema of a question file (for YAML editors), or of a JSON export."""
    from aiprep.schema import export_json_schema, json_schema

    _print_json(export_json_schema() if export else json_schema())


@cli.command()
@click.argument("question_id", metavar="ID")
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show TensorFlow's own logs and prints.")
@click.pass_context
def run(ctx: click.Context, question_id: str, timeout: float, as_json: bool, verbose: bool) -> None:
    """Run a question's reference solution and show its metrics and checks.

    The solution trains in a child process (killed after --timeout seconds).
    Exit 0 when every check passes, 1 when one fails or the run crashes.
    """
    bank = _bank(ctx)
    q = _question(bank, question_id)
    if not q["solution"]:
        raise BadInput(f"{question_id} is a {q['kind']} question without a runnable solution")
    from aiprep.render import run_and_show

    # With --json, stdout carries only the JSON; progress still shows on a terminal's stderr.
    console = _console(stderr=as_json)
    result = run_and_show(
        console,
        bank.root,
        q["solution"],
        question_id,
        timeout=timeout,
        verbose=verbose,
        live=not as_json or console.is_terminal,
        show=not as_json,
    )
    if as_json:
        _print_json(_run_json(question_id, q["solution"], result))
    ctx.exit(0 if result.reference_holds else 1)


@cli.command()
@click.argument("question_id", metavar="ID")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the starter (default: ./ID.py).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def practice(ctx: click.Context, question_id: str, output: Path | None, force: bool) -> None:
    """Write a starter file for a coding question: the answer's functions, bodies empty.

    Signatures and docstrings come from the reference solution; the data and the checks
    stay in aiprep. Fill the functions in, then run `aiprep verify ID PATH`.
    """
    bank = _bank(ctx)
    q = _question(bank, question_id)
    if not q["solution"]:
        raise BadInput(f"{question_id} is a {q['kind']} question: there is no code to practise")
    from aiprep.starter import practice_filename, write_starter

    path = output or Path(practice_filename(question_id))
    try:
        write_starter(bank, q, path, force=force)
    except FileExistsError:
        raise BadInput(f"{path} exists; pass --force to overwrite it, or -o another path") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot write ({e.strerror})") from None
    click.echo(f"wrote {path}")
    click.echo(f"next: fill in the functions, then `aiprep verify {question_id} {path}`")


@cli.command()
@click.argument("question_id", metavar="ID")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds."
)
@click.option("--watch", is_flag=True, help="Verify again each time the file is saved.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show TensorFlow's own logs and prints.")
@click.pass_context
def verify(
    ctx: click.Context,
    question_id: str,
    path: Path,
    timeout: float,
    watch: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Check your attempt at a coding question with the reference solution's own checks.

    PATH is a Python file defining the question's answer functions (start from
    `aiprep practice ID`). The checks run in a child process, killed after --timeout
    seconds. A pass records a Good review of the question. Exit 0 pass, 1 fail.
    """
    bank = _bank(ctx)
    q = _question(bank, question_id)
    solution = q["solution"]
    if not solution:
        raise BadInput(f"{question_id} is a {q['kind']} question: there is nothing to verify")
    if watch and as_json:
        raise BadInput("--watch and --json do not go together")
    from aiprep.render import run_and_show

    console = _console(stderr=as_json)
    recorded = False

    def once() -> bool:
        nonlocal recorded
        result = run_and_show(
            console,
            bank.root,
            solution,
            question_id,
            attempt=path,
            timeout=timeout,
            verbose=verbose,
            live=not as_json or console.is_terminal,
            show=not as_json,
        )
        if as_json:
            _print_json({**_run_json(question_id, solution, result), "attempt": str(path)})
        if result.passed and not recorded:
            recorded = True
            card = _record_good(question_id)
            if not as_json:
                console.print(f"recorded a good review; {question_id} is next due {card}")
        return result.passed

    checked = _stamp(path)  # the version this verdict is for
    passed = once()
    if not watch:
        ctx.exit(0 if passed else 1)
    try:
        while True:
            console.print(
                f"\nwatching {path}: save it to verify again, Ctrl-C to stop", style="dim"
            )
            checked = _wait_for_change(path, checked)
            console.rule(f"{path} changed", style="dim")
            passed = once()
    except KeyboardInterrupt:
        console.print("stopped watching", style="dim")
    ctx.exit(0 if passed else 1)  # the last verdict


def _record_good(question_id: str) -> str:
    from aiprep.render import when

    with _store() as store:
        card = store.rate(question_id, 3, source="verify")
    return when(card.due)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # mid-save by an editor that replaces the file
    return st.st_mtime_ns, st.st_size, st.st_ino


def _wait_for_change(path: Path, checked: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """Block until ``path`` differs from the version ``checked`` (file-system events;
    editors that write a new file and rename it over the old one count too, so the folder
    is watched). A save made while the last verdict ran counts: it returns at once."""
    from watchfiles import watch

    target = path.resolve()
    for _ in watch(
        target.parent,
        watch_filter=lambda _change, changed: Path(changed).resolve() == target,
        debounce=200,  # ms: one verdict for an editor's burst of writes
        step=25,
        rust_timeout=1000,  # also look at the file once a second: no event is ever lost
        yield_on_timeout=True,
    ):
        now = _stamp(target)
        if now is not None and now != checked:
            return now
    raise KeyboardInterrupt  # the watch ended without a change: only on a signal


def _require_terminal(command: str) -> None:
    if not sys.stdin.isatty():
        raise BadInput(
            f"`aiprep {command}` reads single keys and needs a terminal on stdin; "
            "run it in a terminal (for data, see `aiprep stats --json`)"
        )


def _store(bank: Bank | None = None) -> Store:
    """The learner's progress; with ``bank``, progress on questions that moved follows them
    to their new ids first (``moved_from``)."""
    from aiprep.store import Store, StoreError

    try:
        store = Store()
    except StoreError as e:
        raise BadInput(str(e)) from None
    if bank is not None:
        store.follow_moves(bank.moves)
    return store


@cli.command()
@_filters
@click.option(
    "--new",
    "new",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="At most this many never-seen questions after the due ones.",
)
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.pass_context
def quiz(
    ctx: click.Context,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    new: int,
    lang: LangChoice,
) -> None:
    """Quiz yourself: due questions first (FSRS), then new ones; ratings saved as you go.

    \b
    Multiple choice: press the letters, Enter to answer; graded at once.
    Other kinds: `a` to type an answer or just think, Enter to reveal the reference,
    tick the key points you covered, then rate 1 again, 2 hard, 3 good, 4 easy.
    Keys while a question is open: h hint, r run the reference solution,
    p write a practice starter, s skip, q quit (Ctrl-C quits too).
    """
    _require_terminal("quiz")
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag)
    from aiprep.quiz import Terminal, print_summary, run_quiz

    console = _console()
    _warm_for(records)
    with _store(bank) as store:
        term = Terminal(console)
        with term.session():
            session = run_quiz(term, bank, records, store, lang, new)
        if not term.gone:  # a closed terminal: every rating is saved, nobody to tell
            print_summary(console, session, store, [q["id"] for q in records])


@cli.command()
@click.option(
    "--minutes",
    type=click.IntRange(min=1, max=240),
    default=30,
    show_default=True,
    help="Length of the interview.",
)
@_filters
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.option("--seed", type=int, default=None, help="Pick the same questions again.")
@click.pass_context
def mock(
    ctx: click.Context,
    minutes: int,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    lang: LangChoice,
    seed: int | None,
) -> None:
    """A timed mock interview: a mix of topics and kinds, one question at a time.

    At least one coding and one strategy question (when the filters allow), a visible
    countdown, the same keys as `aiprep quiz`; at the end, the time each question took,
    your ratings and what to review next. Ratings count toward your progress.
    """
    _require_terminal("mock")
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag)
    import random

    from aiprep.quiz import Terminal, print_mock_summary, run_mock
    from aiprep.schedule import pick_mock

    console = _console()
    with _store(bank) as store:
        queue = pick_mock(
            records, store, minutes, seed if seed is not None else random.randrange(1 << 30)
        )
        if not queue:
            raise BadInput("no questions match these filters")
        console.print(
            f"mock interview: {len(queue)} questions in {minutes} minutes; q or Ctrl-C ends it",
            style="bold",
        )
        _warm_for(queue)
        term = Terminal(console)
        with term.session():
            session, missed = run_mock(term, bank, queue, store, lang, minutes)
        if not term.gone:
            print_mock_summary(console, session, bank.questions, missed)


def _warm_for(records: list[Record]) -> None:
    """When a session may run a solution (`r`), start the runner's fork server in the
    background: TensorFlow imports while the candidate reads, not after they press `r`."""
    if any(q["solution"] for q in records):
        from aiprep.runner import warm_up_in_background

        warm_up_in_background()


def _only_ids(bank: Bank, records: list[Record], ids: tuple[str, ...]) -> list[Record]:
    """``records`` narrowed to ``--ids`` (repeatable or comma-separated); unknown ids are
    one line with suggestions."""
    wanted = {i.strip() for chunk in ids for i in chunk.split(",") if i.strip()}
    for qid in sorted(wanted):
        _question(bank, qid)
    return [q for q in records if q["id"] in wanted] if wanted else records


def _selected(
    bank: Bank,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
) -> list[Record]:
    unknown = set(topic) - set(bank.topics)
    if unknown:
        names, known = ", ".join(sorted(unknown)), ", ".join(bank.topics)
        raise BadInput(f"unknown topic {names}; topics: {known}")
    return bank.select(topic, kind, difficulty, tag)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Your progress: per topic seen/total, due now, due this week, recall, streak."""
    bank = _bank(ctx)
    from aiprep.store import now
    from aiprep.store import stats as compute

    with _store(bank) as store:
        rows, streak = compute(store, {qid: topic_of(qid) for qid in bank.questions})
        reviews = len(store.reviews(bank.questions))
        cards = store.cards()
    upcoming = sorted(c.due for qid, c in cards.items() if qid in bank.questions)
    if as_json:
        _print_json(
            {
                "at": now().isoformat(),
                "topics": [vars(r) for r in rows],
                "total": {
                    "questions": sum(r.total for r in rows),
                    "seen": sum(r.seen for r in rows),
                    "due_now": sum(r.due_now for r in rows),
                    "due_week": sum(r.due_week for r in rows),
                    "reviews": reviews,
                },
                "streak_days": streak,
                "next_due": upcoming[0].isoformat() if upcoming else None,
            }
        )
        return
    from aiprep.render import print_stats

    print_stats(_console(), rows, reviews, streak, upcoming[0] if upcoming else None)


@cli.group()
def progress() -> None:
    """Reset, export or import your progress (to move it to another machine)."""


@progress.command()
@click.option("--topic", multiple=True, help="Only this topic's cards (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reset(ctx: click.Context, topic: tuple[str, ...], yes: bool) -> None:
    """Forget your ratings and review history (all, or of some topics)."""
    ids: list[str] | None = None
    what = "all your progress"
    if topic:
        bank = _bank(ctx)
        _selected(bank, topic, (), (), ())
        ids = [qid for qid in bank.questions if topic_of(qid) in topic]
        what = f"your progress on {', '.join(topic)}"
    if not yes:
        if not sys.stdin.isatty():
            raise BadInput("reset needs confirmation: run it in a terminal or pass --yes")
        click.confirm(f"Forget {what}? This cannot be undone", abort=True)
    with _store() as store:
        removed = store.reset(ids)
    click.echo(f"forgot {removed} card(s)")


@progress.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def export_progress(output: Path | None, force: bool) -> None:
    """Write your cards and review log as JSON (read back by `progress import`)."""
    from aiprep.store import dumps

    with _store() as store:
        text = dumps(store.export()) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    from aiprep.files import write_atomic

    try:
        write_atomic(output, text.encode("utf-8"), force=force)
    except FileExistsError:
        raise BadInput(f"{output} exists; pass --force to overwrite it") from None
    except OSError as e:
        raise BadInput(f"{output}: cannot write ({e.strerror})") from None
    click.echo(f"wrote {output}", err=True)


@progress.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_progress(ctx: click.Context, path: Path) -> None:
    """Merge an export into your progress (reviews added; the newer card wins).

    Progress on questions that have moved since the export follows them to their new ids.
    """
    from aiprep.store import StoreError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not JSON ({e})") from None
    try:
        moves = load_bank(ctx.obj).moves
    except BankError:
        moves = {}  # a broken bank must not block moving one's progress
    with _store() as store:
        try:
            cards, reviews = store.import_(data, origin=str(path))
        except StoreError as e:
            raise BadInput(str(e)) from None
        store.follow_moves(moves)
    click.echo(f"imported {cards} card(s) and {reviews} review(s) from {path}")


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json", "anki", "gift", "moodle-xml", "qti"]),
    required=True,
    help="md, html (one standalone page), json, anki (.apkg), gift or moodle-xml "
    "(Moodle), qti (a QTI 1.2 zip for Canvas).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write.",
)
@_filters
@click.option(
    "--ids", multiple=True, help="Only these question ids (repeatable, or comma-separated)."
)
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.option(
    "--answers/--no-answers",
    default=True,
    show_default=True,
    help="Instructor sheet (answers, key points, correct choices) or student sheet.",
)
@click.option("--with-code", is_flag=True, help="Include each reference solution's source.")
@click.option("--title", default="aiprep questions", show_default=True, help="Title of the set.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def export(
    ctx: click.Context,
    fmt: str,
    output: Path,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    ids: tuple[str, ...],
    lang: LangChoice,
    answers: bool,
    with_code: bool,
    title: str,
    force: bool,
) -> None:
    """Export a question set for instructors (same input, same bytes).

    The file is written atomically: never half a file, even on Ctrl-C. Refuses to
    overwrite without --force.
    """
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag)
    records = _only_ids(bank, records, ids)
    if not records:
        raise BadInput("no questions match these filters; see `aiprep list`")
    if output.exists() and not force:
        raise BadInput(f"{output} exists; pass --force to overwrite it, or -o another path")
    from aiprep.exporters import ExportOptions, items, render
    from aiprep.files import write_atomic

    options = ExportOptions(lang=lang, answers=answers, with_code=with_code, title=title)
    data = render(fmt, items(bank.root, records, options), options)
    try:
        write_atomic(output, data, force=True)
    except OSError as e:
        raise BadInput(f"{output}: cannot write ({e.strerror})") from None
    sheet = "with answers" if answers else "without answers"
    click.echo(f"wrote {output}: {len(records)} question(s), {fmt}, {lang}, {sheet}", err=True)


def _shard_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise BadInput(f"--shard {value}: write K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(k), int(n)


@cli.command()
@click.option("--topic", multiple=True, help="Only this topic (repeatable).")
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Only this kind.")
@click.option("--tag", multiple=True, help="Questions carrying this tag.")
@click.option(
    "--ids", multiple=True, help="Only these question ids (repeatable, or comma-separated)."
)
@click.option(
    "--shard",
    metavar="K/N",
    help="Run only part K of N: a deterministic split balanced by the compute times in "
    "solutions/timings.json, for CI on N machines (then `aiprep smoke-merge`).",
)
@click.option(
    "--changed",
    "changed_ref",
    metavar="[GIT_REF]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Only solutions whose file, or a solution or aiprep module they import, changed "
    "since GIT_REF (default: the merge base with main), committed or not.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None, help="Solutions at a time [default: CPUs]."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds per solution.",
)
@click.option(
    "--memory",
    type=click.FloatRange(min=100),
    default=8192,
    show_default=True,
    help="MiB a solution may hold resident before it is killed.",
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results as JSON (read back by `aiprep smoke-merge` and the tests).",
)
@click.option(
    "--record-timings",
    is_flag=True,
    help="Write each solution's compute time to solutions/timings.json (for --shard).",
)
@click.pass_context
def smoke(
    ctx: click.Context,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    tag: tuple[str, ...],
    ids: tuple[str, ...],
    shard: str | None,
    changed_ref: str | None,
    jobs: int | None,
    timeout: float,
    memory: float,
    junit: Path | None,
    json_path: Path | None,
    record_timings: bool,
) -> None:
    """Run every reference solution's checks, in parallel, each isolated.

    TensorFlow is imported once, by a fork server; each solution runs in its own forked
    process and session, so one that crashes, hangs, exits hard or eats memory fails
    alone, with the tail of its output. A reference also fails when what it states about
    the seed's code no longer holds. Exit 1 if any solution failed.
    """
    import os

    from aiprep import smoke as smoke_lib

    bank = _bank(ctx)
    selected = _only_ids(bank, _selected(bank, topic, kind, (), tag), ids)
    # question id -> its solution module, for the runnable ones
    records = {q["id"]: module for q in selected if (module := q["solution"])}
    part = _shard_option(shard)
    if changed_ref is not None:
        try:
            changed = smoke_lib.changed_files(bank.root, changed_ref or None)
        except ValueError as e:
            raise BadInput(f"--changed: {e}") from None
        keep = set(smoke_lib.affected(bank.root, list(records.values()), changed))
        records = {qid: m for qid, m in records.items() if m in keep}
        if not records:
            _console().print("no solution is affected by the changes: nothing to run")
            return
    if part is not None:
        timings = smoke_lib.read_timings(bank.root)
        mine = set(smoke_lib.shard(list(records.values()), timings, *part))
        records = {qid: m for qid, m in records.items() if m in mine}
    if not records:
        raise BadInput("no runnable questions match these filters; see `aiprep list`")
    import time

    from aiprep.render import SmokeDisplay, smoke_summary
    from aiprep.runner import Job, run_jobs

    for path in (junit, json_path):  # before a long run, not after it
        if path is not None and not path.absolute().parent.is_dir():
            raise BadInput(f"{path}: its folder does not exist")
    workers = jobs or os.cpu_count() or 1
    queue = [Job(qid, module) for qid, module in records.items()]
    console = _console()
    start = time.monotonic()
    with SmokeDisplay(console, queue) as display:
        run_jobs(
            bank.root,
            queue,
            workers=workers,
            timeout=timeout,
            memory_mb=memory,
            on_change=display.update,
        )
    wall = time.monotonic() - start
    console.print(smoke_summary(queue, wall, workers))
    data = smoke_lib.report(queue, wall, workers, smoke_lib.bank_digest(bank.root))
    try:
        smoke_lib.write_reports(
            data,
            queue,
            junit=junit,
            json_path=json_path,
            timings_of=bank.root if record_timings else None,
        )
    except OSError as e:
        raise BadInput(f"{e.filename}: cannot write ({e.strerror})") from None
    ctx.exit(0 if all(j.state == "passed" for j in queue) else 1)


@cli.command("smoke-merge")
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the merged JSON report.",
)
def smoke_merge(reports: tuple[Path, ...], junit: Path | None, json_path: Path | None) -> None:
    """Join the JSON reports of `aiprep smoke --shard K/N` runs into one report.

    Prints the merged summary; exit 1 if any solution failed in any shard, 2 if the
    shards overlap or a file is not a smoke report.
    """
    from aiprep import smoke as smoke_lib
    from aiprep.render import smoke_summary
    from aiprep.runner import Job

    try:
        merged = smoke_lib.merge([smoke_lib.read_report(p) for p in reports])
    except ValueError as e:
        raise BadInput(str(e)) from None
    jobs = [Job.from_dict(j) for j in merged["solutions"]]
    _console().print(smoke_summary(jobs, merged["wall_s"], merged["jobs"]))
    try:
        smoke_lib.write_reports(merged, jobs, junit=junit, json_path=json_path)
    except OSError as e:
        raise BadInput(f"{e.filename}: cannot write ({e.strerror})") from None
    sys.exit(0 if all(j.state == "passed" for j in jobs) else 1)


@cli.command("check-coverage")
@click.option("--topic", multiple=True, help="Only this topic (repeatable).")
@click.option(
    "--ids", multiple=True, help="Only these question ids (repeatable, or comma-separated)."
)
@click.option(
    "--mutants/--no-mutants",
    default=True,
    show_default=True,
    help="Also run generated wrong answers: each answer function's result zeroed, negated, "
    "or its first argument returned unchanged.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None, help="Runs at a time [default: CPUs]."
)
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=300, show_default=True, help="Seconds."
)
@click.option(
    "--memory",
    type=click.FloatRange(min=100),
    default=8192,
    show_default=True,
    help="MiB a run may hold resident before it is killed.",
)
@click.option(
    "--min",
    "minimum",
    type=click.FloatRange(0, 100),
    default=None,
    help="Exit 1 when fewer than this percentage of checks were seen failing.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results as JSON.",
)
@click.pass_context
def check_coverage(
    ctx: click.Context,
    topic: tuple[str, ...],
    ids: tuple[str, ...],
    mutants: bool,
    jobs: int | None,
    timeout: float,
    memory: float,
    minimum: float | None,
    json_path: Path | None,
) -> None:
    """For authors: which checks a wrong answer has been seen failing.

    Runs each reference solution, its wrong-answer fixtures
    (tests/fixtures/wrong_answers/<topic>/<slug>[__<variant>].py) and, with --mutants,
    generated wrong answers, all in parallel and isolated like `smoke`. A check counts
    when a wrong answer ran to the end and failed it; a check that cannot be provoked
    says so with a detail starting `guard:`. Lists, per solution, the checks no wrong
    answer failed.
    """
    import os
    import tempfile

    bank = _bank(ctx)
    records = _only_ids(bank, [q for q in _selected(bank, topic, (), (), ()) if q["solution"]], ids)
    if not records:
        raise BadInput("no runnable questions match these filters; see `aiprep list`")
    if json_path is not None and not json_path.absolute().parent.is_dir():
        raise BadInput(f"{json_path}: its folder does not exist")
    from aiprep.check_coverage import collect, plan, totals
    from aiprep.files import write_atomic
    from aiprep.render import SmokeDisplay, coverage_table
    from aiprep.runner import run_jobs as run_all

    console = _console()
    workers = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="aiprep-mutants-") as tmp:
        runnable = [(q["id"], module) for q in records if (module := q["solution"])]
        runs = plan(bank.root, runnable, Path(tmp), mutants=mutants)
        with SmokeDisplay(console, runs.jobs) as display:
            run_all(
                bank.root,
                runs.jobs,
                workers=workers,
                timeout=timeout,
                memory_mb=memory,
                on_change=display.update,
            )
    results = collect(runs)
    summary = totals(results)
    console.print(coverage_table(results, summary))
    if json_path is not None:
        data = {"totals": summary, "solutions": [r.to_dict() for r in results]}
        write_atomic(json_path, (json.dumps(data, indent=2) + "\n").encode(), force=True)
    low = minimum is not None and summary["coverage"] * 100 < minimum
    ctx.exit(1 if low or not all(r.reference_ok for r in results) else 0)


def _run_json(question_id: str, solution: str, result: Any) -> dict[str, Any]:
    return {
        "id": question_id,
        "solution": solution,
        "status": result.status,
        "passed": result.passed,
        "message": result.message,
        "wall_s": round(result.wall_s, 3),
        "report": result.report.to_dict() if result.report else None,
    }


def main() -> NoReturn:
    """Entry point of the ``aiprep`` console script."""
    sys.exit(cli.main(prog_name="aiprep"))
