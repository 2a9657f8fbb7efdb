"""The loader and schema against fixture banks: one good bank, one bad file per kind of error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aiprep.bank import BankError, check_bank, load_bank, validate
from conftest import BAD_FILES, GOOD_BANK

# file stem -> (line of the problem, words the message must contain)
BAD_CASES = {
    "invalid_yaml": (6, "invalid YAML"),
    "unknown_field": (8, "unknown field `hint` — did you mean `hints`?"),
    "missing_zh": (4, "missing field `title.zh`"),
    "wrong_kind": (2, "`kind` is 'essay' — use one of"),
    "wrong_id": (1, "set `id: alpha.wrong_id`"),
    "concept_with_solution": (10, "a concept question has no `solution`"),
    "coding_without_solution": (2, "a coding question needs a solution"),
    "mc_no_correct": (10, "no choice is marked `correct: true`"),
    "missing_solution_module": (10, "solution module 'beta.no_such_module' not found"),
    "solution_outside_package": (10, "not a plain dotted module name"),
    "unknown_see_also": (10, "did you mean 'alpha.pick_optimizer'?"),
    "duplicate_key": (10, "field 'difficulty' appears twice"),
    "wrong_type": (10, "`tags`: Input should be a valid list"),
    "bad_source": (9, "missing field `source.0.section`"),
    "not_mapping": (1, "not a mapping of fields"),
    "empty": (1, "the file is empty"),
    "not_utf8": (6, "not UTF-8"),
    "empty_text": (6, "`answer.en` is empty"),
    "boolean_text": (4, "read as the boolean False — quote the text"),
    "bad_as_of": (10, "`as_of` is '2026-13' — write the month the facts were checked as YYYY-MM"),
}


def test_every_bad_fixture_has_a_case() -> None:
    assert {p.stem for p in BAD_FILES.glob("*.yaml")} == set(BAD_CASES)


def test_good_bank_loads() -> None:
    bank = load_bank(GOOD_BANK)
    assert list(bank.questions) == [
        "alpha.gradient_clipping",
        "alpha.pick_optimizer",
        "beta.mean_estimate",
    ]
    q = bank.get("alpha.pick_optimizer")
    assert q is not None
    assert q["choices"][0]["correct"] is True
    assert q["title"]["zh"] == "小型 Transformer 的优化器"
    assert bank.get("beta.mean_estimate")["solution"] == "beta.mean_estimate"  # type: ignore[index]


@pytest.mark.parametrize("case", sorted(BAD_CASES), ids=str)
def test_bad_file_is_reported_at_its_line(case: str, good_bank: Path) -> None:
    line, words = BAD_CASES[case]
    target = good_bank / "questions" / "alpha" / f"{case}.yaml"
    shutil.copy(BAD_FILES / f"{case}.yaml", target)
    _, problems = check_bank(good_bank)
    mine = [p for p in problems if p.path == target]
    assert mine, f"no problem reported for {case}: {problems}"
    rendered = [str(p) for p in mine]
    assert any(words in r for r in rendered), rendered
    assert any(p.line == line for p in mine), rendered
    for r in rendered:
        assert " — " in r  # every message says how to fix it
        assert "Traceback" not in r


def test_all_problems_are_collected_not_just_the_first(good_bank: Path) -> None:
    for case in BAD_CASES:
        shutil.copy(BAD_FILES / f"{case}.yaml", good_bank / "questions" / "alpha" / f"{case}.yaml")
    with pytest.raises(BankError) as excinfo:
        load_bank(good_bank)
    files = {p.path.stem for p in excinfo.value.problems}
    assert files == set(BAD_CASES)


def test_orphan_solution_is_reported(good_bank: Path) -> None:
    orphan = good_bank / "solutions" / "beta" / "orphan.py"
    orphan.write_text(
        'ANSWER = ("f",)\n\n\ndef f():\n    pass\n\n\ndef check(impl):\n    pass\n\n\n'
        "def make_data(seed=0):\n    pass\n"
    )
    _, problems = check_bank(good_bank)
    assert [str(p).split(":", 1)[1] for p in problems if p.path == orphan] == [
        "1: no question names solution 'beta.orphan' — "
        "add `solution: beta.orphan` to its question, or delete the file"
    ]


def test_private_solution_helpers_are_not_orphans(good_bank: Path) -> None:
    (good_bank / "solutions" / "_shared.py").write_text("X = 1\n")
    assert check_bank(good_bank)[1] == []


def test_misplaced_question_file(good_bank: Path) -> None:
    stray = good_bank / "questions" / "stray.yaml"
    shutil.copy(GOOD_BANK / "questions" / "alpha" / "gradient_clipping.yaml", stray)
    _, problems = check_bank(good_bank)
    assert any(p.path == stray and "questions/<topic>/<slug>.yaml" in p.fix for p in problems)


def test_validate_limits_problems_to_given_paths(good_bank: Path) -> None:
    for case in ("wrong_kind", "empty"):
        shutil.copy(BAD_FILES / f"{case}.yaml", good_bank / "questions" / "alpha" / f"{case}.yaml")
    one = good_bank / "questions" / "alpha" / "empty.yaml"
    assert [p.path for p in validate([one])] == [one]
    assert len(validate([good_bank])) == 2
    assert validate([good_bank / "questions" / "beta"]) == []


def test_validate_unknown_path(tmp_path: Path) -> None:
    problems = validate([tmp_path / "nope"])
    assert [p.message for p in problems] == ["no such file or folder"]


def test_cache_is_used_and_invalidated(good_bank: Path) -> None:
    first = load_bank(good_bank)
    clip = good_bank / "questions" / "alpha" / "gradient_clipping.yaml"
    text = clip.read_text(encoding="utf-8").replace("Why clip gradients?", "Why clip at all?")
    clip.write_text(text, encoding="utf-8")
    second = load_bank(good_bank)
    assert first.questions["alpha.gradient_clipping"]["title"]["en"] == "Why clip gradients?"
    assert second.questions["alpha.gradient_clipping"]["title"]["en"] == "Why clip at all?"
    clip.write_text("kind: [", encoding="utf-8")  # a broken edit is never hidden by the cache
    with pytest.raises(BankError):
        load_bank(good_bank)


def test_a_cached_load_equals_a_fresh_one_and_a_damaged_cache_is_rebuilt(
    good_bank: Path, user_home: Path
) -> None:
    fresh = load_bank(good_bank, use_cache=False).questions
    load_bank(good_bank)  # writes the cache
    assert load_bank(good_bank).questions == fresh  # read from it
    (cache,) = (user_home / "cache").iterdir()
    cache.write_bytes(b"\x00not marshal")
    assert load_bank(good_bank).questions == fresh


def test_a_summary_load_reads_only_what_a_listing_needs(good_bank: Path) -> None:
    """`aiprep list` asks for summaries: from the cache, each record holds SUMMARY_KEYS
    only (the answers stay undecoded), equal to the full record's values; without a cache
    the full records come back (a superset)."""
    from aiprep.bank import SUMMARY_KEYS

    full = load_bank(good_bank).questions  # writes the cache
    summaries = load_bank(good_bank, summary=True).questions
    assert summaries.keys() == full.keys()
    for qid, record in summaries.items():
        assert set(record) == set(SUMMARY_KEYS)
        assert record == {k: full[qid][k] for k in SUMMARY_KEYS}
    assert load_bank(good_bank, summary=True, use_cache=False).questions == full


def test_cached_load_does_not_import_pydantic(good_bank: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from aiprep.bank import load_bank; "
        f"b = load_bank(Path({str(good_bank)!r})); "
        "print(len(b), 'pydantic' in sys.modules)"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert [o.stdout.split() for o in outputs] == [["3", "True"], ["3", "False"]]


def test_json_schema_forbids_unknown_fields() -> None:
    from aiprep.schema import json_schema

    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"id", "kind", "title", "prompt", "answer", "source"}
    json.dumps(schema)  # serializable


def test_a_broken_file_does_not_break_see_also_elsewhere(good_bank: Path) -> None:
    target = good_bank / "questions" / "alpha" / "pick_optimizer.yaml"
    target.write_text(
        target.read_text(encoding="utf-8").replace("kind: multiple-choice", "kind: x")
    )
    _, problems = check_bank(good_bank)
    assert [p.path.name for p in problems] == ["pick_optimizer.yaml"]


def test_misspelt_field_is_reported_once(good_bank: Path) -> None:
    target = good_bank / "questions" / "alpha" / "unknown_field.yaml"
    shutil.copy(BAD_FILES / "unknown_field.yaml", target)
    _, problems = check_bank(good_bank)
    assert [p.message for p in problems if p.path == target] == ["unknown field `hint`"]


def test_soft_line_breaks_between_chinese_characters_are_joined(good_bank: Path) -> None:
    path = good_bank / "questions" / "alpha" / "gradient_clipping.yaml"
    fence = "`" * 3
    old = "  zh: 当少数批次产生梯度爆炸时，它限制了每次更新的幅度。\n"
    new = (
        "  zh: |\n    先实现。\n    再转换为\n    全整数 int8\n    模型。\n\n"
        f"    {fence}\n    代码\n    注释\n    {fence}\n"
    )
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    records, problems = check_bank(good_bank)
    assert not problems, problems
    zh = records["alpha.gradient_clipping"]["answer"]["zh"]
    assert zh.startswith("先实现。再转换为全整数 int8\n模型。\n\n")  # CJK-CJK joined only
    assert f"{fence}\n代码\n注释\n{fence}" in zh  # code as written


def test_validate_checks_the_solution_contract_without_importing_it(good_bank: Path) -> None:
    solution = good_bank / "solutions" / "beta" / "mean_estimate.py"
    solution.write_text(
        '"""A solution that breaks every rule of the contract."""\n'
        "import tensorflow  # never imported by validate\n"
        "\n"
        'ANSWER = ("estimate_mean", "missing")\n'
        "\n"
        "\n"
        "def estimate_mean(samples):\n"
        "    return 0.0\n"
        "\n"
        "\n"
        "def check(impl):\n"
        '    report = SolutionReport("beta.other")\n'
        "    impl.estimate_mean([1.0])\n"
        "    impl.helper()\n"
        "    return report\n"
    )
    (good_bank / "tests" / "fixtures" / "wrong_answers").mkdir(parents=True)
    _, problems = check_bank(good_bank)
    found = {(p.line, p.message) for p in problems if p.path == solution}
    assert found == {
        (4, "ANSWER names 'missing', which the module does not define"),
        (1, "no make_data"),
        (12, "SolutionReport names 'beta.other', not this module"),
        (14, "check calls impl.helper, which is not in ANSWER"),
        (1, "no wrong-answer fixture"),
    }
    assert "tensorflow" not in sys.modules
    solution.write_text("def check(impl):\n    return None\n\n\ndef make_data(seed=0):\n    pass\n")
    _, problems = check_bank(good_bank)
    [no_answer, _no_fixture] = sorted(p for p in problems if p.path == solution)
    assert str(no_answer).endswith(
        'no ANSWER — add `ANSWER = ("build_model", ...)`: the functions a candidate writes'
    )


def test_the_typed_record_has_every_field_of_the_schema() -> None:
    """``bank.Record`` (what commands read, typed for mypy) is ``schema.Question`` dumped."""
    from typing import get_type_hints

    from aiprep.bank import Record
    from aiprep.schema import Question

    assert set(get_type_hints(Record)) == set(Question.model_fields)
    bank = load_bank(GOOD_BANK, use_cache=False)
    for record in bank.questions.values():
        assert set(record) == set(Question.model_fields)
