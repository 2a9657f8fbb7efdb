"""Where the learner stands on each question, read from the progress database with sqlite3
alone: for ``aiprep list`` (its status column) and ``aiprep today``, which must stay quick
and so never import fsrs. ``store.py`` writes the database; this module only reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from aiprep.paths import user_home

Status = Literal["new", "failed", "due", "verified", "seen"]
STATUSES: tuple[Status, ...] = ("new", "due", "failed", "verified", "seen")
_REVIEW_STATE = 2  # fsrs.State.Review: past the learning steps


def now() -> datetime:
    """The current time, UTC. ``AIPREP_NOW`` (ISO 8601) pins it, for tests and demos."""
    pinned = os.environ.get("AIPREP_NOW")
    if pinned:
        moment = datetime.fromisoformat(pinned)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def default_path() -> Path:
    return user_home() / "progress.sqlite3"


@dataclass
class Progress:
    """What the database says about each question id that has any progress."""

    due: dict[str, datetime] = field(default_factory=dict)  # id -> when its card is due
    learning: set[str] = field(default_factory=set)  # cards still in (re)learning steps
    last_rating: dict[str, int] = field(default_factory=dict)  # id -> its latest rating
    verified: set[str] = field(default_factory=set)  # ids with a passed `aiprep verify`
    review_days: set[date] = field(default_factory=set)  # local days with a review

    def status(self, question_id: str, at: datetime) -> Status:
        """new (never rated), failed (last rated again), due, verified (a passed verify),
        else seen. The first that applies wins: what to do about it comes first."""
        if question_id not in self.due:
            return "new"
        if self.last_rating.get(question_id) == 1:
            return "failed"
        if self.due[question_id] <= at:
            return "due"
        if question_id in self.verified:
            return "verified"
        return "seen"


def read(path: Path | None = None) -> Progress:
    """The progress at ``path`` (default: the learner's); empty when there is none yet or
    it cannot be read (a listing must not fail on it: `aiprep stats` says what is wrong)."""
    path = path or default_path()
    progress = Progress()
    if not path.exists():
        return progress
    import sqlite3  # only once there is progress: a new learner's `list` skips the import

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return progress
    try:
        for qid, state, due in db.execute("SELECT question_id, state, due FROM cards"):
            progress.due[qid] = datetime.fromisoformat(due)
            if state != _REVIEW_STATE:
                progress.learning.add(qid)
        rows = db.execute(
            "SELECT question_id, reviewed_at, rating, source FROM reviews ORDER BY reviewed_at, id"
        )
        for qid, reviewed_at, rating, source in rows:
            progress.last_rating[qid] = rating
            if source == "verify" and rating >= 3:
                progress.verified.add(qid)
            progress.review_days.add(datetime.fromisoformat(reviewed_at).astimezone().date())
    except sqlite3.Error:
        return Progress()
    finally:
        db.close()
    return progress


def streak(days: set[date], today: date) -> int:
    """Consecutive days with a review, ending today (or yesterday: a streak is not broken
    before the day is over)."""
    day = today if today in days else today - timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


@dataclass
class Today:
    """``aiprep today``: what is due among ``ids`` and what to do next."""

    due: list[str]  # due now, most overdue first
    learning: int
    new: int
    total: int
    streak: int
    next_due: datetime | None  # the earliest not yet due


def today(progress: Progress, ids: Iterable[str], at: datetime) -> Today:
    known = list(ids)
    seen = [i for i in known if i in progress.due]
    due = sorted((i for i in seen if progress.due[i] <= at), key=lambda i: progress.due[i])
    later = sorted(progress.due[i] for i in seen if progress.due[i] > at)
    return Today(
        due=due,
        learning=sum(i in progress.learning for i in seen),
        new=len(known) - len(seen),
        total=len(known),
        streak=streak(progress.review_days, at.astimezone().date()),
        next_due=later[0] if later else None,
    )
