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


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json"],
        ["show", "alpha.pick_optimizer", "--answer"],
        ["validate"],
        ["stats", "--json"],
        ["progress", "export"],
        ["practice", "beta.mean_estimate", "-o", "{tmp}/starter.py"],
        ["export", "--format", "html", "-o", "{tmp}/set.html", "--with-code"],
    ],
    ids=" ".join,
)
def test_commands_that_run_no_solution_do_not_load_tensorflow(
    args: list[str], tmp_path: Path
) -> None:
    quiz_bank = ("stats", "progress", "practice", "export")
    bank = FIXTURES / "quiz" if args[0] in quiz_bank else GOOD_BANK
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = (
        "from aiprep.cli import cli\n"
        f"cli.main(['--bank', {str(bank)!r}, *{args!r}], standalone_mode=False)"
    )
    loaded = _loaded(code)
    assert "tensorflow" not in loaded
    assert "numpy" not in loaded


def test_python_dash_m_aiprep() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aiprep", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage: aiprep" in out.stdout
