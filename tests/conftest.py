"""Shared fixtures: user state in a temp dir, and paths to the fixture banks."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from aiprep.runner import thread_share

FIXTURES = Path(__file__).parent / "fixtures"

# Under `pytest -n N` each worker runs solutions alongside the others: give each its share of
# the cores, as `aiprep smoke --jobs N` does (set before any run starts the fork server).
for name, value in thread_share(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))).items():
    os.environ.setdefault(name, value)


@functools.cache
def smoke_report() -> dict[str, Any] | None:
    """The `aiprep smoke --json` report named by AIPREP_SMOKE_REPORT, when it ran this very
    code (CI runs smoke first, so each reference trains once per CI run); else None."""
    path = os.environ.get("AIPREP_SMOKE_REPORT")
    if not path:
        return None
    from aiprep.paths import default_bank_root
    from aiprep.smoke import bank_digest, read_report

    data = read_report(Path(path))
    return data if data.get("bank_digest") == bank_digest(default_bank_root()) else None


GOOD_BANK = FIXTURES / "good"
RUNNER_BANK = FIXTURES / "runner"
BAD_FILES = FIXTURES / "bad"


@pytest.fixture(scope="session", params=["fresh", "server"])
def runner_bank(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner fixture bank as each kind of run meets it. ``fresh``: as it is (plain
    Python: each run starts in a fresh interpreter). ``server``: a copy whose solutions also
    import TensorFlow (each run is forked from the TensorFlow-preloaded server)."""
    if request.param == "fresh":
        return RUNNER_BANK
    root = tmp_path_factory.mktemp("runner-on-server") / "bank"
    shutil.copytree(RUNNER_BANK, root, ignore=shutil.ignore_patterns("__pycache__"))
    for solution in (root / "solutions" / "crash").glob("[!_]*.py"):
        with solution.open("a", encoding="utf-8") as f:  # at the end: line numbers stay
            f.write("\nimport tensorflow  # noqa: E402,F401  (this copy runs on the server)\n")
    return root


@pytest.fixture(autouse=True)
def user_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point all user state (progress, caches) at a fresh temp dir; never the real home."""
    home = tmp_path_factory.mktemp("aiprep-home")
    monkeypatch.setenv("AIPREP_HOME", str(home))
    monkeypatch.delenv("AIPREP_BANK", raising=False)
    return home


@pytest.fixture
def good_bank(tmp_path: Path) -> Path:
    """A writable copy of the good fixture bank."""
    root = tmp_path / "bank"
    shutil.copytree(GOOD_BANK, root)
    return root
