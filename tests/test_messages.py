"""The message catalogue and Chinese text: every message in both languages, CJK lines
joined where the YAML source broke them, CJK text wrapped at characters."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep.cli import cli
from aiprep.messages import MESSAGES, count, rating_word, t
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_message_has_both_languages_and_the_same_placeholders(key: str) -> None:
    texts = MESSAGES[key]
    assert set(texts) == {"en", "zh"}
    assert texts["en"].strip() and texts["zh"].strip()
    assert _fields(texts["en"]) == _fields(texts["zh"]), key


def test_lookup_fills_in_and_falls_back_to_english() -> None:
    assert t("quiz.hint", "zh", i=1, n=2) == "提示 1/2："
    assert t("quiz.hint", "both", i=1, n=2) == "hint 1/2:"
    with pytest.raises(KeyError):
        t("no.such.key")


def test_counts_say_one_minute_not_one_minutes() -> None:
    from aiprep.quiz import mock_banner

    assert count(1, "minute") == "1 minute" and count(3, "question") == "3 questions"
    assert mock_banner(3, 1).startswith("mock interview: 3 questions in 1 minute;")
    assert mock_banner(1, 30).startswith("mock interview: 1 question in 30 minutes;")
    assert mock_banner(3, 1, "zh").startswith("模拟面试：1 分钟内 3 道题")
    assert rating_word(1, "zh") != rating_word(1, "en")


def test_show_in_chinese_has_no_english_words_of_its_own() -> None:
    result = CliRunner().invoke(
        cli, ["--bank", str(QUIZ_BANK), "show", "beta.mean_estimate", "--answer", "--lang", "zh"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "编程" in out and "可运行：aiprep run beta.mean_estimate" in out
    assert "参考答案" in out and "要点" in out
    for english in ("runnable:", "coding", "Answer", "Key points", "source:", "see also:"):
        assert english not in out, english


def test_list_in_chinese_has_chinese_headings() -> None:
    from rich.console import Console

    from aiprep.bank import load_bank
    from aiprep.render import question_table

    records = list(load_bank(QUIZ_BANK, use_cache=False).questions.values())
    console = Console(width=120, record=True, color_system=None)
    console.print(question_table(records, "zh", console), crop=True)
    head = console.export_text().splitlines()[0]
    assert head.split() == ["编号", "题型", "难度", "运行", "标题"]


def test_soft_breaks_next_to_markdown_marks_are_joined(good_bank: Path) -> None:
    from aiprep.bank import check_bank

    path = good_bank / "questions" / "alpha" / "gradient_clipping.yaml"
    old = "  zh: 当少数批次产生梯度爆炸时，它限制了每次更新的幅度。\n"
    new = "  zh: |\n    转换为\n    **全整数 int8** 的模型，\n    “量化”之后\n    - 列表项\n"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    records, problems = check_bank(good_bank)
    assert not problems, problems
    zh = records["alpha.gradient_clipping"]["answer"]["zh"]
    assert zh.startswith("转换为**全整数 int8** 的模型，“量化”之后\n- 列表项")


def test_chinese_wraps_at_characters_not_only_at_spaces() -> None:
    from rich.console import Console

    import aiprep.render  # noqa: F401  (widens rich's word pattern)

    console = Console(width=20, record=True, color_system=None)
    console.print("把一个训练好的 Keras CNN 转换为全整数 int8 的 TensorFlow Lite 模型。")
    lines = console.export_text().splitlines()
    # without character breaks " Keras CNN " would sit alone on a half-empty line
    assert lines[0] == "把一个训练好的 Keras"
    assert all(not line.startswith(("。", "，")) for line in lines)
    console = Console(width=20, record=True, color_system=None)
    console.print("English still wraps at the spaces between words.")
    assert console.export_text().splitlines()[0].rstrip() == "English still wraps"
