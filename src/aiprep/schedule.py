"""Which questions a session asks, and in what order: FSRS due cards, new ones, mocks.

No terminal here: ``quiz.py`` asks, this module chooses, ``store.py`` remembers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiprep.bank import Record
from aiprep.ids import topic_of
from aiprep.store import Store, now

_DIFFICULTY_ORDER = {"easy": 0, "medium": 1, "hard": 2}


def pick(records: Sequence[Record], store: Store, at: datetime, new: int) -> list[Record]:
    """Due cards first (most overdue first), then up to ``new`` never-seen questions.

    New ones come easy first, in bank order within a difficulty, so a first session
    starts gently.
    """
    cards = store.cards()
    due = sorted(
        (q for q in records if q["id"] in cards and cards[q["id"]].due <= at),
        key=lambda q: cards[q["id"]].due,
    )
    fresh = [q for q in records if q["id"] not in cards]
    fresh.sort(key=lambda q: _DIFFICULTY_ORDER.get(q["difficulty"], 1))
    return due + fresh[:new]


@dataclass
class Outcome:
    question_id: str
    rating: int | None  # None: skipped
    seconds: float
    hints: int = 0


@dataclass
class Session:
    """What happened in one quiz or mock session (for the summary)."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def rated(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.rating is not None]


def due_again(
    queue: Sequence[Record], session: Session, store: Store, at: datetime
) -> list[Record]:
    """The questions rated in this session that are due again at ``at``; one skipped the
    last time it came up is not (skipping means "not now")."""
    last = {o.question_id: o for o in session.outcomes}
    rated = {qid for qid, o in last.items() if o.rating is not None}
    cards = store.cards()
    return [q for q in queue if q["id"] in rated and cards[q["id"]].due <= at]


def pick_mock(records: Sequence[Record], store: Store, minutes: int, seed: int) -> list[Record]:
    """A mix for ``minutes``: at least one coding and one strategy question, then a spread
    of topics and kinds, preferring questions due or never seen.

    About one question per six minutes (at least three).
    """
    rng = random.Random(seed)
    count = max(3, minutes // 6)
    cards = store.cards()
    at = now()

    def weight(q: Record) -> float:
        card = cards.get(q["id"])
        return rng.random() + (1.0 if card is None or card.due <= at else 0.0)

    pool = sorted(records, key=weight, reverse=True)
    chosen: list[Record] = []
    musts: list[Callable[[Record], bool]] = [
        lambda q: q["kind"] in ("coding", "debug"),
        lambda q: topic_of(q["id"]) == "strategy",
    ]
    for must in musts:
        for q in pool:
            if must(q) and q not in chosen:
                chosen.append(q)
                break
    seen_topics = {topic_of(q["id"]) for q in chosen}
    seen_kinds = {q["kind"] for q in chosen}
    for q in pool:  # new topics and kinds first
        if len(chosen) >= count:
            break
        fresh = topic_of(q["id"]) not in seen_topics or q["kind"] not in seen_kinds
        if q not in chosen and fresh:
            chosen.append(q)
            seen_topics.add(topic_of(q["id"]))
            seen_kinds.add(q["kind"])
    for q in pool:
        if len(chosen) >= count:
            break
        if q not in chosen:
            chosen.append(q)
    return chosen[:count]
