"""JSON export: the question records in a versioned envelope.

Format ``aiprep-questions``, version 1 (JSON Schema: ``schema/export.schema.json``)::

    {"format": "aiprep-questions", "version": 1, "title": ..., "lang": "en|zh|both",
     "answers": true|false, "questions": [<record>, ...]}

A record is a question as the bank holds it (``aiprep show ID --json``), sorted by id,
with ``code`` (the reference solution's source, or null) added. ``lang`` keeps only the
chosen language(s) in every text object. A student sheet (``answers: false``) drops
``answer``, ``key_points``, ``code`` and each choice's ``correct`` and ``why``. An export
with both languages and answers loads back into the bank's model (``schema.Question``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiprep.exporters import ExportOptions, Item, langs

FORMAT = "aiprep-questions"
VERSION = 1
_ANSWER_FIELDS = ("answer", "key_points", "references")


def _texts(value: Any, keep: tuple[str, ...]) -> Any:
    """Keep only the languages in ``keep`` in every {en, zh} object, however deep."""
    if isinstance(value, dict):
        if set(value) == {"en", "zh"}:
            return {lg: value[lg] for lg in keep}
        return {k: _texts(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_texts(v, keep) for v in value]
    return value


def record(item: Item, options: ExportOptions) -> dict[str, Any]:
    out: dict[str, Any] = _texts(dict(item.record), langs(options))
    out["code"] = item.code
    if not options.answers:
        for name in _ANSWER_FIELDS:
            out.pop(name, None)
        out.pop("code")
        if out.get("choices"):
            out["choices"] = [{"text": c["text"]} for c in out["choices"]]
    return out


def document(items: Sequence[Item], options: ExportOptions) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": options.title,
        "lang": options.lang,
        "answers": options.answers,
        "questions": [record(item, options) for item in items],
    }


def render(items: Sequence[Item], options: ExportOptions) -> bytes:
    text = json.dumps(document(items, options), ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")
