"""QTI 1.2 zip for Canvas: the manifest, the assessment, item types, scoring and feedback."""

from __future__ import annotations

import copy
import html
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest

from aiprep.bank import load_bank
from aiprep.exporters import FIXED_TIME, ExportOptions, Item, items, render
from aiprep.exporters.html import block
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
HOSTILE_BANK = FIXTURES / "hostile"
QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"
CP = "{http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1}"


def export(bank: Path, **options: Any) -> bytes:
    opts = ExportOptions(**options)
    loaded = load_bank(bank, use_cache=False)
    return render("qti", items(bank, list(loaded.questions.values()), opts), opts)


def records(bank: Path) -> dict[str, Any]:
    return dict(load_bank(bank, use_cache=False).questions)


def unzip(data: bytes) -> tuple[ET.Element, ET.Element, zipfile.ZipFile]:
    """The manifest and the one assessment it names."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    manifest = ET.fromstring(zf.read("imsmanifest.xml"))
    (resource,) = manifest.iter(f"{CP}resource")
    assert resource.get("type") == "imsqti_xmlv1p2"
    href = resource.get("href", "")
    assert sorted(zf.namelist()) == sorted(["imsmanifest.xml", href])
    assert [f.get("href") for f in resource.iter(f"{CP}file")] == [href]
    return manifest, ET.fromstring(zf.read(href)), zf


def qti_items(data: bytes) -> dict[str, ET.Element]:
    _, root, _ = unzip(data)
    assert root.tag == f"{QTI}questestinterop"
    (assessment,) = root.findall(f"{QTI}assessment")
    (section,) = assessment.findall(f"{QTI}section")
    found = {}
    for item in section.findall(f"{QTI}item"):
        qid = re.search(r"\[([^\]]+)\]$", item.get("title", ""))
        assert qid, item.get("title")
        found[qid.group(1)] = item
    return found


def meta(item: ET.Element) -> dict[str, str]:
    fields = item.iter(f"{QTI}qtimetadatafield")
    return {f.findtext(f"{QTI}fieldlabel", ""): f.findtext(f"{QTI}fieldentry", "") for f in fields}


def labels(item: ET.Element) -> dict[str, str]:
    """Choice ident -> its HTML."""
    return {
        lb.get("ident", ""): lb.findtext(f"{QTI}material/{QTI}mattext", "")
        for lb in item.iter(f"{QTI}response_label")
    }


def scored(item: ET.Element) -> tuple[set[str], set[str]]:
    """(idents that must be chosen, idents that must not) for SCORE 100."""
    full = [
        c
        for c in item.iter(f"{QTI}respcondition")
        if c.findtext(f"{QTI}setvar") == "100" and c.get("continue") == "No"
    ]
    assert len(full) == 1
    var = full[0].find(f"{QTI}conditionvar")
    assert var is not None
    chosen = {v.text or "" for v in var.iter(f"{QTI}varequal")}
    refused = {v.text or "" for n in var.iter(f"{QTI}not") for v in n.iter(f"{QTI}varequal")}
    return chosen - refused, refused


def feedback(item: ET.Element) -> dict[str, str]:
    return {
        fb.get("ident", ""): fb.findtext(f"{QTI}flow_mat/{QTI}material/{QTI}mattext", "")
        for fb in item.findall(f"{QTI}itemfeedback")
    }


def visible(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", fragment))


def test_qti_quiz_items_types_and_correct_answers() -> None:
    qs = qti_items(export(QUIZ_BANK))
    assert {k: meta(q)["question_type"] for k, q in qs.items()} == {
        "alpha.clipping": "essay_question",
        "alpha.optimizer": "multiple_choice_question",
        "alpha.precision": "multiple_choice_question",
        "beta.mean_estimate": "essay_question",
        "strategy.moat": "essay_question",
    }
    assert all(meta(q)["points_possible"] == "1.0" for q in qs.values())
    precision = qs["alpha.precision"]
    choices = labels(precision)
    assert list(choices.values()) == ["1", "2", "4"]
    assert meta(precision)["original_answer_ids"] == ",".join(choices)
    lid = precision.find(f"{QTI}presentation/{QTI}response_lid")
    assert lid is not None and lid.get("rcardinality") == "Single"
    must, refused = scored(precision)
    assert [choices[i] for i in must] == ["2"] and not refused
    assert precision.findtext(f"{QTI}presentation/{QTI}material/{QTI}mattext") == (
        "<p>How many bytes does one bfloat16 parameter take?</p>"
    )
    mattext = precision.find(f"{QTI}presentation/{QTI}material/{QTI}mattext")
    assert mattext is not None and mattext.get("texttype") == "text/html"
    fbs = feedback(precision)
    assert "Two bytes." in fbs["general_fb"]
    assert sorted(fbs) == sorted(["general_fb", *(f"{i}_fb" for i in choices)])
    essay = qs["strategy.moat"]
    assert essay.find(f"{QTI}presentation/{QTI}response_str") is not None
    assert "<li>Data flywheel</li>" in feedback(essay)["general_fb"]
    for q in qs.values():  # every feedback a condition shows exists, and every one is shown
        shown = {d.get("linkrefid") for d in q.iter(f"{QTI}displayfeedback")}
        assert shown == set(feedback(q)), q.get("title")
    idents = [q.get("ident") for q in qs.values()]
    assert len(set(idents)) == 5


def test_qti_student_sheet_keeps_scoring_and_drops_feedback() -> None:
    data = export(QUIZ_BANK, answers=False)
    qs = qti_items(data)
    assert len(qs) == 5
    assert all(not q.findall(f"{QTI}itemfeedback") for q in qs.values())
    assert all(not list(q.iter(f"{QTI}displayfeedback")) for q in qs.values())
    optimizer = qs["alpha.optimizer"]
    must, _ = scored(optimizer)
    assert [labels(optimizer)[i] for i in must] == ["AdamW"]
    _, root, _ = unzip(data)
    text = ET.tostring(root, encoding="unicode")
    for leaked in ("Two bytes", "That is float32", "Data flywheel", "Proprietary"):
        assert leaked not in text


def test_qti_several_correct_choices_is_multiple_answers() -> None:
    record = copy.deepcopy(records(QUIZ_BANK)["alpha.precision"])
    record["choices"][0]["correct"] = True
    opts = ExportOptions()
    (q,) = qti_items(render("qti", [Item(record)], opts)).values()
    assert meta(q)["question_type"] == "multiple_answers_question"
    lid = q.find(f"{QTI}presentation/{QTI}response_lid")
    assert lid is not None and lid.get("rcardinality") == "Multiple"
    choices = labels(q)
    must, refused = scored(q)
    assert sorted(choices[i] for i in must) == ["1", "2"]
    assert [choices[i] for i in refused] == ["4"]


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_qti_hostile_text_round_trips_inert(lang: str) -> None:
    data = export(HOSTILE_BANK, lang=lang)
    _, root, zf = unzip(data)
    raw = zf.read(zf.namelist()[1])
    assert b"<script" not in raw and b"]]>" not in raw
    qs = qti_items(data)
    recs = records(HOSTILE_BANK)
    langs = ("en", "zh") if lang == "both" else (lang,)
    for qid, q in qs.items():
        rec = recs[qid]
        assert q.get("title") == " / ".join(rec["title"][lg] for lg in langs) + f" [{qid}]"
        prompt = "\n\n".join(rec["prompt"][lg].strip() for lg in langs)
        got = q.findtext(f"{QTI}presentation/{QTI}material/{QTI}mattext")
        assert got == block(prompt).strip()
        for mattext in q.iter(f"{QTI}mattext"):
            for tag in re.findall(r"<\s*/?\s*([a-zA-Z!\[]+)", mattext.text or ""):
                assert tag.lower() in {"p", "pre", "code", "span", "ul", "li"}, tag
    general = visible(feedback(qs["evil.essay"])["general_fb"])
    if "en" in langs:
        assert "Because ]]> & <style>body{display:none}</style> {} ~=#: \\" in general
    if lang == "both":
        assert general.index("Because") < general.index("因为")


def test_qti_is_byte_stable_with_fixed_times() -> None:
    first = export(QUIZ_BANK, lang="both", with_code=True)
    assert first == export(QUIZ_BANK, lang="both", with_code=True)
    assert first != export(QUIZ_BANK, lang="both")
    zf = zipfile.ZipFile(io.BytesIO(first))
    assert all(info.date_time == FIXED_TIME for info in zf.infolist())
    assert all(info.external_attr >> 16 == 0o644 for info in zf.infolist())
    qs = qti_items(first)
    assert "def estimate_mean(samples: list[float]" in visible(
        feedback(qs["beta.mean_estimate"])["general_fb"]
    )
    assert qs["alpha.clipping"].get("ident") == qti_items(export(QUIZ_BANK))["alpha.clipping"].get(
        "ident"
    )
