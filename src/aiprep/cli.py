"""The ``aiprep`` command line. Commands are thin: the work lives in the library modules.

Exit codes: 0 ok, 1 a check failed (or the solution crashed or timed out), 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from aiprep.bank import Bank, BankError, Record, load_bank

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


def _console(stderr: bool = False) -> Any:
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
    lang: str,
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
    from aiprep.render import question_table

    console = _console()
    console.print(question_table(records, lang, console), crop=True)
    runnable = sum(1 for q in records if q["solution"])
    console.print(f"\n{len(records)} of {len(bank)} questions, {runnable} runnable", style="dim")


@cli.command()
@click.argument("question_id", metavar="ID")
@click.option("--answer", is_flag=True, help="Also show the reference answer and key points.")
@click.option("--lang", type=LANG_BOTH_CHOICE, default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the question's record as JSON.")
@click.pass_context
def show(ctx: click.Context, question_id: str, answer: bool, lang: str, as_json: bool) -> None:
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
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check question files and solution links; exit 2 if anything is wrong.

    PATHS may be bank folders, topic folders or single files (default: the whole bank).
    Each problem is printed as `path:line: what is wrong — how to fix it`.
    """
    from aiprep.bank import validate as validate_paths

    targets = list(paths) or ([ctx.obj] if ctx.obj else [])
    problems = validate_paths(targets)
    if as_json:
        _print_json(
            [
                {"path": str(p.path), "line": p.line, "message": p.message, "fix": p.fix}
                for p in problems
            ]
        )
    else:
        for problem in problems:
            click.echo(str(problem))
    if problems:
        if not as_json:
            click.echo(f"{len(problems)} problem(s)", err=True)
        ctx.exit(2)
    if not as_json:
        click.echo("ok: no problems found", err=True)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of a question file (for YAML editors)."""
    from aiprep.schema import json_schema

    _print_json(json_schema())


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
    from aiprep.render import LiveProgress, report_tables
    from aiprep.runner import run_solution

    # With --json, stdout carries only the JSON; progress still shows on a terminal's stderr.
    console = _console(stderr=as_json)
    live = LiveProgress(
        console, f"solutions.{q['solution']}", enabled=not as_json or console.is_terminal
    )
    with live:
        result = run_solution(
            bank.root, q["solution"], timeout=timeout, verbose=verbose, on_event=live
        )
    if as_json:
        _print_json(
            {
                "id": question_id,
                "solution": q["solution"],
                "status": result.status,
                "passed": result.passed,
                "message": result.message,
                "wall_s": round(result.wall_s, 3),
                "report": result.report.to_dict() if result.report else None,
            }
        )
    elif result.report is None:
        from rich.markup import escape

        console.print(f"[red]error:[/] {question_id}: {escape(result.message)}", soft_wrap=True)
        if result.output_tail:
            console.print(result.output_tail, style="dim", markup=False)
    else:
        report = result.report
        console.print(report_tables(report))
        passed = sum(c.passed for c in report.checks)
        style = "green" if report.passed else "red"
        console.print(
            f"\n[{style}]{passed}/{len(report.checks)} checks passed[/] in {result.wall_s:.1f} s"
        )
    ctx.exit(0 if result.passed else 1)


def main() -> NoReturn:
    """Entry point of the ``aiprep`` console script."""
    sys.exit(cli.main(prog_name="aiprep"))
