"""The two languages of every question, and how a command's ``--lang`` picks among them."""

from __future__ import annotations

from typing import Literal, TypedDict

Lang = Literal["en", "zh"]
LangChoice = Literal["en", "zh", "both"]  # what ``--lang`` accepts
LANGS: tuple[Lang, ...] = ("en", "zh")


class Bilingual(TypedDict):
    """A text in both languages: every question field a person reads."""

    en: str
    zh: str


def langs(choice: str) -> tuple[Lang, ...]:
    """The languages a choice shows, in order: ``both`` is English, then Chinese."""
    if choice == "both":
        return LANGS
    if choice not in LANGS:
        raise ValueError(f"unknown language {choice!r}; use en, zh or both")
    return (choice,)  # narrowed to Lang by the check above


def bilingual(value: Bilingual, choice: str, sep: str = "\n\n") -> str:
    """A bilingual text in ``choice``'s language(s), joined by ``sep`` for ``both``."""
    return sep.join(value[lg] for lg in langs(choice))
