"""The README's command table is generated from the commands and is current."""

from __future__ import annotations

from aiprep import _docs


def test_the_readme_command_table_is_current() -> None:
    text = _docs.README.read_text(encoding="utf-8")
    assert _docs.rewrite(text) == text, "run `make docs`"


def test_a_stale_table_is_noticed() -> None:
    text = _docs.README.read_text(encoding="utf-8")
    row = "| `aiprep stats [--lang en\\|zh\\|both] [--json]` |"
    stale = text.replace(row, "| `aiprep stats` |")
    assert stale != text
    assert _docs.rewrite(stale) == text
