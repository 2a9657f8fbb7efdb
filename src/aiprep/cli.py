"""The ``aiprep`` command line. Commands are thin: the work lives in the library modules.

Exit codes: 0 ok, 1 a check failed (or the solution crashed or timed out), 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from aiprep.bank import Bank, BankError, Record, load_bank
from aiprep.ids import topic_of
from aiprep.lang import LangChoice
from aiprep.messages import t

if TYPE_CHECKING:
    from rich.console import Console

    from aiprep.store import Store

LANG_CHOICE = click.Choice(["en", "zh"])
LANG_BOTH_CHOICE = click.Choice(["en", "zh", "both"])
KIND_CHOICE = click.Choice(["concept", "multiple-choice", "coding", "estimate", "debug"])
DIFFICULTY_CHOICE = click.Choice(["easy", "medium", "hard"])
STATUS_CHOICE = click.Choice(["new", "due", "failed", "verified", "seen"])  # learner.STATUSES
BINARY_FORMATS = ("anki", "qti")  # zip files: never onto a terminal
LANG_OPTION = click.option(
    "--lang",
    type=LANG_BOTH_CHOICE,
    default="en",
    show_default=True,
    help="Language of the questions: English, Chinese, or both one after the other.",
)


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


class _Cli(click.Group):
    """The command group; also the one place for the exit codes every command shares:
    Ctrl-C exits 130 (128 + SIGINT, as a shell reports it; 1 means a check failed), and a
    reader that closed the pipe (`aiprep list | head -1`) ends the command quietly with 0."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        except KeyboardInterrupt:
            click.echo(err=True)  # end the line the terminal's ^C echo started
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            _silence_stdout()
            raise click.exceptions.Exit(0) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole first sentence, wrapped: click cuts it at the
        column's width with "...", mid-phrase."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for the closed pipe goes nowhere,
    instead of a second BrokenPipeError when Python flushes it at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; _Cli.invoke makes a closed pipe a quiet exit 0
            self.quiet = True
            raise BrokenPipeError

    return _Console(stderr=stderr, highlight=False, emoji=False)


def _bank(ctx: click.Context, *, strict: bool = False, summary: bool = False) -> Bank:
    """The bank. Unless ``strict`` (runs that vouch for the whole bank: smoke, coverage), a
    question file with problems is skipped with one line on stderr naming it. With
    ``summary``, the records may hold only what a listing needs (``bank.SUMMARY_KEYS``)."""
    try:
        bank = load_bank(ctx.obj, skip_broken=not strict, summary=summary)
    except BankError as e:
        raise BankProblems(e) from None
    for path, count in bank.broken_files.items():
        from aiprep.bank import display_path

        what = "skipped" if path.suffix == ".yaml" else "problems in"
        click.echo(
            f"aiprep: {what} {display_path(path)}: {count} problem(s); see `aiprep validate`",
            err=True,
        )
    return bank


def _question(bank: Bank, question_id: str, lang: str = "en") -> Record:
    """The question an id names: the full id or a unique short one (``digits_mlp``, a
    slug or the start of one); an unknown or ambiguous id is one line of error."""
    from aiprep.ids import matching

    found = matching(question_id, bank.questions)
    if not found and question_id in bank.moves:  # an old id (moved_from): its question now
        found = [bank.moves[question_id]]
        click.echo(t("note.moved", lang, old=question_id, new=found[0]), err=True)
    if len(found) == 1 and "." in question_id and found[0] != question_id:
        # A full-looking id that is only the start of another: say which one runs.
        click.echo(t("note.prefix", lang, old=question_id, new=found[0]), err=True)
    if len(found) > 1:
        ids = ", ".join(found[:8]) + (", …" if len(found) > 8 else "")
        raise BadInput(t("error.ambiguous", lang, id=question_id, n=len(found), ids=ids))
    if not found:
        near = bank.closest(question_id)
        hint = (
            t("error.did_you_mean", lang, ids=", ".join(near))
            if near
            else t("error.see_list", lang)
        )
        raise BadInput(t("error.no_question", lang, id=question_id, hint=hint))
    return bank.questions[found[0]]


def _complete_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of question ids: full ids, and slugs (a unique slug is an id)."""
    from click.shell_completion import CompletionItem

    try:
        bank = load_bank(ctx.find_root().params.get("bank"))
    except BankError:
        return []
    ids = [i for i in bank.questions if i.startswith(incomplete)]
    if not ids and "." not in incomplete:
        ids = [i for i in bank.questions if i.split(".", 1)[1].startswith(incomplete)]
    return [CompletionItem(i, help=bank.questions[i]["title"]["en"]) for i in ids]


def _complete_topic(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    try:
        bank = load_bank(ctx.find_root().params.get("bank"))
    except BankError:
        return []
    return [topic for topic in bank.topics if topic.startswith(incomplete)]


def _complete_tag(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    try:
        bank = load_bank(ctx.find_root().params.get("bank"))
    except BankError:
        return []
    tags = sorted({tag for q in bank.questions.values() for tag in q["tags"]})
    return [tag for tag in tags if tag.startswith(incomplete)]


def _print_json(data: Any) -> None:
    import json  # only here: `list` and `show` without --json never load it

    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _filters(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--topic",
                multiple=True,
                shell_complete=_complete_topic,
                help="Only this topic (repeatable).",
            ),
            click.option("--kind", type=KIND_CHOICE, multiple=True, help="Only this kind."),
            click.option(
                "--difficulty",
                type=DIFFICULTY_CHOICE,
                multiple=True,
                help="Only this difficulty (repeatable).",
            ),
            click.option(
                "--tag",
                multiple=True,
                shell_complete=_complete_tag,
                help="Questions carrying this tag.",
            ),
        ]
    ):
        f = option(f)
    return f


@click.group(
    cls=_Cli,
    invoke_without_command=True,  # a bare `aiprep` says what is due (`aiprep today`)
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    synthetic data, and see the checks that prove its claim. Without a command: what is
    due today (`aiprep today`).
    """
    ctx.obj = bank
    if ctx.invoked_subcommand is None:
        ctx.invoke(today)


@cli.command("list")
@_filters
@click.option(
    "--status",
    type=STATUS_CHOICE,
    multiple=True,
    help="Only questions with this status of yours (repeatable): new (never rated), due, "
    "failed (last rated again, or a failed verify), verified (passed `aiprep verify`), "
    "seen (the rest).",
)
@LANG_OPTION
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the full records, each with your status, as a JSON array.",
)
@click.pass_context
def list_(
    ctx: click.Context,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    status: tuple[str, ...],
    lang: LangChoice,
    as_json: bool,
) -> None:
    """List the questions of the bank, filtered, with your status on each."""
    from aiprep import learner  # sqlite3 only: a listing stays quick

    bank = _bank(ctx, summary=not as_json)  # the JSON prints the full records
    records = _selected(bank, topic, kind, difficulty, tag, lang)
    progress, at = learner.read(), learner.now()
    statuses = {q["id"]: progress.status(q["id"], at) for q in records}
    if status:
        records = [q for q in records if statuses[q["id"]] in status]
    if as_json:
        _print_json([{**q, "status": statuses[q["id"]]} for q in records])
        return
    runnable = sum(1 for q in records if q["solution"])
    summary = t("list.summary", lang, shown=len(records), total=len(bank), runnable=runnable)
    shown: dict[str, str] = {q["id"]: statuses[q["id"]] for q in records}
    if not sys.stdout.isatty():  # for grep, cut and friends: one line per question
        from aiprep.render import question_lines

        sys.stdout.write(question_lines(records, lang, shown) + f"\n{summary}\n")
        return
    from aiprep.render import print_rows, question_rows

    console = _console()
    # The summary as a row too: a styled console.print would wrap it with rich's word pattern
    # (compiling its CJK classes) and split it into lines: half the listing's render time.
    rows = question_rows(records, lang, console.width, shown)
    print_rows(console, [*rows, [], [(summary, "dim")]])


@cli.command()
@click.argument("question_id", metavar="ID", shell_complete=_complete_id)
@click.option("--answer", is_flag=True, help="Also show the reference answer and key points.")
@LANG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the question's record as JSON.")
@click.pass_context
def show(
    ctx: click.Context, question_id: str, answer: bool, lang: LangChoice, as_json: bool
) -> None:
    """Show one question (prompt as Markdown; --answer adds the answer)."""
    q = _question(_bank(ctx), question_id, lang)
    if as_json:
        _print_json(q)
        return
    from aiprep.render import print_trimmed, question_page

    print_trimmed(_console(), question_page(q, lang, answer=answer))


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
            {"path": str(p.path), "line": p.line or None, "message": p.message, "fix": p.fix}
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
@click.argument("question_id", metavar="ID", shell_complete=_complete_id)
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show TensorFlow's own logs and prints.")
@click.option("--no-plot", is_flag=True, help="No charts of the training curves at the end.")
@click.option(
    "--logdir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write TensorBoard event files to DIR/ID/<phase> (then `tensorboard --logdir DIR`).",
)
@click.pass_context
def run(
    ctx: click.Context,
    question_id: str,
    timeout: float,
    as_json: bool,
    verbose: bool,
    no_plot: bool,
    logdir: Path | None,
) -> None:
    """Run a question's reference solution and show its metrics and checks.

    The solution trains in a child process (killed after --timeout seconds). On a
    terminal, charts of the curves it reported (loss, accuracy, ... per phase) follow
    the report; --logdir writes them for TensorBoard too.
    Exit 0 when every check passes, 1 when one fails or the run crashes.
    """
    bank = _bank(ctx)
    q = _question(bank, question_id)
    question_id = q["id"]  # a short id given: the full one
    if not q["solution"]:
        raise BadInput(t("error.not_runnable", id=question_id, kind=q["kind"]))
    from aiprep import curves, tensorboard_log
    from aiprep.render import run_and_show

    if logdir is not None and (problem := tensorboard_log.check_logdir(logdir)):
        raise BadInput(problem)  # before the run, not after it

    # With --json, stdout carries only the JSON; progress still shows on a terminal's stderr.
    console = _console(stderr=as_json)
    result = run_and_show(
        console,
        bank.root,
        q["solution"],
        question_id,
        title=q["title"]["en"],
        timeout=timeout,
        verbose=verbose,
        live=not as_json or console.is_terminal,
        show=not as_json,
    )
    if as_json:
        _print_json(_run_json(question_id, q["solution"], result))
    elif not no_plot:
        curves.show(result.series, result.epochs)
    if logdir is not None:
        _write_logdir(console, logdir, question_id, result)
    ctx.exit(0 if result.reference_holds else 1)


@cli.command()
@click.argument("question_id", metavar="ID", shell_complete=_complete_id)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the starter: a file, a folder (then FOLDER/ID.py) or - for "
    "standard output (default: ./ID.py).",
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
    question_id = q["id"]  # a short id given: the full one
    if not q["solution"]:
        raise BadInput(t("error.no_code", id=question_id, kind=q["kind"]))
    from aiprep.files import is_stdout
    from aiprep.starter import practice_filename, starter_text, write_starter

    if is_stdout(output):
        click.echo(starter_text(bank, q), nl=False)
        return
    path = output or Path(practice_filename(question_id))
    if path.is_dir():  # -o DIR: DIR/ID.py
        path = path / practice_filename(question_id)
    try:
        write_starter(bank, q, path, force=force)
    except FileExistsError:
        raise BadInput(f"{path} exists; pass --force to overwrite it, or -o another path") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot write ({e.strerror})") from None
    click.echo(t("practice.wrote", path=path))
    click.echo(t("practice.next", id=question_id, path=path))


@cli.command()
@click.argument("question_id", metavar="ID", shell_complete=_complete_id)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds."
)
@click.option("--watch", is_flag=True, help="Verify again each time the file is saved.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show TensorFlow's own logs and prints.")
@click.option("--no-plot", is_flag=True, help="No charts of the training curves after a verdict.")
@click.option(
    "--logdir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write TensorBoard event files to DIR/ID/<phase> (each verdict adds its points).",
)
@click.pass_context
def verify(
    ctx: click.Context,
    question_id: str,
    path: Path,
    timeout: float,
    watch: bool,
    as_json: bool,
    verbose: bool,
    no_plot: bool,
    logdir: Path | None,
) -> None:
    """Check your attempt at a coding question with the reference solution's own checks.

    PATH is a Python file defining the question's answer functions (start from
    `aiprep practice ID`). The checks run in a child process, killed after --timeout
    seconds. A pass records a Good review of the question, a failed check or an error in
    your code an Again review (once each per command), then says what to try next:
    `aiprep hint ID` or the answer. Exit 0 pass, 1 fail.
    """
    bank = _bank(ctx)
    q = _question(bank, question_id)
    question_id = q["id"]  # a short id given: the full one
    solution = q["solution"]
    if not solution:
        raise BadInput(t("error.nothing_to_verify", id=question_id, kind=q["kind"]))
    if watch and as_json:
        raise BadInput(t("error.watch_json"))
    from aiprep import curves, tensorboard_log
    from aiprep.render import run_and_show

    if logdir is not None and (problem := tensorboard_log.check_logdir(logdir)):
        raise BadInput(problem)

    console = _console(stderr=as_json)
    recorded: set[int] = set()  # the ratings this command has recorded: each once

    def once() -> bool:
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
        elif not no_plot:
            curves.show(result.series, result.epochs)
        if logdir is not None:
            _write_logdir(console, logdir, question_id, result)
        if result.passed and 3 not in recorded:
            recorded.add(3)
            due = _record(question_id, 3)
            if not as_json:
                console.print(t("verify.recorded_good", id=question_id, when=due))
        elif not result.passed:
            # A function still unwritten (the starter's NotImplementedError) is no attempt:
            # nothing to record. A failed check or an error in the code is a wrong answer.
            unwritten = ": NotImplementedError:" in result.message
            if not unwritten and not recorded:
                recorded.add(1)
                due = _record(question_id, 1)
                if not as_json:
                    console.print(t("verify.recorded_again", id=question_id, when=due))
            if not as_json:
                console.print(_next_step(q), style="dim", soft_wrap=True)
        return result.passed

    checked = _stamp(path)  # the version this verdict is for
    passed = once()
    if not watch:
        ctx.exit(0 if passed else 1)
    try:
        while True:
            console.print("\n" + t("verify.watching", path=path), style="dim")
            checked = _wait_for_change(path, checked)
            console.rule(t("verify.changed", path=path), style="dim")
            passed = once()
    except KeyboardInterrupt:  # while waiting or mid-run: the last finished verdict stands
        console.print(t("verify.stopped"), style="dim")
    ctx.exit(0 if passed else 1)  # the last verdict


def _record(question_id: str, rating: int) -> str:
    """Log a verify verdict (3 good, 1 again); when the question is due next."""
    from aiprep.render import when

    with _store() as store:
        card = store.rate(question_id, rating, source="verify")
    return when(card.due)


def _next_step(q: Record) -> str:
    """After a failed verify: the next hint not yet seen, and the answer."""
    with _store() as store:
        shown = store.hints_shown(q["id"])
    if not q["hints"]:
        return t("verify.answer", id=q["id"])
    if shown < len(q["hints"]):
        return t("verify.next_hint", id=q["id"], i=shown + 1, n=len(q["hints"]))
    return t("verify.no_hint_left", id=q["id"])


@cli.command()
@click.argument("question_id", metavar="ID", shell_complete=_complete_id)
@click.option("--all", "show_all", is_flag=True, help="Show every hint (and count them seen).")
@click.option("--reset", is_flag=True, help="Hide this question's hints again.")
@LANG_OPTION
@click.pass_context
def hint(ctx: click.Context, question_id: str, show_all: bool, reset: bool, lang: str) -> None:
    """Show the next hint of a question you have not seen yet: one more per call.

    Your progress remembers how many were shown (like rustlings' `hint`), so a failed
    `aiprep verify` can point at the next one. --all shows them all again, --reset starts
    over.
    """
    q = _question(_bank(ctx), question_id, lang)
    qid, hints = q["id"], q["hints"]
    with _store() as store:
        if reset:
            store.set_hints_shown(qid, 0)
            click.echo(t("hint.reset", lang, id=qid))
            return
        if not hints:
            click.echo(t("hint.none", lang, id=qid))
            return
        shown = store.hints_shown(qid)
        if shown >= len(hints) and not show_all:
            click.echo(t("hint.all_shown", lang, id=qid, n=len(hints)))
            return
        start, end = (0, len(hints)) if show_all else (shown, shown + 1)
        store.set_hints_shown(qid, max(shown, end))
    from aiprep.lang import bilingual

    for i in range(start, end):
        click.echo(
            f"{t('hint.head', lang, i=i + 1, n=len(hints))} {bilingual(hints[i], lang, ' / ')}"
        )
    if end < len(hints):
        click.echo(t("hint.more", lang, id=qid, left=len(hints) - end))


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
    now = _stamp(target)
    if now is not None and now != checked:  # saved before the watcher below is ready
        return now
    for _ in watch(
        target.parent,
        watch_filter=lambda _change, changed: Path(changed).resolve() == target,
        recursive=False,  # the file's own folder: no watches set on everything below it
        debounce=200,  # ms: one verdict for an editor's burst of writes
        step=25,
        rust_timeout=1000,  # also look at the file once a second: no event is ever lost
        yield_on_timeout=True,
    ):
        now = _stamp(target)
        if now is not None and now != checked:
            return now
    raise KeyboardInterrupt  # the watch ended without a change: only on a signal


def _require_terminal(command: str, lang: str = "en") -> None:
    if not sys.stdin.isatty():
        raise BadInput(t("error.no_terminal", lang, command=command))


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
@LANG_OPTION
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
    tick the key points you covered, then rate 1 again, 2 hard, 3 good, 4 easy
    (each key shows when the question would come back: 1m, 10m, 4d, ...).
    Keys while a question is open: h hint, r run the reference solution,
    p write a practice starter, s skip, u undo the rating of the question before
    (and ask it again), q quit (Ctrl-C quits too).
    """
    _require_terminal("quiz", lang)
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag, lang)
    from aiprep.quiz import Terminal, print_summary, run_quiz

    console = _console()
    _warm_for(bank, records)
    with _store(bank) as store:
        term = Terminal(console)
        with term.session():
            session = run_quiz(term, bank, records, store, lang, new)
        if not term.gone:  # a closed terminal: every rating is saved, nobody to tell
            print_summary(console, session, store, [q["id"] for q in records], lang)


@cli.command()
@click.option(
    "--minutes",
    type=click.IntRange(min=1, max=240),
    default=30,
    show_default=True,
    help="Length of the interview.",
)
@_filters
@LANG_OPTION
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
    _require_terminal("mock", lang)
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag, lang)
    import random

    from aiprep.messages import t
    from aiprep.quiz import Terminal, mock_banner, print_mock_summary, run_mock
    from aiprep.schedule import pick_mock

    console = _console()
    with _store(bank) as store:
        queue = pick_mock(
            records, store, minutes, seed if seed is not None else random.randrange(1 << 30)
        )
        if not queue:
            raise BadInput(t("mock.none", lang))
        console.print(mock_banner(len(queue), minutes, lang), style="bold")
        _warm_for(bank, queue)
        term = Terminal(console)
        with term.session():
            session, missed = run_mock(term, bank, queue, store, lang, minutes)
        if not term.gone:
            print_mock_summary(console, session, bank.questions, missed, lang)


def _warm_for(bank: Bank, records: list[Record]) -> None:
    """When a session may run a solution (`r`) that needs TensorFlow, start the runner's fork
    server in the background: TensorFlow imports while the candidate reads, not after they
    press `r`. Plain-Python solutions (estimates, numpy-only answers) need no server: the
    background thread reads their imports and warms nothing for them."""
    modules = [str(q["solution"]) for q in records if q["solution"]]
    if modules:
        from aiprep.runner import warm_up_in_background

        warm_up_in_background(root=bank.root, modules=modules)


def _only_ids(bank: Bank, records: list[Record], ids: tuple[str, ...]) -> list[Record]:
    """``records`` narrowed to ``--ids`` (repeatable or comma-separated); unknown ids are
    one line with suggestions."""
    given = {i.strip() for chunk in ids for i in chunk.split(",") if i.strip()}
    wanted = {_question(bank, qid)["id"] for qid in sorted(given)}  # short ids resolved
    return [q for q in records if q["id"] in wanted] if wanted else records


def _selected(
    bank: Bank,
    topic: tuple[str, ...],
    kind: tuple[str, ...],
    difficulty: tuple[str, ...],
    tag: tuple[str, ...],
    lang: str = "en",
) -> list[Record]:
    unknown = set(topic) - set(bank.topics)
    if unknown:
        names, known = ", ".join(sorted(unknown)), ", ".join(bank.topics)
        raise BadInput(t("error.unknown_topic", lang, names=names, known=known))
    unknown = set(tag) - set(bank.tags)
    if unknown:  # not an empty listing: the tags there are
        names, known = ", ".join(sorted(unknown)), ", ".join(bank.tags)
        raise BadInput(t("error.unknown_tag", lang, names=names, known=known))
    return bank.select(topic, kind, difficulty, tag)


@cli.command()
@LANG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def stats(ctx: click.Context, lang: str, as_json: bool) -> None:
    """Your progress: per topic seen/total, learning, due now, due this week, recall, streak.

    Recall is FSRS's estimated chance you would recall a question now, over the questions
    past their learning steps; one just rated again is counted under learning instead.
    """
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
                    "learning": sum(r.learning for r in rows),
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

    print_stats(_console(), rows, reviews, streak, upcoming[0] if upcoming else None, lang)


@cli.command()
@LANG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def today(ctx: click.Context, lang: str, as_json: bool) -> None:
    """What is due now, your streak, and the command to run next (also a bare `aiprep`)."""
    from aiprep import learner  # sqlite3 only, like `list`

    bank = _bank(ctx)
    at = learner.now()
    day = learner.today(learner.read(), bank.questions, at)
    if day.due or day.new:
        command = "aiprep quiz"
    elif day.total:
        command = "aiprep mock --minutes 30"
    else:
        command = "aiprep validate"
    if as_json:
        _print_json(
            {
                "at": at.isoformat(),
                "due": day.due,
                "learning": day.learning,
                "new": day.new,
                "total": day.total,
                "streak_days": day.streak,
                "next_due": day.next_due.isoformat() if day.next_due else None,
                "next": command,
            }
        )
        return
    from aiprep.messages import count
    from aiprep.render import when

    if day.new == day.total:
        click.echo(t("today.start", lang))
        return
    click.echo(
        t("today.due", lang, due=len(day.due), learning=day.learning, new=day.new, total=day.total)
    )
    if day.due:  # the most overdue first, a few: the quiz asks them in this order
        more = f" (+{len(day.due) - 5})" if len(day.due) > 5 else ""
        click.echo(t("today.due_ids", lang, ids=", ".join(day.due[:5]) + more))
    line = t("today.streak", lang, days=count(day.streak, "day", lang))
    if day.next_due is not None:
        line += " · " + t("today.next_due", lang, when=when(day.next_due, lang))
    click.echo(line)
    click.echo(t("today.run", lang, command=command))


@cli.group()
def progress() -> None:
    """Reset, export or import your progress (to move it to another machine)."""


@progress.command()
@click.option(
    "--topic",
    multiple=True,
    shell_complete=_complete_topic,
    help="Only this topic's cards (repeatable).",
)
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
    click.echo(t("progress.forgot", n=removed))


@progress.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default, or -: standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def export_progress(output: Path | None, force: bool) -> None:
    """Write your cards and review log as JSON (read back by `progress import`)."""
    from aiprep.store import dumps

    with _store() as store:
        text = dumps(store.export()) + "\n"
    from aiprep.files import is_stdout, write_atomic

    if output is None or is_stdout(output):
        click.echo(text, nl=False)
        return
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
    import json

    from aiprep.store import StoreError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not JSON ({e})") from None
    try:
        moves = load_bank(ctx.obj, skip_broken=True).moves
    except BankError:
        moves = {}  # a broken bank must not block moving one's progress
    with _store() as store:
        try:
            cards, reviews = store.import_(data, origin=str(path))
        except StoreError as e:
            raise BadInput(str(e)) from None
        store.follow_moves(moves)
    click.echo(t("progress.imported", cards=cards, reviews=reviews, path=path))


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
    help="The file to write; - for standard output (anki and qti only into a pipe).",
)
@_filters
@click.option(
    "--ids",
    multiple=True,
    shell_complete=_complete_id,
    help="Only these question ids (repeatable, or comma-separated).",
)
@LANG_OPTION
@click.option(
    "--answers/--no-answers",
    default=True,
    show_default=True,
    help="Instructor sheet (answers, key points, correct choices) or student sheet.",
)
@click.option("--with-code", is_flag=True, help="Include each reference solution's source.")
@click.option("--title", default="aiprep questions", show_default=True, help="Title of the set.")
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="SMOKE.json",
    help="An `aiprep smoke --json` report: show beside each runnable question what its "
    "reference measured (verdict, checks, metrics, date, charts of its curves). md and "
    "html only; md writes the charts as SVG files beside it (set.md: set.assets/).",
)
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
    results: Path | None,
    force: bool,
) -> None:
    """Export a question set for instructors (same input, same bytes).

    The file is written atomically: never half a file, even on Ctrl-C. Refuses to
    overwrite without --force.

    With --results, the instructor sheet also shows each runnable question's measured
    evidence from a smoke report (`aiprep smoke --ids ... --json smoke.json`).
    """
    bank = _bank(ctx)
    records = _selected(bank, topic, kind, difficulty, tag)
    records = _only_ids(bank, records, ids)
    if not records:
        raise BadInput("no questions match these filters; see `aiprep list`")
    from aiprep.files import is_stdout, would_overwrite, write_atomic

    to_stdout = is_stdout(output)
    if to_stdout and fmt in BINARY_FORMATS and sys.stdout.isatty():
        raise BadInput(f"{fmt} is a binary format: redirect it (> file) or pipe it, or -o FILE")
    if not to_stdout and would_overwrite(output) and not force:
        raise BadInput(f"{output} exists; pass --force to overwrite it, or -o another path")
    from aiprep.exporters import ExportOptions, items, render

    measured, assets_dir = None, None
    if results is not None:
        if fmt not in ("md", "html"):
            raise BadInput(f"--results works with --format md or html, not {fmt}")
        if not answers:
            raise BadInput("--results shows measured answers: drop --no-answers")
        if fmt == "md" and to_stdout:
            raise BadInput("--results with md writes chart files beside it: give -o FILE.md")
        from aiprep.exporters.evidence import load, unknown_ids

        try:
            measured = load(results)
        except ValueError as e:
            raise BadInput(str(e)) from None
        unknown = unknown_ids(measured, set(bank.questions))
        if unknown:
            click.echo(
                f"warning: {results}: {len(unknown)} result(s) for ids this bank does not "
                f"have (e.g. {unknown[0]}); is the report from another bank? Left out.",
                err=True,
            )
        if fmt == "md":
            assets_dir = output.with_name(output.stem + ".assets")
    options = ExportOptions(
        lang=lang,
        answers=answers,
        with_code=with_code,
        title=title,
        results=measured,
        assets=assets_dir.name if assets_dir else "",
    )
    exported = items(bank.root, records, options)
    data = render(fmt, exported, options)
    if assets_dir is not None:
        from aiprep.exporters.markdown import assets

        for name, svg in assets(exported, options).items():
            try:
                assets_dir.mkdir(exist_ok=True)
                write_atomic(assets_dir / name, svg, force=True)
            except OSError as e:
                raise BadInput(f"{assets_dir / name}: cannot write ({e.strerror})") from None
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        output = Path("standard output")
    else:
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
@click.option(
    "--topic", multiple=True, shell_complete=_complete_topic, help="Only this topic (repeatable)."
)
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Only this kind.")
@click.option(
    "--tag", multiple=True, shell_complete=_complete_tag, help="Questions carrying this tag."
)
@click.option(
    "--ids",
    multiple=True,
    shell_complete=_complete_id,
    help="Only these question ids (repeatable, or comma-separated).",
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
@click.option(
    "--logdir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write TensorBoard event files to DIR/ID/<phase> for every solution run.",
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
    logdir: Path | None,
) -> None:
    """Run every reference solution's checks, in parallel, each isolated.

    TensorFlow is imported once, by a fork server; each solution runs in its own forked
    process and session, so one that crashes, hangs, exits hard or eats memory fails
    alone, with the tail of its output. A reference also fails when what it states about
    the seed's code no longer holds. Each reference computes everything it could read
    from the kit.memo cache (compute times as a fresh machine pays them) and writes it for
    the runs after it. Exit 1 if any solution failed.
    """
    import os

    from aiprep import smoke as smoke_lib

    bank = _bank(ctx, strict=True)
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
    if logdir is not None:
        from aiprep import tensorboard_log

        if problem := tensorboard_log.check_logdir(logdir):
            raise BadInput(problem)
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
            # Every reference computes what it could read from kit.memo (compute times as a
            # fresh machine pays them) and writes it, for the tests' and candidates' runs.
            env_defaults={"AIPREP_MEMO": "write"},
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
    if logdir is not None:
        for job in queue:
            _write_logdir(console, logdir, job.id, job, quiet=True)
        console.print(f"TensorBoard logs: tensorboard --logdir {logdir}", style="dim")
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
@click.option(
    "--topic", multiple=True, shell_complete=_complete_topic, help="Only this topic (repeatable)."
)
@click.option(
    "--ids",
    multiple=True,
    shell_complete=_complete_id,
    help="Only these question ids (repeatable, or comma-separated).",
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

    bank = _bank(ctx, strict=True)
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
        import json

        data = {"totals": summary, "solutions": [r.to_dict() for r in results]}
        try:
            write_atomic(json_path, (json.dumps(data, indent=2) + "\n").encode(), force=True)
        except OSError as e:
            raise BadInput(f"{json_path}: cannot write ({e.strerror})") from None
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
        "compute_s": None if result.compute_s is None else round(result.compute_s, 3),
        "cpu_s": None if result.cpu_s is None else round(result.cpu_s, 3),
        "tensorflow": result.tensorflow,
        "report": result.report.to_dict() if result.report else None,
        "series": result.series,  # phase -> metric -> [[step, value], ...]
        "epochs": result.epochs,  # phase -> [[step, epoch], ...]
    }


def _write_logdir(
    console: Console, logdir: Path, question_id: str, result: Any, quiet: bool = False
) -> None:
    """Write a run's TensorBoard event files (``--logdir``) and say where they are."""
    from aiprep import tensorboard_log

    try:
        written = tensorboard_log.write_job(logdir, result, question_id)
    except OSError as e:
        raise BadInput(f"--logdir {logdir}: cannot write ({e.strerror})") from None
    if not quiet:
        runs = ", ".join(p.name for p in written) or "nothing to log"
        console.print(
            f"TensorBoard: {logdir / tensorboard_log.run_name(question_id)} ({runs}); "
            f"view with `tensorboard --logdir {logdir}`",
            style="dim",
            soft_wrap=True,
        )


def main() -> NoReturn:
    """Entry point of the ``aiprep`` console script."""
    sys.exit(cli.main(prog_name="aiprep"))
