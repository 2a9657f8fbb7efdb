"""aiprep check-coverage: which checks a wrong answer was seen failing, on a small bank."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from aiprep.check_coverage import answer_functions, fixtures
from aiprep.cli import cli
from conftest import GOOD_BANK

SOLUTION = '''"""The mean of samples, with ANSWER and a guard for check-coverage."""

import math

from aiprep.kit.report import SolutionReport

ANSWER = ("estimate_mean",)


def estimate_mean(samples):
    """The arithmetic mean of ``samples``."""
    return sum(samples) / len(samples)


def make_data(seed=0):
    return [3.0 + ((i * 7919) % 200 - 100) / 100 for i in range(2000)]


def check(impl):
    report = SolutionReport("beta.mean_estimate")
    got = impl.estimate_mean(make_data())
    report.check("abs error vs true mean 3.0", abs(got - 3.0), "<=", 0.1, "the mean")
    report.check("estimate is finite", float(math.isfinite(got)), "==", 1, "guard: a float")
    return report
'''


def test_check_coverage_runs_fixtures_and_mutants(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    shutil.copytree(GOOD_BANK, bank)
    (bank / "solutions/beta/mean_estimate.py").write_text(SOLUTION)
    wrong = bank / "tests/fixtures/wrong_answers"
    (wrong / "beta").mkdir(parents=True)
    (wrong / "beta" / "mean_estimate.py").write_text(
        'CAUGHT_BY = "abs error vs true mean 3.0"\n\n\n'
        "def estimate_mean(samples):\n    return sum(samples)  # forgot to divide\n"
    )
    (wrong / "beta" / "mean_estimate__first.py").write_text(
        'CAUGHT_BY = "none"\n\n\ndef estimate_mean(samples):\n    return samples[0] * 0 + 3.0\n'
    )
    assert [name for name, _ in fixtures(bank)["beta.mean_estimate"]] == [
        "fixture",
        "fixture:first",
    ]
    assert answer_functions(bank / "solutions/beta/mean_estimate.py") == [
        ("estimate_mean", ["zeros", "negated", "identity"])  # unannotated: all may apply
    ]
    out = tmp_path / "coverage.json"
    result = CliRunner().invoke(
        cli,
        ["--bank", str(bank), "check-coverage", "--jobs", "2", "--json", str(out), "--min", "50"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["totals"] == {
        "solutions": 1,
        "checks": 2,
        "covered": 1,
        "guards": 1,
        "uncovered": 0,
        "coverage": 0.5,
    }
    [solution] = data["solutions"]
    assert solution["reference_ok"]
    error, finite = solution["checks"]
    assert sorted(error["failed_by"]) == [
        "fixture",
        "mutant:estimate_mean:negated",
        "mutant:estimate_mean:zeros",
    ]
    assert finite["guard"] and not finite["failed_by"]
    assert "fixture:first" in solution["wrong_answers_run"]  # ran, failed nothing
    assert "mutant:estimate_mean:identity" in solution["wrong_answers_crashed"]  # a list - 3.0
    assert "check coverage: 1/2 checks (50%)" in result.output
    low = CliRunner().invoke(cli, ["--bank", str(bank), "check-coverage", "--min", "60"])
    assert low.exit_code == 1


def test_mutants_follow_the_annotations(tmp_path: Path) -> None:
    """A mutant that cannot apply is not generated: it would cost a run and cover nothing."""
    source = tmp_path / "s.py"
    source.write_text(
        'ANSWER = ("build", "prune", "train", "scores", "fit")\n'
        "def build(n: int) -> keras.Model: ...\n"
        "def prune(model: keras.Model, sparsity: float) -> keras.Model: ...\n"
        "def train(model: keras.Model, x: np.ndarray) -> keras.callbacks.History: ...\n"
        "def scores(x: np.ndarray) -> np.ndarray: ...\n"
        "def fit(model: keras.Model) -> None: ...\n"
    )
    assert dict(answer_functions(source)) == {
        "build": [],
        "prune": ["identity"],
        "train": ["untrained"],
        "scores": ["zeros", "negated", "identity"],  # same type in and out: "skipped"
        "fit": ["identity"],
    }
