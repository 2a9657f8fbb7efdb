"""The CLI through click's test runner, against the fixture banks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from aiprep.cli import cli
from conftest import BAD_FILES, GOOD_BANK, RUNNER_BANK


def invoke(*args: str, bank: Path = GOOD_BANK) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(bank), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_list_table() -> None:
    code, out = invoke("list")
    assert code == 0
    assert "alpha.gradient_clipping" in out and "beta.mean_estimate" in out
    assert "3 of 3 questions, 1 runnable" in out


def test_list_filters_and_lang() -> None:
    code, out = invoke("list", "--kind", "coding", "--lang", "zh")
    assert code == 0
    assert "估计均值" in out and "alpha." not in out
    _, out = invoke("list", "--topic", "alpha", "--difficulty", "medium")
    assert "alpha.pick_optimizer" in out and "gradient_clipping" not in out
    _, out = invoke("list", "--tag", "stability")
    assert "alpha.gradient_clipping" in out and "pick_optimizer" not in out


def test_list_unknown_topic_is_bad_input() -> None:
    code, out = invoke("list", "--topic", "gamma")
    assert code == 2
    assert "unknown topic gamma; topics: alpha, beta" in out


def test_list_json_is_full_records() -> None:
    code, out = invoke("list", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["id"] for r in records] == [
        "alpha.gradient_clipping",
        "alpha.pick_optimizer",
        "beta.mean_estimate",
    ]
    assert records[1]["choices"][1]["why"]["zh"] == "可行，但需要多得多的调参。"
    assert records[0]["source"][0] == {"seed": "003_d4a26727668e47c3.txt", "section": "面试题 1"}


def test_show_prompt_and_answer() -> None:
    code, out = invoke("show", "alpha.gradient_clipping")
    assert code == 0
    assert "When does gradient clipping help" in out
    assert "bounds the update size" not in out
    code, out = invoke("show", "alpha.gradient_clipping", "--answer", "--lang", "both")
    assert code == 0
    assert "bounds the update size" in out and "梯度爆炸" in out and "Key points" in out


def test_show_multiple_choice_marks_answers_only_with_answer() -> None:
    _, out = invoke("show", "alpha.pick_optimizer")
    assert "A. AdamW" in out and "✓" not in out
    _, out = invoke("show", "alpha.pick_optimizer", "--answer")
    assert "✓ A. AdamW" in out and "✗ B. Plain SGD" in out


def test_show_unknown_id_suggests_closest() -> None:
    code, out = invoke("show", "alpha.gradient_cliping")
    assert code == 2
    assert "no question 'alpha.gradient_cliping'; did you mean alpha.gradient_clipping?" in out


def test_broken_files_are_skipped_with_one_line_each(good_bank: Path) -> None:
    for case in ("wrong_kind", "unknown_field"):
        shutil.copy(BAD_FILES / f"{case}.yaml", good_bank / "questions" / "alpha" / f"{case}.yaml")
    code, out = invoke("list", bank=good_bank)
    assert code == 0
    assert "aiprep: skipped " in out and "wrong_kind.yaml: 1 problem(s)" in out
    assert "unknown_field.yaml: 1 problem(s)" in out and "3 of 3 questions" in out
    assert "Traceback" not in out


def test_validate_ok_and_failing(good_bank: Path) -> None:
    code, out = invoke("validate", str(good_bank))
    assert code == 0 and "no problems" in out
    shutil.copy(BAD_FILES / "invalid_yaml.yaml", good_bank / "questions" / "alpha" / "x.yaml")
    code, out = invoke("validate", str(good_bank))
    assert code == 2
    assert "x.yaml:6: invalid YAML" in out
    code, out = invoke("validate", "--json", str(good_bank))
    assert code == 2
    [problem] = json.loads(out)
    assert problem["line"] == 6 and problem["path"].endswith("x.yaml")


def test_schema_is_json() -> None:
    code, out = invoke("schema")
    assert code == 0
    assert json.loads(out)["title"] == "aiprep question"


def test_run_passing_solution() -> None:
    code, out = invoke("run", "beta.mean_estimate")
    assert code == 0, out
    assert "PASS" in out and "abs error vs true mean 3.0" in out
    assert "1/1 checks passed" in out


def test_run_json() -> None:
    code, out = invoke("run", "beta.mean_estimate", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "ok" and data["passed"] is True
    [check] = data["report"]["checks"]
    assert check["op"] == "<=" and check["threshold"] == 0.1 and check["passed"] is True


def test_run_concept_question_is_bad_input() -> None:
    code, out = invoke("run", "alpha.gradient_clipping")
    assert code == 2
    assert "concept question without a runnable solution" in out


def test_run_failing_check_exits_1() -> None:
    code, out = invoke("run", "crash.wrong_answer", bank=RUNNER_BANK)
    assert code == 1
    assert "FAIL" in out and "1/2 checks passed" in out


def test_run_timeout() -> None:
    code, out = invoke("run", "crash.hang", "--timeout", "2", bank=RUNNER_BANK)
    assert code == 1
    assert "crash.hang: timed out after 2 s (raise --timeout)" in out
    assert "starting to hang" in out  # the tail of the child's output


def test_run_exception_is_one_line_with_location() -> None:
    code, out = invoke("run", "crash.raises", bank=RUNNER_BANK)
    assert code == 1
    first = next(line for line in out.splitlines() if line.startswith("error:"))
    assert "raises.py:9: ValueError: shapes (3, 4) and (5,) do not match" in first


def test_run_hard_exit() -> None:
    code, out = invoke("run", "crash.exit_hard", bank=RUNNER_BANK)
    assert code == 1
    assert "exited with code 3 before reporting" in out
    assert "about to die" in out


def test_run_json_reports_crash() -> None:
    code, out = invoke("run", "crash.exit_hard", "--json", bank=RUNNER_BANK)
    assert code == 1
    data = json.loads(out)
    assert data["status"] == "crash" and data["report"] is None and data["passed"] is False


# -----------------------------------------------------------------------------
# as_of: when an answer's facts that age were checked


def _dated_bank(root: Path, months_ago: int) -> tuple[str, str]:
    """Date alpha.gradient_clipping ``months_ago`` months back; (its as_of, this month)."""
    import datetime

    today = datetime.date.today()
    index = today.year * 12 + today.month - 1 - months_ago
    as_of = f"{index // 12}-{index % 12 + 1:02d}"
    path = root / "questions" / "alpha" / "gradient_clipping.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f"as_of: {as_of}\n", encoding="utf-8")
    return as_of, f"{today:%Y-%m}"


def test_show_prints_as_of_beside_the_answer(good_bank: Path) -> None:
    as_of, _ = _dated_bank(good_bank, 3)
    _, out = invoke("show", "alpha.gradient_clipping", bank=good_bank)
    assert "as of" not in out  # no answer shown, no date
    _, out = invoke("show", "alpha.gradient_clipping", "--answer", bank=good_bank)
    assert f"Answer · as of {as_of}" in out
    _, out = invoke("show", "alpha.gradient_clipping", "--answer", "--lang", "zh", bank=good_bank)
    assert f"参考答案 · 信息截至 {as_of}" in out
    _, out = invoke("show", "alpha.pick_optimizer", "--answer", bank=good_bank)
    assert "as of" not in out  # undated


def test_show_lists_the_references_after_the_answer(good_bank: Path) -> None:
    path = good_bank / "questions" / "alpha" / "gradient_clipping.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "references:\n  - title: Pascanu et al. 2013, on exploding gradients\n"
        + "    url: https://arxiv.org/abs/1211.5063\n",
        encoding="utf-8",
    )
    _, out = invoke("show", "alpha.gradient_clipping", bank=good_bank)
    assert "arxiv.org" not in out  # with the answer only
    _, out = invoke("show", "alpha.gradient_clipping", "--answer", "--lang", "both", bank=good_bank)
    assert "References / 参考资料" in out
    assert "Pascanu et al. 2013, on exploding gradients https://arxiv.org/abs/1211.5063" in out
    path.write_text(
        path.read_text(encoding="utf-8").replace("https://arxiv", "ftp://arxiv"), encoding="utf-8"
    )
    code, out = invoke("validate", str(good_bank))
    assert code == 2 and "gradient_clipping.yaml" in out and "url" in out


def test_validate_stale_lists_old_answers_and_exits_0(good_bank: Path) -> None:
    as_of, this_month = _dated_bank(good_bank, 7)
    code, out = invoke("validate", "--stale", "6", str(good_bank))
    assert code == 0
    assert (
        f"gradient_clipping.yaml:26: alpha.gradient_clipping: as_of {as_of} is 7 months old"
        f" — recheck its dated facts, then set `as_of: {this_month}`"
    ) in out
    assert "1 of 1 dated question(s) older than 6 months" in out
    code, out = invoke("validate", "--stale", "7", str(good_bank))
    assert code == 0 and "months old" not in out
    assert "0 of 1 dated question(s) older than 7 months" in out
    code, out = invoke("validate", "--stale", "6", "--json", str(good_bank))
    assert code == 0
    report = json.loads(out)
    assert report["problems"] == []
    [stale] = report["stale"]
    assert stale["id"] == "alpha.gradient_clipping" and stale["months_old"] == 7
    assert stale["as_of"] == as_of and stale["line"] == 26


def test_validate_stale_still_fails_on_problems(good_bank: Path) -> None:
    _dated_bank(good_bank, 30)
    shutil.copy(BAD_FILES / "invalid_yaml.yaml", good_bank / "questions" / "alpha" / "x.yaml")
    code, out = invoke("validate", "--stale", "12", str(good_bank))
    assert code == 2
    assert "x.yaml:6: invalid YAML" in out and "is 30 months old" in out


def test_piped_list_is_one_line_per_question() -> None:
    """For grep and cut: no wrapping, the id and the whole title on each question's line."""
    _, out = invoke("list")
    records = json.loads(invoke("list", "--json")[1])
    lines = out.splitlines()
    assert lines[0].split() == ["id", "kind", "difficulty", "run", "status", "title"]
    for q, line in zip(records, lines[1:], strict=False):
        assert line.startswith(q["id"] + " ") and line.endswith(q["title"]["en"])


def test_the_terminal_table_wraps_titles_under_their_column() -> None:
    from rich.console import Console

    from aiprep.bank import load_bank
    from aiprep.render import question_table

    console = Console(width=100, record=True, color_system=None)
    records = list(load_bank(GOOD_BANK, use_cache=False).questions.values())
    records[0] = {**records[0], "title": {"en": "A title long enough to wrap " * 4, "zh": "标题"}}
    console.print(question_table(records, "en", console), crop=True)
    lines = console.export_text().splitlines()
    assert lines[0].startswith("id") and lines[0].rstrip().endswith("title")
    title_col = lines[0].index("title")
    continued = [line for line in lines[2:] if line[:title_col].strip() == ""]
    assert continued and all(line[title_col] != " " for line in continued)


def test_the_terminal_listing_prints_the_table_with_its_styles() -> None:
    """`aiprep list` on a terminal writes the laid-out rows as finished segments: the
    same text as the table, in the same colours, and no colour where the console has none."""
    import io
    import re

    from rich.console import Console

    from aiprep.bank import load_bank
    from aiprep.render import print_rows, question_rows, question_table

    records = list(load_bank(GOOD_BANK, use_cache=False).questions.values())
    statuses = {records[0]["id"]: "failed"}
    for color in ("truecolor", None):
        fast, table = (
            Console(file=io.StringIO(), width=90, force_terminal=True, color_system=color)
            for _ in range(2)
        )
        print_rows(fast, question_rows(records, "zh", 90, statuses))
        table.print(question_table(records, "zh", table, statuses), soft_wrap=True)
        got, want = fast.file.getvalue(), table.file.getvalue()  # type: ignore[attr-defined]
        strip = re.compile(r"\x1b\[[0-9;]*m")
        assert strip.sub("", got).rstrip() == strip.sub("", want).rstrip()
        assert sorted(strip.findall(got)) == sorted(strip.findall(want))
        assert ("\x1b[36m" in got) == (color is not None)  # ids in cyan


# -----------------------------------------------------------------------------
# moved_from: ids are forever


def _move(root: Path, old: str, new: str) -> Path:
    """Move question ``old`` to ``new`` the way an author does: new path, new id,
    ``moved_from: [old]``."""
    (topic, slug), (new_topic, new_slug) = old.split("."), new.split(".")
    src = root / "questions" / topic / f"{slug}.yaml"
    dst = root / "questions" / new_topic / f"{new_slug}.yaml"
    dst.parent.mkdir(exist_ok=True)
    text = src.read_text(encoding="utf-8").replace(f"id: {old}", f"id: {new}", 1)
    dst.write_text(text + f"moved_from: [{old}]\n", encoding="utf-8")
    src.unlink()
    return dst


def test_progress_and_an_old_export_follow_a_moved_question(good_bank: Path) -> None:
    from aiprep.store import Store

    with Store() as store:
        store.rate("alpha.gradient_clipping", 3, duration_ms=1)
    code, exported = invoke("progress", "export", bank=good_bank)
    assert code == 0 and "alpha.gradient_clipping" in exported
    _move(good_bank, "alpha.gradient_clipping", "gamma.gradient_clipping")
    code, out = invoke("stats", "--json", bank=good_bank)
    topics = {t["topic"]: t for t in json.loads(out)["topics"]}
    assert topics["gamma"]["seen"] == 1 and topics["alpha"]["seen"] == 0
    with Store() as store:
        store.reset()
    old_export = good_bank / "old.json"
    old_export.write_text(exported, encoding="utf-8")
    code, out = invoke("progress", "import", str(old_export), bank=good_bank)
    assert code == 0, out
    with Store() as store:
        assert set(store.cards()) == {"gamma.gradient_clipping"}


def test_an_old_id_still_shows_its_question(good_bank: Path) -> None:
    _move(good_bank, "alpha.gradient_clipping", "gamma.gradient_clipping")
    code, out = invoke("show", "alpha.gradient_clipping", bank=good_bank)
    assert code == 0
    assert "alpha.gradient_clipping is now gamma.gradient_clipping" in out
    assert "gamma.gradient_clipping ·" in out  # the question itself, under its new id


def test_validate_holds_an_old_id_to_one_question(good_bank: Path) -> None:
    moved = _move(good_bank, "alpha.gradient_clipping", "gamma.gradient_clipping")
    assert invoke("validate", str(good_bank))[0] == 0
    other = good_bank / "questions" / "alpha" / "pick_optimizer.yaml"
    other.write_text(
        other.read_text(encoding="utf-8") + "moved_from: [alpha.gradient_clipping]\n",
        encoding="utf-8",
    )
    code, out = invoke("validate", str(good_bank))
    assert code == 2 and "also moved from 'alpha.gradient_clipping'" in out
    other.write_text(
        other.read_text(encoding="utf-8").replace(
            "moved_from: [alpha.gradient_clipping]", "moved_from: [gamma.gradient_clipping]"
        ),
        encoding="utf-8",
    )
    code, out = invoke("validate", str(good_bank))
    assert code == 2 and "moved_from names 'gamma.gradient_clipping', which is still" in out
    assert moved.exists()


def test_a_full_id_that_is_only_the_start_of_another_says_which_it_takes(
    good_bank: Path,
) -> None:
    code, out = invoke("show", "alpha.gradient_clip", bank=good_bank)
    assert code == 0
    assert "alpha.gradient_clip is not an id; taking alpha.gradient_clipping" in out
    code, out = invoke("show", "gradient_clip", bank=good_bank)  # a short id: no note
    assert code == 0 and "is not an id" not in out
