"""Progress storage: FSRS scheduling, one transaction per rating, migrations, moving machines."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep.cli import cli
from aiprep.store import SCHEMA_VERSION, Store, StoreError, stats, streak
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_ratings_schedule_cards_in_order_and_log_reviews(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        again = store.rate("a.again", 1, at=T0, duration_ms=1500)
        good = store.rate("a.good", 3, at=T0)
        easy = store.rate("a.easy", 4, at=T0)
        assert again.due < good.due < easy.due
        assert easy.due - T0 >= timedelta(days=1)  # easy graduates at once
        assert [(r.question_id, r.rating) for r in store.reviews()] == [
            ("a.again", 1),
            ("a.good", 3),
            ("a.easy", 4),
        ]
        assert store.reviews(["a.again"])[0].duration_ms == 1500
        with pytest.raises(ValueError):
            store.rate("a.x", 5)


def test_progress_survives_reopening_and_keeps_wal(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Store(path) as store:
        store.rate("a.one", 3, at=T0)
    with Store(path) as store:
        assert store.card("a.one") is not None
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version == SCHEMA_VERSION


def test_an_older_database_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    sqlite3.connect(path).close()  # version 0: an empty file from before the first schema
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.rate("a.one", 3, at=T0)


def test_a_newer_database_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer aiprep"):
        Store(path)


def test_a_corrupt_database_is_one_line_not_a_traceback(tmp_path: Path, user_home: Path) -> None:
    (user_home / "progress.sqlite3").write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), "stats"])
    assert result.exit_code == 2
    assert "cannot open the progress database" in result.output
    assert "Traceback" not in result.output


def test_export_then_import_on_another_machine_merges(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        a.rate("x.one", 3, at=T0)
        a.rate("x.two", 1, at=T0)
        exported = json.loads(json.dumps(a.export()))
    with Store(tmp_path / "b.db") as b:
        b.rate("x.two", 4, at=T0 + timedelta(hours=1))  # newer here: must win
        cards, reviews = b.import_(exported)
        assert (cards, reviews) == (1, 2)
        assert b.import_(exported) == (0, 0)  # importing twice adds nothing
        assert b.cards()["x.two"].last_review == T0 + timedelta(hours=1)
        assert len(b.reviews()) == 3


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([1, 2], "not an aiprep progress export"),
        ({"format": "aiprep-progress", "version": 99}, "export version 99"),
        ({"format": "aiprep-progress", "version": 1, "cards": {"a.b": {}}}, "malformed"),
    ],
)
def test_bad_imports_say_what_is_wrong(tmp_path: Path, data: object, words: str) -> None:
    with Store(tmp_path / "p.db") as store, pytest.raises(StoreError, match=words):
        store.import_(data, origin="x.json")


def test_stats_count_per_topic_and_streak(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        store.rate("a.one", 1, at=T0)
        store.rate("a.two", 4, at=T0)
        rows, days = stats(
            store, {"a.one": "a", "a.two": "a", "b.one": "b"}, T0 + timedelta(hours=1)
        )
    a, b = rows
    assert (a.topic, a.total, a.seen, a.due_now, a.due_week) == ("a", 2, 2, 1, 1)
    assert (b.seen, b.retrievability) == (0, None)
    assert a.retrievability is not None and 0 < a.retrievability <= 1
    assert days == 1


def test_streak_counts_consecutive_days_up_to_today_or_yesterday() -> None:
    d = date(2026, 3, 10)
    assert streak({d, d - timedelta(1), d - timedelta(2)}, d) == 3
    assert streak({d - timedelta(1), d - timedelta(2)}, d) == 2  # today not over yet
    assert streak({d - timedelta(2)}, d) == 0
    assert streak(set(), d) == 0


def test_progress_commands_export_import_and_reset(tmp_path: Path, user_home: Path) -> None:
    runner = CliRunner()
    with Store() as store:
        store.rate("alpha.clipping", 3)
        store.rate("strategy.moat", 1)
    out = tmp_path / "progress.json"
    base = ["--bank", str(QUIZ_BANK), "progress"]
    assert runner.invoke(cli, [*base, "export", "-o", str(out)]).exit_code == 0
    again = runner.invoke(cli, [*base, "export", "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    # reset asks first: no terminal and no --yes is refused
    refused = runner.invoke(cli, [*base, "reset"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert runner.invoke(cli, [*base, "reset", "--yes", "--topic", "alpha"]).exit_code == 0
    with Store() as store:
        assert set(store.cards()) == {"strategy.moat"}
    assert runner.invoke(cli, [*base, "reset"], input="y\n").exit_code == 2  # not a tty
    assert runner.invoke(cli, [*base, "reset", "--yes"]).exit_code == 0
    with Store() as store:
        assert store.cards() == {}
    result = runner.invoke(cli, [*base, "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported 2 card(s) and 2 review(s)" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = runner.invoke(cli, [*base, "import", str(bad)])
    assert result.exit_code == 2 and "not JSON" in result.output


def test_questions_rated_again_come_back_in_the_session_once_due(tmp_path: Path) -> None:
    from aiprep.schedule import Outcome, Session, due_again

    queue = [{"id": "a.again"}, {"id": "a.easy"}, {"id": "a.skipped"}]
    with Store(tmp_path / "p.db") as store:
        store.rate("a.again", 1, at=T0)
        store.rate("a.easy", 4, at=T0)
        store.rate("a.skipped", 1, at=T0 - timedelta(days=3))  # due long ago
        session = Session(
            [Outcome("a.again", 1, 5.0), Outcome("a.easy", 4, 5.0), Outcome("a.skipped", None, 1.0)]
        )
        assert due_again(queue, session, store, T0) == []  # "again" waits a minute
        later = T0 + timedelta(minutes=2)
        assert due_again(queue, session, store, later) == [{"id": "a.again"}]
        session.outcomes.append(Outcome("a.again", None, 1.0))  # skipped when it came back
        assert due_again(queue, session, store, later) == []


def test_progress_follows_a_moved_question(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.sqlite3")
    store.rate("concepts.attention", 3, duration_ms=1, source="quiz")
    store.rate("concepts.old_only_reviews", 1, duration_ms=1, source="quiz")
    assert store.follow_moves({"concepts.attention": "nlp.attention"}) == 1
    cards = store.cards()
    assert "nlp.attention" in cards and "concepts.attention" not in cards
    assert [r.question_id for r in store.reviews(["nlp.attention"])] == ["nlp.attention"]
    assert store.reviews(["concepts.attention"]) == []
    assert store.follow_moves({"concepts.attention": "nlp.attention"}) == 0  # idempotent
    assert "concepts.old_only_reviews" in store.cards()  # not moved: untouched
    store.close()


def test_a_moved_card_keeps_the_newer_review_where_both_ids_have_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.sqlite3")
    first, second = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    store.rate("nlp.attention", 1, at=first, duration_ms=1)  # older, under the new id
    later = store.rate("concepts.attention", 4, at=second, duration_ms=1)
    store.follow_moves({"concepts.attention": "nlp.attention"})
    assert store.cards()["nlp.attention"].due == later.due
    assert len(store.reviews(["nlp.attention"])) == 2
    store.close()
