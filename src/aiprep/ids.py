"""Question ids: ``<topic>.<slug>``, forever (a moved question keeps its old ids)."""

from __future__ import annotations

from collections.abc import Iterable


def topic_of(question_id: str) -> str:
    """A question's topic: the first part of its id (``training`` of ``training.cnn``)."""
    return question_id.split(".", 1)[0]


def matching(short: str, ids: Iterable[str]) -> list[str]:
    """The ids a short id names, best match first found: the id itself; else the ids whose
    slug is ``short`` (``digits_mlp`` for ``training.digits_mlp``); else those that
    ``short`` begins, as an id or a slug (``training.dig``, ``digits``). One id: resolved;
    several: ambiguous; none: unknown."""
    known = list(ids)
    if short in known:
        return [short]
    slugs = {i: i.split(".", 1)[-1] for i in known}
    found = [i for i in known if slugs[i] == short]
    if not found:
        found = [i for i in known if i.startswith(short) or slugs[i].startswith(short)]
    return sorted(found)
