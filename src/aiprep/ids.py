"""Question ids: ``<topic>.<slug>``, forever (a moved question keeps its old ids)."""

from __future__ import annotations


def topic_of(question_id: str) -> str:
    """A question's topic: the first part of its id (``training`` of ``training.cnn``)."""
    return question_id.split(".", 1)[0]
