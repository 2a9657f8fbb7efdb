"""Commands that do not run a solution never import TensorFlow (its import alone is ~3 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, GOOD_BANK


def _loaded(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_cli_does_not_load_tensorflow() -> None:
    loaded = _loaded("import aiprep.cli")
    assert "tensorflow" not in loaded
    assert "tf_keras" not in loaded
    assert "pydantic" not in loaded  # only validation needs it
    # `list` and `show` build no rich Table: its import (fractions, decimal) stays out of
    # their start-up, which make bench holds to 1.3x / 1.5x of a bare rich import.
    assert "rich.table" not in loaded


@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (["list"], "alpha.pick_optimizer"),
        (["list", "--json"], '"id": "alpha.gradient_clipping"'),
        (["show", "alpha.pick_optimizer", "--answer"], "✓ A. AdamW"),
        (["validate"], "ok: no problems found"),
        (["stats", "--json"], '"topics"'),
        (["progress", "export"], '"format"'),
        (["practice", "beta.mean_estimate", "-o", "{tmp}/starter.py"], "wrote"),
        (["export", "--format", "html", "-o", "{tmp}/set.html", "--with-code"], "wrote"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_commands_that_run_no_solution_do_not_load_tensorflow(
    args: list[str], shows: str, tmp_path: Path
) -> None:
    """Each command really ran to success (its exit code and output), without TensorFlow."""
    quiz_bank = ("stats", "progress", "practice", "export")
    bank = FIXTURES / "quiz" if args[0] in quiz_bank else GOOD_BANK
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    probe = (
        "import sys\n"
        "from aiprep.cli import cli\n"
        f"code = cli.main(['--bank', {str(bank)!r}, *{args!r}], standalone_mode=False)\n"
        "sys.stderr.write(f'\\nEXIT={code}\\nMODULES=' + ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    tail = done.stderr.rsplit("\nEXIT=", 1)[1]
    code, modules = tail.split("\nMODULES=")
    assert code in ("None", "0"), done.stdout + done.stderr
    assert shows in done.stdout + done.stderr
    loaded = set(modules.split())
    assert "aiprep.cli" in loaded
    assert "tensorflow" not in loaded
    if args[0] in ("list", "show"):
        assert "rich.table" not in loaded
    assert "numpy" not in loaded


def test_python_dash_m_aiprep() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aiprep", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage: aiprep" in out.stdout
