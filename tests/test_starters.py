"""Practice starters: no unused standard-library imports; a debug starter holds the seed's code."""

from __future__ import annotations

import ast
import sys

import pytest

from aiprep.bank import load_bank
from aiprep.starter import seed_code, starter_text

BANK = load_bank()
RUNNABLE = sorted(qid for qid, q in BANK.questions.items() if q["solution"])


def _bound(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [a.asname or a.name.split(".")[0] for a in node.names]


@pytest.mark.parametrize("question_id", RUNNABLE, ids=str)
def test_no_unused_standard_library_import(question_id: str) -> None:
    tree = ast.parse(starter_text(BANK, BANK.questions[question_id]))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {
        n.value.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) and not (
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if (module or "").split(".")[0] in sys.stdlib_module_names:
                assert set(_bound(node)) <= used, ast.unparse(node)


def test_the_dqn_starter_drops_the_references_helpers_imports() -> None:
    text = starter_text(BANK, BANK.questions["rl.fix_seed_dqn"])
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    for unused in ("import types", "import time", "import contextlib", "import io"):
        assert unused not in imports, imports
    assert "import numpy as np" in imports  # a library stays: the candidate's likely tool


@pytest.mark.parametrize(
    "question_id", [q for q in RUNNABLE if BANK.questions[q]["kind"] == "debug"], ids=str
)
def test_a_debug_starter_holds_the_seeds_code(question_id: str) -> None:
    module = BANK.questions[question_id]["solution"]
    assert module is not None
    seed = seed_code(BANK.root, module)
    assert seed, f"{module} holds no ORIGINAL"
    text = starter_text(BANK, BANK.questions[question_id])
    for line in seed.splitlines():
        assert f"# {line}".rstrip() in text.splitlines()
    assert "raise NotImplementedError" in text  # still fails until written


def test_a_coding_starter_has_no_seed_code() -> None:
    coding = next(q for q in RUNNABLE if BANK.questions[q]["kind"] == "coding")
    assert "The seed's code" not in starter_text(BANK, BANK.questions[coding])
