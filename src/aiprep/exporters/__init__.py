"""Export question sets for instructors: Markdown, HTML, JSON, Anki, Moodle GIFT/XML, QTI.

Each format is a module with ``render(items, options) -> bytes``. Same input, same bytes:
formats that embed timestamps or ids get fixed ones derived from the content. Files are
written atomically (a temp file in the same folder, then a rename), so a crash or Ctrl-C
never leaves half a file.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiprep.bank import Record, solution_path
from aiprep.ids import topic_of
from aiprep.lang import Lang, LangChoice
from aiprep.lang import langs as lang_choice

if TYPE_CHECKING:
    from aiprep.exporters.evidence import Results

# format -> (module under aiprep.exporters, the usual file suffix)
FORMATS: dict[str, tuple[str, str]] = {
    "md": ("markdown", ".md"),
    "html": ("html", ".html"),
    "json": ("jsonfmt", ".json"),
    "anki": ("anki", ".apkg"),
    "gift": ("gift", ".gift.txt"),
    "moodle-xml": ("moodle_xml", ".xml"),
    "qti": ("qti", ".zip"),
}
# A fixed moment for formats that must carry one (zip entries, QTI, Anki): byte-stable.
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
FIXED_EPOCH = 1704067200  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class ExportOptions:
    lang: LangChoice = "en"
    answers: bool = True  # instructor sheet (answers, key points) or student sheet
    with_code: bool = False  # include the reference solution's source
    title: str = "aiprep questions"
    # A smoke report's measured results, shown beside each runnable question (md, html).
    results: Results | None = None
    # Markdown: the folder, relative to the .md file, that holds the charts' SVG files.
    assets: str = ""


@dataclass(frozen=True)
class Item:
    """One question to export; ``code`` is the reference solution's source (with_code)."""

    record: Record
    code: str | None = None

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def topic(self) -> str:
        return topic_of(self.id)

    @property
    def first_id(self) -> str:
        """The id the question was first published under (its oldest ``moved_from``)."""
        return str((self.record["moved_from"] or [self.id])[0])


def items(root: Path, records: Sequence[Record], options: ExportOptions) -> list[Item]:
    """The records, sorted by id, with their solution's source when ``with_code``."""
    out = []
    for q in sorted(records, key=lambda r: r["id"]):
        code = None
        if options.with_code and q["solution"]:
            code = solution_path(root, q["solution"]).read_text(encoding="utf-8")
        out.append(Item(q, code))
    return out


def render(fmt: str, exported: Sequence[Item], options: ExportOptions) -> bytes:
    module = importlib.import_module(f"aiprep.exporters.{FORMATS[fmt][0]}")
    data: bytes = module.render(exported, options)
    return data


def langs(options: ExportOptions) -> tuple[Lang, ...]:
    return lang_choice(options.lang)
