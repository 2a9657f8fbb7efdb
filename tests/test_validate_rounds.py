"""validate reports every problem of every file in one run; a broken file does not block
the commands that read the rest of the bank."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aiprep.bank import check_bank, load_bank
from aiprep.cli import cli


def invoke(bank: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(bank), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _break_everything(bank: Path) -> Path:
    """beta.mean_estimate with a schema error, empty hints, a wrong id, unknown see_also
    ids and an unknown solution module: one round of validate must name them all."""
    path = bank / "questions" / "beta" / "mean_estimate.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("id: beta.mean_estimate", "id: beta.mean_estimation")
    text = text.replace("difficulty: easy", "difficulty: easy\nhint: oops")
    text = text.replace("hints:\n  - en: Add them up.\n    zh: 先求和。", "hints: []")
    text = text.replace("solution: beta.mean_estimate", "solution: beta.no_such_module")
    text += "see_also: [alpha.pick_optimiser, beta.mean_estimat]\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_of_a_file_in_one_run(good_bank: Path) -> None:
    path = _break_everything(good_bank)
    _, problems = check_bank(good_bank)
    mine = [p.message for p in problems if p.path == path]
    assert any("unknown field `hint`" in m for m in mine), mine
    assert any("`hints` is empty" in m for m in mine), mine
    assert any("does not match the file's path" in m for m in mine), mine
    assert any("'beta.no_such_module' not found" in m for m in mine), mine
    assert any("unknown id 'alpha.pick_optimiser'" in m for m in mine), mine
    assert any("unknown id 'beta.mean_estimat'" in m for m in mine), mine


def test_see_also_never_suggests_the_question_itself(good_bank: Path) -> None:
    path = _break_everything(good_bank)
    _, problems = check_bank(good_bank)
    [typo] = [p for p in problems if p.path == path and "beta.mean_estimat'" in p.message]
    assert "beta.mean_estimate" not in typo.fix
    [other] = [p for p in problems if p.path == path and "pick_optimiser" in p.message]
    assert other.fix == "did you mean 'alpha.pick_optimizer'?"


def test_a_broken_questions_solution_is_not_an_orphan(good_bank: Path) -> None:
    path = good_bank / "questions" / "beta" / "mean_estimate.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("hints:", "hintz:"), "utf-8")
    _, problems = check_bank(good_bank)
    assert problems and all(p.path == path for p in problems), problems


def test_validate_still_fails_and_lists_everything(good_bank: Path) -> None:
    _break_everything(good_bank)
    code, out = invoke(good_bank, "validate", str(good_bank))
    assert code == 2
    assert "does not match the file's path" in out and "pick_optimiser" in out


def test_list_quiz_data_and_stats_skip_the_broken_file(good_bank: Path) -> None:
    _break_everything(good_bank)
    code, out = invoke(good_bank, "list")
    assert code == 0, out
    warnings = [line for line in out.splitlines() if line.startswith("aiprep: skipped")]
    assert warnings == [next(line for line in out.splitlines() if "mean_estimate.yaml" in line)], (
        out
    )
    assert "alpha.gradient_clipping" in out and "beta.mean_estimate " not in out
    code, out = invoke(good_bank, "stats", "--json")
    assert code == 0, out
    assert "aiprep: skipped" in out
    code, out = invoke(good_bank, "show", "alpha.pick_optimizer")
    assert code == 0 and "skipped" in out


def test_smoke_still_refuses_a_broken_bank(good_bank: Path) -> None:
    _break_everything(good_bank)
    code, out = invoke(good_bank, "smoke")
    assert code == 2 and "problem(s) in the bank" in out


def test_a_broken_bank_is_cached_with_its_problems(good_bank: Path) -> None:
    _break_everything(good_bank)
    first = load_bank(good_bank, skip_broken=True)
    second = load_bank(good_bank, skip_broken=True)  # from the cache
    assert first.problems == second.problems and first.problems
    assert (
        list(first.questions)
        == list(second.questions)
        == [
            "alpha.gradient_clipping",
            "alpha.pick_optimizer",
        ]
    )


def test_no_line_number_on_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    code, out = invoke(missing, "list")
    assert code == 2
    assert f"{missing}: no such folder" in out and f"{missing}:1" not in out
    code, out = invoke(missing, "validate", str(missing))
    assert code == 2
    assert f"{missing}: no such file or folder" in out and ":1:" not in out
    code, out = invoke(missing, "validate", "--json", str(missing))
    [problem] = json.loads(out[: out.rindex("]") + 1])
    assert problem["line"] is None
