"""The candidate's progress: FSRS cards and a review log in SQLite.

One card per question id (so editing a question's wording keeps its progress), scheduled
by the ``fsrs`` package. Every rating is one transaction that updates the card and logs
the review, in WAL mode with full sync: a crash or a ``kill -9`` between two ratings
loses nothing that was rated. The schema version is SQLite's ``user_version``; opening
an older database migrates it forward, a newer one is refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsrs

# now, default_path and streak live with the light reader (`aiprep list` reads progress
# without fsrs); imported here so the store's callers keep one place to get them.
from aiprep.learner import default_path as default_path
from aiprep.learner import now as now
from aiprep.learner import streak as streak

RATINGS = {1: "again", 2: "hard", 3: "good", 4: "easy"}
EXPORT_FORMAT = "aiprep-progress"
EXPORT_VERSION = 1

# Each entry moves the schema from version i to i + 1. Append only: never edit one
# that has shipped, or databases already at that version will not get the change.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cards (
        question_id TEXT PRIMARY KEY,
        state       INTEGER NOT NULL,
        step        INTEGER,
        stability   REAL,
        difficulty  REAL,
        due         TEXT NOT NULL,   -- ISO 8601, UTC
        last_review TEXT
    );
    CREATE TABLE reviews (
        id          INTEGER PRIMARY KEY,
        question_id TEXT NOT NULL,
        reviewed_at TEXT NOT NULL,   -- ISO 8601, UTC
        rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 4),
        duration_ms INTEGER,
        source      TEXT NOT NULL,   -- quiz | mock | verify | import
        UNIQUE (question_id, reviewed_at, rating)
    );
    CREATE INDEX reviews_by_question ON reviews (question_id, reviewed_at);
    """,
    # 2: undo (each review keeps the card as it was before it: JSON, 'null' for no card;
    # NULL for reviews logged before this version, which cannot be undone) and the hints
    # `aiprep hint` has shown, per question.
    """
    ALTER TABLE reviews ADD COLUMN card_before TEXT;
    CREATE TABLE hints_shown (
        question_id TEXT PRIMARY KEY,
        shown       INTEGER NOT NULL CHECK (shown >= 0)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The progress database or an export file cannot be used; the message says why."""


@dataclass(frozen=True)
class Review:
    question_id: str
    reviewed_at: datetime
    rating: int
    duration_ms: int | None
    source: str


class Store:
    """Progress for one candidate. Use as a context manager, or call ``close()``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: cannot open the progress database ({e})") from None
        # No fuzzing: the same ratings give the same schedule, which a candidate can
        # reason about (and tests can assert).
        self.scheduler = fsrs.Scheduler(enable_fuzzing=False)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer aiprep (schema {version}, this one knows "
                f"{SCHEMA_VERSION}) — upgrade aiprep"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as db:
                for statement in MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- cards ---------------------------------------------------------------------

    def card(self, question_id: str) -> fsrs.Card | None:
        row = self._db.execute(
            "SELECT state, step, stability, difficulty, due, last_review FROM cards"
            " WHERE question_id = ?",
            (question_id,),
        ).fetchone()
        return None if row is None else _card(row)

    def cards(self) -> dict[str, fsrs.Card]:
        rows = self._db.execute(
            "SELECT question_id, state, step, stability, difficulty, due, last_review FROM cards"
        )
        return {row[0]: _card(row[1:]) for row in rows}

    def rate(
        self,
        question_id: str,
        rating: int,
        *,
        at: datetime | None = None,
        duration_ms: int | None = None,
        source: str = "quiz",
    ) -> fsrs.Card:
        """Schedule the card for ``rating`` (1 again .. 4 easy) and log it; one transaction."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be 1-4, not {rating!r}")
        at = at or now()
        with self._transaction() as db:
            before = self.card(question_id)
            card, _ = self.scheduler.review_card(
                before or fsrs.Card(due=at), fsrs.Rating(rating), at
            )
            _put_card(db, question_id, card)
            snapshot = json.dumps(None if before is None else _card_dict(before))
            db.execute(
                "INSERT OR IGNORE INTO reviews (question_id, reviewed_at, rating, duration_ms,"
                " source, card_before) VALUES (?, ?, ?, ?, ?, ?)",
                (question_id, at.isoformat(), rating, duration_ms, source, snapshot),
            )
        return card

    def preview(self, question_id: str, at: datetime | None = None) -> dict[int, datetime]:
        """When each rating (1..4) given at ``at`` would make the card due next; nothing
        is saved. For the rating keys, like Anki's buttons."""
        at = at or now()
        card = self.card(question_id) or fsrs.Card(due=at)
        return {r: self.scheduler.review_card(card, fsrs.Rating(r), at)[0].due for r in RATINGS}

    def undo(self, question_id: str) -> bool:
        """Take back the last review of ``question_id``: its log row goes and the card is
        as it was before (none, for a first review); one transaction. False when there is
        nothing to undo (no review, or one logged before undo existed, or imported)."""
        with self._transaction() as db:
            row = db.execute(
                # the row logged last (ids grow): the rating just given
                "SELECT id, card_before FROM reviews WHERE question_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (question_id,),
            ).fetchone()
            if row is None or row[1] is None:
                return False
            before = json.loads(row[1])
            db.execute("DELETE FROM reviews WHERE id = ?", (row[0],))
            if before is None:
                db.execute("DELETE FROM cards WHERE question_id = ?", (question_id,))
            else:
                _put_card(db, question_id, _card_from_dict(before))
        return True

    def retrievability(self, card: fsrs.Card, at: datetime | None = None) -> float:
        """FSRS's chance of recall at ``at``, with the time since the last review in
        fractional days (fsrs itself counts whole days, so any card reviewed today would
        read 100 %). 0 for a card never reviewed."""
        if card.last_review is None or card.stability is None:
            return 0.0
        elapsed = max(0.0, ((at or now()) - card.last_review).total_seconds() / 86400)
        factor, decay = self.scheduler._FACTOR, self.scheduler._DECAY
        return float((1 + factor * elapsed / card.stability) ** decay)

    # -- hints ---------------------------------------------------------------------

    def hints_shown(self, question_id: str) -> int:
        row = self._db.execute(
            "SELECT shown FROM hints_shown WHERE question_id = ?", (question_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def set_hints_shown(self, question_id: str, shown: int) -> None:
        with self._transaction() as db:
            if shown <= 0:
                db.execute("DELETE FROM hints_shown WHERE question_id = ?", (question_id,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO hints_shown (question_id, shown) VALUES (?, ?)",
                    (question_id, shown),
                )

    # -- reviews -------------------------------------------------------------------

    def reviews(self, question_ids: Iterable[str] | None = None) -> list[Review]:
        rows = self._db.execute(
            "SELECT question_id, reviewed_at, rating, duration_ms, source FROM reviews"
            " ORDER BY reviewed_at, id"
        ).fetchall()
        wanted = None if question_ids is None else set(question_ids)
        return [
            Review(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4])
            for r in rows
            if wanted is None or r[0] in wanted
        ]

    def reset(self, question_ids: Iterable[str] | None = None) -> int:
        """Forget cards and reviews (all, or of these ids); the number of cards removed."""
        with self._transaction() as db:
            if question_ids is None:
                removed = db.execute("DELETE FROM cards").rowcount
                db.execute("DELETE FROM reviews")
                db.execute("DELETE FROM hints_shown")
                return int(removed)
            removed = 0
            for qid in question_ids:
                removed += db.execute("DELETE FROM cards WHERE question_id = ?", (qid,)).rowcount
                db.execute("DELETE FROM reviews WHERE question_id = ?", (qid,))
                db.execute("DELETE FROM hints_shown WHERE question_id = ?", (qid,))
            return removed

    # -- moving machines -----------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (``import_`` reads it back)."""
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": now().isoformat(),
            "cards": {qid: _card_dict(card) for qid, card in sorted(self.cards().items())},
            "reviews": [
                {
                    "question_id": r.question_id,
                    "reviewed_at": r.reviewed_at.isoformat(),
                    "rating": r.rating,
                    "duration_ms": r.duration_ms,
                    "source": r.source,
                }
                for r in self.reviews()
            ],
        }

    def import_(self, data: Any, origin: str = "import") -> tuple[int, int]:
        """Merge an export: reviews are added (duplicates skipped); for each card, the one
        reviewed last wins. Returns (cards taken, reviews added)."""
        cards, reviews = _parse_export(data, origin)
        mine = self.cards()
        taken = added = 0
        with self._transaction() as db:
            for qid, card in cards.items():
                current = mine.get(qid)
                if current is None or _last(card) > _last(current):
                    _put_card(db, qid, card)
                    taken += 1
            for r in reviews:
                added += db.execute(
                    "INSERT OR IGNORE INTO reviews (question_id, reviewed_at, rating,"
                    " duration_ms, source) VALUES (?, ?, ?, ?, ?)",
                    (r.question_id, r.reviewed_at.isoformat(), r.rating, r.duration_ms, r.source),
                ).rowcount
        return taken, added

    def follow_moves(self, moves: dict[str, str]) -> int:
        """Carry the cards and reviews of questions that moved (old id -> new id) to their
        new ids, in one transaction; where both ids have a card, the one reviewed last
        wins. Idempotent. Returns how many old ids had progress."""
        if not moves:
            return 0
        held = {qid for qid in self.cards() if qid in moves}
        held |= {r.question_id for r in self.reviews(moves)}
        if not held:
            return 0
        cards = self.cards()
        with self._transaction() as db:
            for old in sorted(held):
                new = moves[old]
                mine, theirs = cards.get(old), cards.get(new)
                if mine is not None and (theirs is None or _last(mine) > _last(theirs)):
                    _put_card(db, new, mine)
                db.execute("DELETE FROM cards WHERE question_id = ?", (old,))
                db.execute(
                    "UPDATE OR IGNORE reviews SET question_id = ? WHERE question_id = ?",
                    (new, old),
                )
                db.execute("DELETE FROM reviews WHERE question_id = ?", (old,))  # duplicates
        return len(held)


# -----------------------------------------------------------------------------
# Statistics


@dataclass
class TopicStats:
    topic: str
    total: int
    seen: int
    due_now: int
    due_week: int
    retrievability: float | None  # mean over the cards in review (graduated)
    learning: int = 0  # seen, still in (re)learning steps: FSRS has no recall estimate yet


def stats(
    store: Store, questions: dict[str, str], at: datetime | None = None
) -> tuple[list[TopicStats], int]:
    """Per topic figures for ``questions`` (id -> topic), and the review streak in days.

    Cards of questions no longer in the bank are ignored; the streak counts consecutive
    local calendar days with at least one review, ending today (or yesterday: a streak
    is not broken before the day is over).
    """
    at = at or now()
    cards = store.cards()
    rows: dict[str, TopicStats] = {}
    sums: dict[str, list[float]] = {}
    for qid, topic in questions.items():
        row = rows.setdefault(topic, TopicStats(topic, 0, 0, 0, 0, None))
        row.total += 1
        card = cards.get(qid)
        if card is None:
            continue
        row.seen += 1
        row.due_now += card.due <= at
        row.due_week += card.due <= at + timedelta(days=7)
        if card.state != fsrs.State.Review:
            # Just rated again, or new and in its first steps: the short-term steps
            # decide when it comes back; a recall figure here would read ~100 %.
            row.learning += 1
            continue
        sums.setdefault(topic, []).append(store.retrievability(card, at))
    for topic, values in sums.items():
        rows[topic].retrievability = sum(values) / len(values)
    days = {r.reviewed_at.astimezone().date() for r in store.reviews()}
    return sorted(rows.values(), key=lambda r: r.topic), streak(days, at.astimezone().date())


# -----------------------------------------------------------------------------
# Rows <-> cards


def _card(row: tuple[Any, ...]) -> fsrs.Card:
    state, step, stability, difficulty, due, last_review = row
    return fsrs.Card(
        state=fsrs.State(state),
        step=step,
        stability=stability,
        difficulty=difficulty,
        due=datetime.fromisoformat(due),
        last_review=datetime.fromisoformat(last_review) if last_review else None,
    )


def _put_card(db: sqlite3.Connection, question_id: str, card: fsrs.Card) -> None:
    db.execute(
        "INSERT OR REPLACE INTO cards (question_id, state, step, stability, difficulty, due,"
        " last_review) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            question_id,
            int(card.state),
            card.step,
            card.stability,
            card.difficulty,
            card.due.isoformat(),
            card.last_review.isoformat() if card.last_review else None,
        ),
    )


def _card_from_dict(c: dict[str, Any]) -> fsrs.Card:
    return _card(
        (c["state"], c["step"], c["stability"], c["difficulty"], c["due"], c["last_review"])
    )


def _card_dict(card: fsrs.Card) -> dict[str, Any]:
    return {
        "state": int(card.state),
        "step": card.step,
        "stability": card.stability,
        "difficulty": card.difficulty,
        "due": card.due.isoformat(),
        "last_review": card.last_review.isoformat() if card.last_review else None,
    }


def _last(card: fsrs.Card) -> datetime:
    return card.last_review or datetime.min.replace(tzinfo=UTC)


def _parse_export(data: Any, origin: str) -> tuple[dict[str, fsrs.Card], list[Review]]:
    """Validate an export's shape; StoreError naming the first thing wrong."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise StoreError(f"{origin}: not an aiprep progress export (`aiprep progress export`)")
    if data.get("version") != EXPORT_VERSION:
        raise StoreError(
            f"{origin}: export version {data.get('version')!r}; this aiprep reads "
            f"{EXPORT_VERSION} — upgrade aiprep on this machine"
        )
    try:
        cards = {
            str(qid): _card(
                (c["state"], c["step"], c["stability"], c["difficulty"], c["due"], c["last_review"])
            )
            for qid, c in data["cards"].items()
        }
        reviews = [
            Review(
                str(r["question_id"]),
                datetime.fromisoformat(r["reviewed_at"]),
                int(r["rating"]),
                r.get("duration_ms"),
                str(r.get("source", "import")),
            )
            for r in data["reviews"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise StoreError(f"{origin}: malformed export ({type(e).__name__}: {e})") from None
    if any(r.rating not in RATINGS for r in reviews):
        raise StoreError(f"{origin}: a review has a rating outside 1-4")
    return cards, reviews


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
