"""The learner's side (issue 14): undo, hints remembered, a failed verify, honest recall,
the status column of `list`, `aiprep today`, short ids and shell completion."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep import learner
from aiprep.cli import cli
from aiprep.ids import matching
from aiprep.store import SCHEMA_VERSION, Store, stats
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def invoke(*args: str, bank: Path = QUIZ_BANK, now: datetime | None = None) -> tuple[int, str]:
    env = {"AIPREP_NOW": now.isoformat()} if now else {}
    result = CliRunner().invoke(cli, ["--bank", str(bank), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# -- undo ---------------------------------------------------------------------------


def test_undo_restores_the_card_and_removes_the_review(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        store.rate("a.x", 3, at=T0)
        first = store.card("a.x")
        store.rate("a.x", 1, at=T0 + timedelta(minutes=11))
        assert store.card("a.x") != first
        assert store.undo("a.x")
        after = store.card("a.x")
        assert after is not None and first is not None
        assert (after.state, after.step, after.stability, after.due, after.last_review) == (
            first.state,
            first.step,
            first.stability,
            first.due,
            first.last_review,
        )
        assert [r.rating for r in store.reviews()] == [3]
        assert store.undo("a.x")  # the first review: no card at all before it
        assert store.card("a.x") is None and store.reviews() == []
        assert not store.undo("a.x")  # nothing left to undo


def test_a_review_logged_before_undo_existed_is_not_undone(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Store(path) as store:
        store.rate("a.x", 3, at=T0)
    db = sqlite3.connect(path)
    db.execute("UPDATE reviews SET card_before = NULL")  # as a version-1 database logged it
    db.commit()
    db.close()
    with Store(path) as store:
        assert not store.undo("a.x")
        assert len(store.reviews()) == 1 and store.card("a.x") is not None


def test_a_version_1_database_gains_undo_and_hints(tmp_path: Path) -> None:
    from aiprep.store import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO cards VALUES ('a.x', 1, 0, 1.0, 5.0, ?, ?)", (T0.isoformat(), T0.isoformat())
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 2
        assert store.card("a.x") is not None  # kept
        store.set_hints_shown("a.x", 2)
        assert store.hints_shown("a.x") == 2


def test_rating_previews_save_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        due = store.preview("a.x", T0)
        assert due[1] - T0 == timedelta(minutes=1) and due[3] - T0 == timedelta(minutes=10)
        assert due[1] < due[2] < due[3] < due[4]
        assert store.card("a.x") is None and store.reviews() == []


# -- recall ---------------------------------------------------------------------------


def test_a_card_just_rated_again_is_learning_not_100_percent_recall(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        store.rate("alpha.x", 1, at=T0)
        rows, _ = stats(store, {"alpha.x": "alpha"}, at=T0 + timedelta(minutes=1))
        assert rows[0].learning == 1 and rows[0].retrievability is None
        # a graduated card: recall falls within the day (fsrs alone counts whole days)
        store.rate("beta.y", 4, at=T0)
        card = store.card("beta.y")
        assert card is not None
        soon = store.retrievability(card, T0 + timedelta(hours=1))
        later = store.retrievability(card, T0 + timedelta(hours=20))
        assert 1.0 > soon > later


def test_stats_shows_learning_and_speaks_chinese() -> None:
    with Store() as store:
        store.rate("alpha.clipping", 1, at=T0)
    code, out = invoke("stats", "--json", now=T0 + timedelta(minutes=1))
    data = json.loads(out)
    assert data["total"]["learning"] == 1
    alpha = next(t for t in data["topics"] if t["topic"] == "alpha")
    assert alpha["retrievability"] is None and alpha["learning"] == 1
    code, out = invoke("stats", "--lang", "zh", now=T0 + timedelta(minutes=1))
    assert code == 0
    assert "主题" in out and "学习中" in out and "记忆率" in out and "连续 1 天" in out
    assert "100%" not in out


# -- hints ------------------------------------------------------------------------------


def test_hint_shows_one_more_per_call_and_remembers() -> None:
    code, out = invoke("hint", "alpha.clipping")
    assert code == 0
    assert "hint 1/2: Think of a loss spike." in out and "1 more" in out
    assert "hint 2/2" not in out
    _, out = invoke("hint", "clipping")  # a short id
    assert "hint 2/2:" in out and "hint 1/2" not in out
    _, out = invoke("hint", "alpha.clipping")
    assert "all 2 hint(s) of alpha.clipping are shown" in out
    _, out = invoke("hint", "alpha.clipping", "--all")
    assert "hint 1/2:" in out and "hint 2/2:" in out
    _, out = invoke("hint", "alpha.clipping", "--reset")
    _, out = invoke("hint", "alpha.clipping", "--lang", "zh")
    assert "提示 1/2：" in out and "想想损失突然飙升的情况。" in out


# -- verify -----------------------------------------------------------------------------


class _Result:
    def __init__(self, passed: bool, message: str = "") -> None:
        self.passed = passed
        self.message = message
        self.series: dict[str, object] = {}  # what a run's curves would be (none here)
        self.epochs: dict[str, object] = {}


@pytest.mark.parametrize(
    ("message", "recorded"),
    [("", [1]), ("attempt.py:3: NotImplementedError: estimate_mean: your code here", [])],
    ids=["wrong answer", "left unwritten"],
)
def test_a_failed_verify_records_again_and_points_at_the_next_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, message: str, recorded: list[int]
) -> None:
    """The run itself is stubbed: this is about what verify does with a verdict."""
    import aiprep.render

    monkeypatch.setattr(aiprep.render, "run_and_show", lambda *a, **k: _Result(False, message))
    attempt = tmp_path / "attempt.py"
    attempt.write_text("def estimate_mean(samples):\n    return 0\n")
    code, out = invoke("verify", "mean_estimate", str(attempt))  # a short id
    assert code == 1
    with Store() as store:
        assert [(r.question_id, r.rating, r.source) for r in store.reviews()] == [
            ("beta.mean_estimate", 1, "verify") for _ in recorded
        ]
    assert "next: `aiprep hint beta.mean_estimate` (hint 1 of 1)" in out
    assert "`aiprep show beta.mean_estimate --answer`" in out
    invoke("hint", "beta.mean_estimate")
    _, out = invoke("verify", "beta.mean_estimate", str(attempt))
    assert "every hint is shown" in out


def test_verify_records_a_pass_as_good(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import aiprep.render

    monkeypatch.setattr(aiprep.render, "run_and_show", lambda *a, **k: _Result(True))
    attempt = tmp_path / "attempt.py"
    attempt.write_text("")
    code, out = invoke("verify", "beta.mean_estimate", str(attempt))
    assert code == 0 and "recorded a good review" in out
    _, out = invoke("list", "--status", "verified")
    assert "beta.mean_estimate" in out and "alpha.clipping" not in out


# -- list status and today ---------------------------------------------------------------


def _seed_progress() -> None:
    with Store() as store:
        store.rate("alpha.clipping", 1, at=T0)  # failed
        store.rate("alpha.optimizer", 3, at=T0)  # due 10 minutes later
        store.rate("alpha.precision", 4, at=T0)  # graduated, due in days
        store.rate("beta.mean_estimate", 4, at=T0, source="verify")  # verified


def test_list_shows_your_status_and_filters_by_it() -> None:
    _seed_progress()
    later = T0 + timedelta(hours=1)
    code, out = invoke("list", now=later)
    assert code == 0
    rows = {line.split()[0]: line.split()[4] for line in out.splitlines()[1:-1]}
    assert rows == {
        "alpha.clipping": "failed",
        "alpha.optimizer": "due",
        "alpha.precision": "seen",
        "beta.mean_estimate": "verified",
        "strategy.moat": "new",
    }
    _, out = invoke("list", "--status", "new", "--status", "failed", now=later)
    assert "strategy.moat" in out and "alpha.clipping" in out and "alpha.optimizer" not in out
    _, out = invoke("list", "--json", "--status", "due", now=later)
    assert [(q["id"], q["status"]) for q in json.loads(out)] == [("alpha.optimizer", "due")]


def test_the_terminal_table_marks_status_in_the_language_asked() -> None:
    from rich.console import Console

    from aiprep.bank import load_bank
    from aiprep.render import question_table

    records = list(load_bank(QUIZ_BANK, use_cache=False).questions.values())
    statuses = {"alpha.clipping": "failed", "beta.mean_estimate": "verified"}
    for lang, words in (("en", ("failed ✗", "verified ✓", "status")), ("zh", ("未通过 ✗", "状态"))):
        console = Console(width=140, record=True, color_system=None)
        console.print(question_table(records, lang, console, statuses), crop=True)
        text = console.export_text()
        assert all(w in text for w in words), text
    # zh: a CJK character takes two cells; the status column still lines up
    from rich.cells import cell_len

    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("alpha.clipping"))
    head = lines[0]
    assert cell_len(head[: head.index("状态")]) == cell_len(row[: row.index("未通过")])


def test_list_reads_progress_without_fsrs() -> None:
    probe = (
        "import sys\nfrom aiprep.cli import cli\n"
        f"cli.main(['--bank', {str(QUIZ_BANK)!r}, 'list', '--status', 'new'], "
        "standalone_mode=False)\n"
        "print('FSRS' if 'fsrs' in sys.modules else 'NO-FSRS')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("NO-FSRS")


def test_a_bare_aiprep_says_what_is_due_and_what_to_run() -> None:
    code, out = invoke()
    assert code == 0 and "start with `aiprep quiz`" in out
    _seed_progress()
    code, out = invoke(now=T0 + timedelta(hours=1))
    assert code == 0
    assert "2 due now · 2 learning · 1 new of 5" in out  # clipping (again), optimizer (good)
    assert "due: alpha.clipping, alpha.optimizer" in out
    assert "streak: 1 day" in out and "next: aiprep quiz" in out
    _, out = invoke("today", "--json", now=T0 + timedelta(hours=1))
    data = json.loads(out)
    assert data["due"] == ["alpha.clipping", "alpha.optimizer"]
    assert data["streak_days"] == 1 and data["next"] == "aiprep quiz"
    _, out = invoke("today", "--lang", "zh", now=T0 + timedelta(hours=1))
    assert "现在到期 2" in out and "下一步：aiprep quiz" in out


def test_progress_reading_survives_a_missing_or_broken_database(tmp_path: Path) -> None:
    assert learner.read(tmp_path / "none.db").due == {}
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    assert learner.read(bad).due == {}


# -- short ids and completion ---------------------------------------------------------------


def test_short_ids_resolve_when_unique() -> None:
    ids = ["training.digits_mlp", "training.digits_cnn", "nlp.bert", "speech.bert_asr"]
    assert matching("training.digits_mlp", ids) == ["training.digits_mlp"]
    assert matching("digits_mlp", ids) == ["training.digits_mlp"]
    assert matching("bert", ids) == ["nlp.bert"]  # an exact slug beats a prefix
    assert matching("digits", ids) == ["training.digits_cnn", "training.digits_mlp"]
    assert matching("nope", ids) == []


def test_show_takes_a_short_id_and_an_ambiguous_one_is_one_line() -> None:
    code, out = invoke("show", "moat")
    assert code == 0 and "strategy.moat" in out
    code, out = invoke("show", "alpha.")
    assert code == 2
    assert out.strip().splitlines() == [
        "Error: 'alpha.' matches 3 questions: alpha.clipping, alpha.optimizer, "
        "alpha.precision; type more of the id"
    ]
    code, out = invoke("show", "zzz", "--lang", "zh")
    assert code == 2 and "没有题目 'zzz'" in out


def _complete(words: str) -> list[str]:
    env = dict(
        os.environ,
        _AIPREP_COMPLETE="bash_complete",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        AIPREP_BANK=str(QUIZ_BANK),
    )
    done = subprocess.run(
        [sys.executable, "-c", "from aiprep.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
    )
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("aiprep show alpha.c", ["alpha.clipping"]),
        ("aiprep verify mea", ["beta.mean_estimate"]),
        ("aiprep list --topic st", ["strategy"]),
        ("aiprep export --format mo", ["moodle-xml"]),
    ],
)
def test_shell_completion_offers_real_values(words: str, expected: list[str]) -> None:
    assert _complete(words) == expected


def test_shell_completion_offers_tags() -> None:
    from aiprep.bank import load_bank

    tags = sorted({tag for q in load_bank(QUIZ_BANK).questions.values() for tag in q["tags"]})
    assert tags, "the quiz fixture bank has tags"
    assert _complete(f"aiprep list --tag {tags[0][:2]}")[:1] == [tags[0]]
