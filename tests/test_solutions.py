"""The shipped bank validates, and every real solution's reference run passes its checks.

The reference runs train TensorFlow models, so they are marked slow.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from aiprep.bank import Bank, BankError, load_bank
from aiprep.paths import default_bank_root
from aiprep.runner import Job, run_solution
from conftest import FIXTURES, smoke_report

WRONG_ANSWER_DIR = FIXTURES / "wrong_answers"


def _shipped() -> Bank | None:
    try:
        return load_bank(use_cache=False)
    except BankError:
        return None


BANK = _shipped()
RUNNABLE = sorted(q for q, rec in BANK.questions.items() if rec["solution"]) if BANK else []


def test_the_shipped_bank_validates() -> None:
    try:
        bank = load_bank(default_bank_root(), use_cache=False)
    except BankError as e:
        pytest.fail(str(e))
    assert len(bank) >= 3
    assert len([q for q in bank.questions.values() if q["solution"]]) >= 3


# The reference runs of the smoke report, when there is one for this code (else run here).
SMOKED = {j["id"]: Job.from_dict(j) for j in (smoke_report() or {}).get("solutions", [])}


@pytest.mark.slow
@pytest.mark.parametrize("question_id", RUNNABLE, ids=str)
def test_reference_solution_passes_its_checks(question_id: str) -> None:
    assert BANK is not None
    module = BANK.questions[question_id]["solution"]
    result = SMOKED.get(question_id) or run_solution(BANK.root, module, timeout=600)
    assert result.status == "ok", f"{result.message}\n{result.output_tail}"
    assert result.report is not None
    failed = [f"{c.name}: {c.value} not {c.rule}" for c in result.report.checks if not c.passed]
    assert not failed, failed
    broken = [f"{c.name}: {c.value} not {c.rule}" for c in result.report.seed_facts if not c.passed]
    assert not broken, f"what the answer says about the seed no longer holds: {broken}"


# Each solution has a typical wrong answer in tests/fixtures/wrong_answers/<topic>/<slug>.py,
# and may have more as <topic>/<slug>__<variant>.py; each names the check that must catch
# it: CAUGHT_BY = "<check name>". Test ids: <topic>.<slug>[.<variant>].
WRONG_ANSWERS = {
    f"{path.parent.name}.{path.stem.replace('__', '.')}": path
    for path in sorted(WRONG_ANSWER_DIR.glob("*/*.py"))
}


def _solution_of(fixture: str) -> str:
    return ".".join(fixture.split(".")[:2])


def _caught_by(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CAUGHT_BY"
    )


def test_every_solution_has_a_wrong_answer_fixture() -> None:
    assert BANK is not None
    solutions = {rec["solution"] for rec in BANK.questions.values() if rec["solution"]}
    assert solutions == {_solution_of(f) for f in WRONG_ANSWERS}
    assert solutions <= set(WRONG_ANSWERS)  # the typical one, without a variant


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(WRONG_ANSWERS), ids=str)
def test_a_wrong_answer_fails_the_checks(fixture: str) -> None:
    assert BANK is not None
    attempt = WRONG_ANSWERS[fixture]
    # The run ends once a check that `make check-coverage` saw this wrong answer fail (run to
    # the end, against every check) fails again: what it would compute after cannot undo it.
    # Its CAUGHT_BY is one of them (test_each_fixture_is_recorded_failing_its_caught_by).
    deciding = _recorded_failures(fixture) | {_caught_by(attempt)}
    result = run_solution(
        BANK.root,
        _solution_of(fixture),
        attempt=attempt,
        timeout=600,
        stop_at=frozenset(deciding),
    )
    assert result.status in ("ok", "stopped"), f"{result.message}\n{result.output_tail}"
    assert result.report is not None
    failed = {c.name for c in result.report.checks if not c.passed}
    assert failed & deciding, (deciding, result.report.checks)


def _recorded_failures(fixture: str) -> set[str]:
    """The checks tests/check_coverage.json records this fixture failing (none if the
    solution is not measured yet)."""
    _, _, variant = fixture.partition(".")[2].partition(".")
    name = f"fixture:{variant}" if variant else "fixture"
    solution = BY_SOLUTION.get(_solution_of(fixture), {"checks": []})
    return {c["name"] for c in solution["checks"] if name in c["failed_by"]}


def test_each_fixture_is_recorded_failing_its_caught_by() -> None:
    """CAUGHT_BY names a check the fixture fails when run to the end (check-coverage's
    record), so a run that stops at its first recorded failure proves the same."""
    measured = [f for f in WRONG_ANSWERS if _solution_of(f) in BY_SOLUTION]
    assert measured
    wrong = {
        f: _caught_by(WRONG_ANSWERS[f])
        for f in measured
        if _caught_by(WRONG_ANSWERS[f]) not in _recorded_failures(f)
    }
    assert not wrong, (
        f"CAUGHT_BY not among the recorded failures (run make check-coverage): {wrong}"
    )


def test_make_demo_runs_a_question_that_exists() -> None:
    makefile = (default_bank_root() / "Makefile").read_text(encoding="utf-8")
    ids = re.findall(r"aiprep run ([\w.]+)", makefile)
    assert ids and BANK is not None
    assert all(i in BANK.questions for i in ids), ids


# -----------------------------------------------------------------------------
# Practice starters: the answer's signatures and docstrings, nothing else


def _starter(question_id: str) -> str:
    assert BANK is not None
    from aiprep.starter import starter_text

    return starter_text(BANK, BANK.questions[question_id])


@pytest.mark.parametrize("question_id", RUNNABLE, ids=str)
def test_starter_keeps_signatures_and_drops_the_answer(question_id: str) -> None:
    assert BANK is not None
    from aiprep.starter import answer_names

    text = _starter(question_id)
    assert "Protocol" not in text  # the reference's typing of impl is not the candidate's
    starter = ast.parse(text)
    module = BANK.questions[question_id]["solution"]
    source = (BANK.root / "solutions" / Path(*module.split("."))).with_suffix(".py")
    names = answer_names(ast.parse(source.read_text(encoding="utf-8")))
    stubs = {n.name: n for n in starter.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert set(stubs) == set(names)  # no data, no checks, no helpers
    assert not any(
        isinstance(n, ast.ImportFrom) and (n.module or "").startswith(("solutions", "aiprep"))
        for n in starter.body
    )
    for name, stub in stubs.items():
        functions = [stub] if isinstance(stub, ast.FunctionDef) else stub.body
        for fn in functions:
            if not isinstance(fn, ast.FunctionDef):
                continue
            body = fn.body[1:] if ast.get_docstring(fn) else fn.body
            assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name}: body kept"
            assert ast.get_docstring(fn), f"{name}: docstring dropped"


@pytest.mark.slow
@pytest.mark.parametrize("question_id", RUNNABLE, ids=str)
def test_starter_matches_the_signatures_and_stops_at_its_first_stub(
    question_id: str, tmp_path: Path
) -> None:
    """The starter loads and has the answer's signatures (a mismatch is reported before
    any stub runs), so a candidate starts from a file the checks accept; its first stub
    then ends the run. What the checks do to wrong answers is tested below."""
    assert BANK is not None
    attempt = tmp_path / "starter.py"
    attempt.write_text(_starter(question_id), encoding="utf-8")
    result = run_solution(BANK.root, BANK.questions[question_id]["solution"], attempt=attempt)
    assert not result.passed
    assert result.status == "crash" and "NotImplementedError" in result.message, result.message


# -----------------------------------------------------------------------------
# Check coverage: tests/check_coverage.json is what `make check-coverage` measured (every
# wrong-answer fixture and generated stub against every check). It is re-measured by
# authors; here each solution's recorded generated stub is run again.

COVERAGE_FILE = Path(__file__).parent / "check_coverage.json"
COVERAGE = json.loads(COVERAGE_FILE.read_text(encoding="utf-8"))
BY_SOLUTION = {s["solution"]: s for s in COVERAGE["solutions"]}


def _failing_stub(solution: dict[str, Any]) -> str | None:
    """The generated stub caught earliest: the one failing the first check (in the report's
    order) that any stub fails; its run stops there (ties: the first in run order)."""
    order = [n for n in solution["wrong_answers_run"] if n.startswith("mutant:")]
    for check in solution["checks"]:
        caught = [n for n in order if n in check["failed_by"]]
        if caught:
            return caught[0]
    return None


STUBS = {
    module: stub
    for module, s in sorted(BY_SOLUTION.items())
    if (stub := _failing_stub(s)) is not None
}


def test_every_check_is_seen_failing_or_is_a_guard() -> None:
    """A check that a candidate's code cannot fail is not a check."""
    assert BANK is not None
    solutions = {rec["solution"] for rec in BANK.questions.values() if rec["solution"]}
    assert set(BY_SOLUTION) == solutions, "run `make check-coverage` after adding a solution"
    assert COVERAGE["totals"]["coverage"] >= 0.8
    unproven = {
        module: [c["name"] for c in s["checks"] if not c["failed_by"] and not c["guard"]]
        for module, s in BY_SOLUTION.items()
    }
    assert not {m: names for m, names in unproven.items() if names}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(STUBS), ids=str)
def test_a_generated_wrong_stub_fails_by_value(module: str, tmp_path: Path) -> None:
    """A plausible wrong stub (a result zeroed or negated, a step skipped) is rejected by
    value, not by a crash: it runs until a check `make check-coverage` saw it fail fails
    (what the run would compute after cannot undo that; check-coverage runs it to the end)."""
    assert BANK is not None
    from aiprep.bank import solution_path
    from aiprep.check_coverage import write_mutants

    stub = next(
        w
        for w in write_mutants(module, solution_path(BANK.root, module), tmp_path)
        if w.name == STUBS[module]
    )
    recorded = {c["name"] for c in BY_SOLUTION[module]["checks"] if stub.name in c["failed_by"]}
    result = run_solution(
        BANK.root, module, attempt=stub.path, timeout=600, stop_at=frozenset(recorded)
    )
    assert result.status in ("ok", "stopped"), f"{result.message}\n{result.output_tail}"
    assert result.report is not None
    failed = {c.name for c in result.report.checks if not c.passed}
    assert failed & recorded, (stub.name, failed, recorded)
