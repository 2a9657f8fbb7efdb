"""The solution kit (``aiprep.kit``) stands alone: it never imports the app, and importing
it costs no TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aiprep.kit

KIT = Path(aiprep.kit.__file__).parent


def _aiprep_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {n for n in names if n == "aiprep" or n.startswith("aiprep.")}


def test_the_kit_never_imports_the_app() -> None:
    outside = {
        str(path.relative_to(KIT)): sorted(bad)
        for path in sorted(KIT.rglob("*.py"))
        if (bad := {n for n in _aiprep_imports(path) if not n.startswith("aiprep.kit")})
    }
    assert not outside, f"the kit imports the app: {outside}"


def test_every_public_name_of_the_kit_resolves() -> None:
    for name in aiprep.kit.__all__:
        assert getattr(aiprep.kit, name) is not None, name


def test_solutions_import_only_the_kit_from_aiprep() -> None:
    solutions = Path(__file__).parents[1] / "solutions"
    outside = {
        str(path.relative_to(solutions)): sorted(bad)
        for path in sorted(solutions.rglob("*.py"))
        if (bad := {n for n in _aiprep_imports(path) if not n.startswith("aiprep.kit")})
    }
    assert not outside, f"a solution imports the app: {outside}"


def test_importing_the_kit_loads_no_tensorflow() -> None:
    code = (
        "import sys; import aiprep.kit; from aiprep.kit import SolutionReport, events, "
        "synthetic; assert 'tensorflow' not in sys.modules, 'tensorflow'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_run_seed_runs_the_code_as_printed_and_records_what_it_raised() -> None:
    from aiprep.kit import SolutionReport, run_seed

    seed = "import numpy as np\nx = data * 2\nprint('noise')\ny = x.reshape(3)\n"
    run = run_seed(seed, {"data": [1, 2]}, replace=[("import numpy as np\n", "")])
    assert isinstance(run.error, AttributeError) and run.namespace["x"] == [1, 2, 1, 2]
    report = SolutionReport("t.seed")
    assert report.expect_raise(
        "original raises AttributeError", run.error, AttributeError, "reshape"
    )
    assert not report.expect_raise("original raises TypeError", run.error, TypeError, "reshape")
    assert [f.passed for f in report.seed_facts] == [True, False]
    assert report.metrics[0].value == "AttributeError: 'list' object has no attribute 'reshape'"
    assert not report.checks  # facts about the seed are never the candidate's verdict
    clean = run_seed("y = 1\n")
    assert clean.error is None and clean.namespace["y"] == 1


def test_run_seed_refuses_a_substitution_that_does_not_apply() -> None:
    import pytest

    from aiprep.kit import run_seed

    with pytest.raises(ValueError, match="is not in the seed's code"):
        run_seed("x = 1\n", replace=[("import tensorflow as tf\n", "")])


def test_timed_records_the_blocks_wall_time_and_check_close_holds_a_comparison() -> None:
    from aiprep.kit.compare import compare
    from aiprep.kit.report import SolutionReport

    report = SolutionReport("x")
    with report.timed("train wall time"):
        sum(range(1000))
    (metric,) = report.metrics
    assert metric.name == "train wall time" and metric.unit == "s" and metric.value >= 0
    try:
        with report.timed("never finished"):
            raise ValueError
    except ValueError:
        pass
    assert [m.name for m in report.metrics] == ["train wall time"]  # a raising block: none
    assert report.check_close("equal", compare([1.0, 2.0], [1.0, 2.0 + 1e-9], atol=1e-6))
    assert not report.check_close("far", compare([1.0], [2.0], atol=1e-6))
    assert [c.op for c in report.checks] == ["<=", "<="] and not report.passed
