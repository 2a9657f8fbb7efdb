"""Check coverage: which of a solution's checks a wrong answer has been seen failing.

A check that no wrong answer can fail proves nothing. For each solution this runs, in
parallel and isolated like ``aiprep smoke``:

- the reference, for the list of checks (each must pass there);
- every wrong-answer fixture, ``tests/fixtures/wrong_answers/<topic>/<slug>[__<variant>].py``;
- generated mutants of each answer function (``--mutants``): its result replaced by zeros
  of the same structure, its result negated ("a swapped sign"), the identity (the first
  argument returned unchanged: "a step skipped"), and, for a training function, no
  training at all; which ones apply is read from the annotations.

A check counts as covered when some wrong answer ran to the end and failed it by value; a
wrong answer that crashes, or a mutant that does not apply (a function returning a model
has no "zeros"), covers nothing. A check that cannot be provoked by any plausible wrong
answer (a guard, e.g. "the output is finite") says so: its detail starts with ``guard:``.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiprep.runner import Job

GUARD = "guard:"
MUTANTS = {
    "zeros": "returns zeros of the right shape",
    "negated": "returns its result with the sign swapped",
    "identity": "returns its first argument unchanged (a step skipped)",
    "untrained": "returns an empty History without training",
}


@dataclass
class WrongAnswer:
    """One attempt that must fail: a committed fixture or a generated mutant."""

    module: str  # the solution it attacks
    name: str  # "fixture", "fixture:<variant>" or "mutant:<function>:<kind>"
    path: Path


@dataclass
class SolutionCoverage:
    """What the wrong answers of one solution showed."""

    module: str
    question: str
    checks: list[str] = field(default_factory=list)  # the reference's check names
    guards: list[str] = field(default_factory=list)
    reference_ok: bool = False
    failed_by: dict[str, list[str]] = field(default_factory=dict)  # check -> wrong answers
    ran: list[str] = field(default_factory=list)  # wrong answers that ran to the end
    crashed: dict[str, str] = field(default_factory=dict)  # wrong answer -> why

    @property
    def covered(self) -> list[str]:
        return [c for c in self.checks if self.failed_by.get(c)]

    @property
    def uncovered(self) -> list[str]:
        """Checks no wrong answer failed and that do not declare themselves guards."""
        return [c for c in self.checks if not self.failed_by.get(c) and c not in self.guards]

    def to_dict(self) -> dict[str, Any]:
        return {
            "solution": self.module,
            "question": self.question,
            "reference_ok": self.reference_ok,
            "checks": [
                {
                    "name": c,
                    "guard": c in self.guards,
                    "failed_by": self.failed_by.get(c, []),
                }
                for c in self.checks
            ],
            "wrong_answers_run": self.ran,
            "wrong_answers_crashed": self.crashed,
        }


def fixtures(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """Wrong-answer fixtures by solution module: ``[(name, path), ...]``."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted((root / "tests" / "fixtures" / "wrong_answers").glob("*/*.py")):
        slug, *variant = path.stem.split("__")
        name = "fixture" + (f":{variant[0]}" if variant else "")
        found.setdefault(f"{path.parent.name}.{slug}", []).append((name, path))
    return found


def answer_functions(solution_file: Path) -> list[tuple[str, list[str]]]:
    """The functions named in ANSWER, each with the mutants that make sense for it (AST only).

    From the annotations, so a mutant that cannot apply costs no run: zeros and negated
    for a result of numbers (arrays, tensors, floats; or unannotated), identity ("a step
    skipped") when the result has the first parameter's type (``prune(model) -> Model``)
    or the function works in place (``-> None``).
    """
    tree = ast.parse(solution_file.read_text(encoding="utf-8"))
    answer: tuple[str, ...] = ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ANSWER":
            answer = tuple(ast.literal_eval(node.value))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    return [(name, _mutants_for(functions[name])) for name in answer if name in functions]


_NUMBERS = ("ndarray", "float", "int", "Tensor", "np.", "tf.")
_NOT_NUMBERS = ("Model", "History", "Layer", "bytes", "str", "Strategy", "Tokenizer", "Path")


def _mutants_for(fn: ast.FunctionDef) -> list[str]:
    returns = ast.unparse(fn.returns) if fn.returns is not None else ""
    params = [*fn.args.posonlyargs, *fn.args.args]
    first = ast.unparse(params[0].annotation) if params and params[0].annotation else ""
    kinds = []
    if not returns or (
        any(w in returns for w in _NUMBERS) and not any(w in returns for w in _NOT_NUMBERS)
    ):
        kinds += ["zeros", "negated"]
    if params and (not returns or returns == "None" or (first and returns == first)):
        kinds.append("identity")
    if "History" in returns:
        kinds.append("untrained")
    return kinds


def write_mutants(module: str, solution_file: Path, folder: Path) -> list[WrongAnswer]:
    """Generated attempts: each answer function with its result mutated, one at a time."""
    out = []
    for function, kinds in answer_functions(solution_file):
        for kind in kinds:
            path = folder / f"{module.replace('.', '__')}__{function}__{kind}.py"
            path.write_text(_mutant_source(module, function, kind), encoding="utf-8")
            out.append(WrongAnswer(module, f"mutant:{function}:{kind}", path))
    return out


def _mutant_source(module: str, function: str, kind: str) -> str:
    return textwrap.dedent(
        f'''\
        """Generated wrong answer for {module}: {function} {MUTANTS[kind]}."""

        import functools

        from aiprep.mutants import {kind} as _mutate
        from solutions.{module} import *  # noqa: F403  the other answers as the reference has them
        from solutions.{module} import {function} as _reference


        @functools.wraps(_reference)
        def {function}(*args, **kwargs):
            return _mutate(_reference, args, kwargs)
        '''
    )


@dataclass
class Plan:
    """The runs of a coverage measurement: each reference, then every wrong answer."""

    results: dict[str, SolutionCoverage]
    references: list[Job]
    wrong: list[tuple[Job, WrongAnswer]]
    folder: Path  # where the mutants were written: left out of the messages recorded

    @property
    def jobs(self) -> list[Job]:
        return self.references + [job for job, _ in self.wrong]


def plan(root: Path, questions: Sequence[tuple[str, str]], folder: Path, *, mutants: bool) -> Plan:
    """Jobs for each ``(question id, module)``: mutants are written into ``folder``."""
    from aiprep.bank import solution_path

    known = fixtures(root)
    results = {module: SolutionCoverage(module, qid) for qid, module in questions}
    attempts: list[WrongAnswer] = []
    for _, module in questions:
        attempts += [WrongAnswer(module, name, path) for name, path in known.get(module, [])]
        if mutants:
            attempts += write_mutants(module, solution_path(root, module), folder)
    return Plan(
        results,
        [Job(f"{module} · reference", module) for module in results],
        [(Job(f"{a.module} · {a.name}", a.module, attempt=a.path), a) for a in attempts],
        folder,
    )


def collect(done: Plan) -> list[SolutionCoverage]:
    """What the finished jobs of ``done`` showed, per solution."""
    for job in done.references:
        result = done.results[job.module]
        if job.report is not None:
            result.checks = [c.name for c in job.report.checks]
            result.guards = [c.name for c in job.report.checks if c.detail.startswith(GUARD)]
            result.reference_ok = job.report.passed
    for job, attempt in done.wrong:
        result = done.results[job.module]
        if job.report is None:
            result.crashed[attempt.name] = job.message.replace(f"{done.folder}/", "")
            continue
        result.ran.append(attempt.name)
        for check in job.report.checks:
            if not check.passed:
                result.failed_by.setdefault(check.name, []).append(attempt.name)
    return list(done.results.values())


def totals(results: Sequence[SolutionCoverage]) -> dict[str, Any]:
    """Checks, covered checks, guards and the share covered, over the bank."""
    checks = sum(len(r.checks) for r in results)
    covered = sum(len(r.covered) for r in results)
    guards = sum(len([g for g in r.guards if g not in r.covered]) for r in results)
    return {
        "solutions": len(results),
        "checks": checks,
        "covered": covered,
        "guards": guards,
        "uncovered": checks - covered - guards,
        "coverage": covered / checks if checks else 0.0,
    }
