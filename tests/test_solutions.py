"""The shipped bank validates, and every real solution's reference run passes its checks.

The reference runs train TensorFlow models, so they are marked slow.
"""

from __future__ import annotations

import pytest

from aiprep.bank import Bank, BankError, load_bank
from aiprep.paths import default_bank_root
from aiprep.runner import run_solution


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


@pytest.mark.slow
@pytest.mark.parametrize("question_id", RUNNABLE, ids=str)
def test_reference_solution_passes_its_checks(question_id: str) -> None:
    assert BANK is not None
    module = BANK.questions[question_id]["solution"]
    result = run_solution(BANK.root, module, timeout=600)
    assert result.status == "ok", f"{result.message}\n{result.output_tail}"
    assert result.report is not None
    failed = [f"{c.name}: {c.value} not {c.rule}" for c in result.report.checks if not c.passed]
    assert not failed, failed
