"""A question's name in a learning system is plain text: no Markdown, no HTML tags."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from aiprep.bank import load_bank
from aiprep.exporters import ExportOptions, items, render
from aiprep.exporters.html import plain

TITLE = "Debug `quantize_model(model, num_bits=5)`: **no** *teacher* & <b>tags</b>"
PLAIN = "Debug quantize_model(model, num_bits=5): no teacher & <b>tags</b>"


@pytest.fixture
def marked_bank(good_bank: Path) -> Path:
    path = good_bank / "questions" / "alpha" / "gradient_clipping.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("en: Why clip gradients?", f"en: '{TITLE}'"), "utf-8")
    return good_bank


def _export(bank: Path, fmt: str) -> bytes:
    options = ExportOptions()
    records = list(load_bank(bank, use_cache=False).questions.values())
    return render(fmt, items(bank, records, options), options)


def test_plain_drops_markdown_keeps_text() -> None:
    assert plain(TITLE) == PLAIN
    assert plain("a\nb") == "a b"


def test_moodle_xml_name_is_plain_text(marked_bank: Path) -> None:
    root = ET.fromstring(_export(marked_bank, "moodle-xml"))
    names = [q.findtext("name/text") for q in root.iter("question") if q.find("name") is not None]
    want = "Debug quantize_model(model, num_bits=5): no teacher &amp; &lt;b&gt;tags&lt;/b&gt;"
    assert f"{want} [alpha.gradient_clipping]" in names  # HTML-escaped once: Moodle's names
    assert not any("<code>" in (n or "") or "`" in (n or "") for n in names)


def test_gift_name_is_plain_text(marked_bank: Path) -> None:
    text = _export(marked_bank, "gift").decode("utf-8")
    [line] = [ln for ln in text.splitlines() if "alpha.gradient_clipping]" in ln]
    name = line.split("::")[1]
    assert "`" not in name and "<code>" not in name and "**" not in name
    assert name.startswith("Debug quantize_model(model, num_bits\\=5)\\: no teacher")


def test_qti_title_is_plain_text(marked_bank: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(_export(marked_bank, "qti"))) as zf:
        xml = next(n for n in zf.namelist() if n.endswith(".xml") and "manifest" not in n)
        root = ET.fromstring(zf.read(xml))
    titles = [el.get("title") for el in root.iter() if el.tag.endswith("item")]
    assert f"{PLAIN} [alpha.gradient_clipping]" in titles
