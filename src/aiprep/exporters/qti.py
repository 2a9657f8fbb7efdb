"""A QTI 1.2 zip in the shape Canvas imports: ``imsmanifest.xml`` and one assessment.

Each question is an ``<item>`` whose ``question_type`` is Canvas's:
``multiple_choice_question`` (one correct choice), ``multiple_answers_question`` (several;
full marks only for exactly the correct set, as Canvas scores it) or ``essay_question``
(every other kind). Texts are HTML in ``<mattext texttype="text/html">``, escaped by
ElementTree. Idents are derived from the question ids (a hash), and the zip entries carry
``FIXED_TIME``, so the same questions give the same bytes.

With ``answers`` on, each choice's ``why`` is its response feedback and the answer, key
points and (``with_code``) solution are the general feedback (``general_fb``), which Canvas
shows after a submission. With ``answers`` off, all feedback is left out; the scoring in
``<resprocessing>`` stays, as Canvas grades by it.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence

from aiprep.exporters import FIXED_TIME, ExportOptions, Item, _lms
from aiprep.exporters.document import Question

QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
CP_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
RESPONSE = "response1"
GENERAL_FB = "general_fb"


def _field(meta: ET.Element, label: str, entry: str) -> None:
    f = ET.SubElement(meta, "qtimetadatafield")
    ET.SubElement(f, "fieldlabel").text = label
    ET.SubElement(f, "fieldentry").text = entry


def _material(parent: ET.Element, html: str) -> None:
    mat = ET.SubElement(parent, "material")
    ET.SubElement(mat, "mattext", {"texttype": "text/html"}).text = html


def _feedback(item_el: ET.Element, ident: str, html: str) -> None:
    fb = ET.SubElement(item_el, "itemfeedback", {"ident": ident})
    _material(ET.SubElement(fb, "flow_mat"), html)


def _equal(parent: ET.Element, label: str) -> None:
    ET.SubElement(parent, "varequal", {"respident": RESPONSE}).text = label


def _show(cond: ET.Element, ident: str) -> None:
    ET.SubElement(cond, "displayfeedback", {"feedbacktype": "Response", "linkrefid": ident})


def _scoring(item_el: ET.Element, q: Question) -> ET.Element:
    """``<resprocessing>`` with the score variable and, with answers, the general feedback."""
    proc = ET.SubElement(item_el, "resprocessing")
    outcomes = ET.SubElement(proc, "outcomes")
    ET.SubElement(
        outcomes,
        "decvar",
        {"maxvalue": "100", "minvalue": "0", "varname": "SCORE", "vartype": "Decimal"},
    )
    if q.answer is not None:
        cond = ET.SubElement(proc, "respcondition", {"continue": "Yes"})
        ET.SubElement(ET.SubElement(cond, "conditionvar"), "other")
        _show(cond, GENERAL_FB)
    return proc


def _choices(
    item_el: ET.Element, presentation: ET.Element, e: _lms.Entry, labels: list[str]
) -> None:
    q = e.question
    correct = [label for label, ok in zip(labels, e.correct, strict=True) if ok]
    single = len(correct) == 1
    lid = ET.SubElement(
        presentation,
        "response_lid",
        {"ident": RESPONSE, "rcardinality": "Single" if single else "Multiple"},
    )
    render = ET.SubElement(lid, "render_choice")
    for label, choice in zip(labels, q.choices, strict=True):
        _material(
            ET.SubElement(render, "response_label", {"ident": label}), _lms.choice_html(choice)
        )
    proc = _scoring(item_el, q)
    for label, choice in zip(labels, q.choices, strict=True):
        if _lms.why_html(choice) is not None:
            cond = ET.SubElement(proc, "respcondition", {"continue": "Yes"})
            _equal(ET.SubElement(cond, "conditionvar"), label)
            _show(cond, f"{label}_fb")
    cond = ET.SubElement(proc, "respcondition", {"continue": "No"})
    var = ET.SubElement(cond, "conditionvar")
    if single:
        _equal(var, correct[0])
    else:
        both = ET.SubElement(var, "and")
        for label in labels:
            _equal(both if label in correct else ET.SubElement(both, "not"), label)
    ET.SubElement(cond, "setvar", {"action": "Set", "varname": "SCORE"}).text = "100"


def _essay(item_el: ET.Element, presentation: ET.Element, e: _lms.Entry) -> None:
    resp = ET.SubElement(
        presentation, "response_str", {"ident": RESPONSE, "rcardinality": "Single"}
    )
    fib = ET.SubElement(resp, "render_fib")
    ET.SubElement(fib, "response_label", {"ident": "answer1", "rshuffle": "No"})
    cond = ET.SubElement(_scoring(item_el, e.question), "respcondition", {"continue": "No"})
    ET.SubElement(ET.SubElement(cond, "conditionvar"), "other")


def _item(section: ET.Element, e: _lms.Entry) -> None:
    q = e.question
    title = _lms.name(q, html=False)
    item_el = ET.SubElement(section, "item", {"ident": "g" + _lms.ident(q.id), "title": title})
    meta = ET.SubElement(ET.SubElement(item_el, "itemmetadata"), "qtimetadata")
    labels = [str(int(_lms.ident(q.id, str(i))[:8], 16)) for i in range(len(q.choices))]
    if not q.choices:
        kind = "essay_question"
    elif sum(e.correct) == 1:
        kind = "multiple_choice_question"
    else:
        kind = "multiple_answers_question"
    _field(meta, "question_type", kind)
    _field(meta, "points_possible", "1.0")
    if labels:
        _field(meta, "original_answer_ids", ",".join(labels))
    _field(meta, "assessment_question_identifierref", "a" + _lms.ident(q.id, "bank"))
    presentation = ET.SubElement(item_el, "presentation")
    _material(presentation, _lms.prompt_html(q))
    if q.choices:
        _choices(item_el, presentation, e, labels)
    else:
        _essay(item_el, presentation, e)
    reference = _lms.reference_html(q)
    if reference is not None:
        _feedback(item_el, GENERAL_FB, reference)
    for label, choice in zip(labels, q.choices, strict=True):
        why = _lms.why_html(choice)
        if why is not None:
            _feedback(item_el, f"{label}_fb", why)


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def assessment_xml(ident: str, items: Sequence[Item], options: ExportOptions) -> bytes:
    """The ``<questestinterop>`` document: one assessment, one section, the items by topic."""
    root = ET.Element(
        "questestinterop",
        {
            "xmlns": QTI_NS,
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:schemaLocation": f"{QTI_NS} http://www.imsglobal.org/xsd/ims_qtiasiv1p2p1.xsd",
        },
    )
    assessment = ET.SubElement(root, "assessment", {"ident": ident, "title": options.title})
    meta = ET.SubElement(ET.SubElement(assessment, "qtimetadata"), "qtimetadatafield")
    ET.SubElement(meta, "fieldlabel").text = "cc_maxattempts"
    ET.SubElement(meta, "fieldentry").text = "1"
    section = ET.SubElement(assessment, "section", {"ident": "root_section"})
    for e in _lms.entries(items, options):
        _item(section, e)
    return _xml(root)


def manifest_xml(ident: str, href: str) -> bytes:
    """``imsmanifest.xml``: one resource of type ``imsqti_xmlv1p2``, the assessment."""
    root = ET.Element(
        "manifest",
        {
            "identifier": "m" + ident,
            "xmlns": CP_NS,
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:schemaLocation": f"{CP_NS} http://www.imsglobal.org/xsd/imscp_v1p1.xsd",
        },
    )
    meta = ET.SubElement(root, "metadata")
    ET.SubElement(meta, "schema").text = "IMS Content"
    ET.SubElement(meta, "schemaversion").text = "1.1.3"
    ET.SubElement(root, "organizations")
    resources = ET.SubElement(root, "resources")
    res = ET.SubElement(
        resources, "resource", {"identifier": ident, "type": "imsqti_xmlv1p2", "href": href}
    )
    ET.SubElement(res, "file", {"href": href})
    return _xml(root)


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    """The zip: ``imsmanifest.xml`` and ``<ident>/<ident>.xml``; the ident hashes the ids."""
    ident = "g" + _lms.ident("assessment", options.title, *sorted(i.id for i in items))
    href = f"{ident}/{ident}.xml"
    entries = [("imsmanifest.xml", manifest_xml(ident, href))]
    entries.append((href, assessment_xml(ident, items, options)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()
