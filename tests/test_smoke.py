"""`aiprep smoke`: every solution in its own forked process; one bad one hides no other."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from aiprep.cli import cli
from conftest import FIXTURES, RUNNER_BANK


def test_smoke_isolates_crashes_hangs_hard_exits_and_memory_hogs(tmp_path: Path) -> None:
    junit, data = tmp_path / "smoke.xml", tmp_path / "smoke.json"
    result = CliRunner().invoke(
        cli,
        [
            "--bank",
            str(RUNNER_BANK),
            "smoke",
            "--jobs",
            "3",
            "--timeout",
            "4",
            "--memory",
            "700",
            "--junit",
            str(junit),
            "--json",
            str(data),
        ],
    )
    assert result.exit_code == 1, result.output
    jobs = {j["id"]: j for j in json.loads(data.read_text())["solutions"]}
    assert set(jobs) == {
        "crash.exit_hard",
        "crash.hang",
        "crash.memory_hog",
        "crash.passes",
        "crash.raises",
        "crash.seed_changed",
        "crash.wrong_answer",
    }
    assert jobs["crash.passes"]["state"] == "passed"
    assert jobs["crash.passes"]["compute_s"] > 0.5  # it sleeps 0.6 s in check()
    expected = {
        "crash.exit_hard": "exited with code 3 before reporting",
        "crash.hang": "timed out after 4 s",
        "crash.memory_hog": "more than --memory 700",
        "crash.raises": "raises.py:9: ValueError: shapes (3, 4) and (5,) do not match",
        "crash.wrong_answer": "failed: 2 + 2 == 4",
        "crash.seed_changed": "failed: about the seed: the seed's add(2, 2) is off by one",
    }
    for qid, words in expected.items():
        assert jobs[qid]["state"] == "failed", qid
        assert words in jobs[qid]["message"], (qid, jobs[qid]["message"])
    assert "about to die" in jobs["crash.exit_hard"]["output_tail"]  # the output's tail
    assert "starting to hang" in jobs["crash.hang"]["output_tail"]

    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("7", "6")
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == set(expected)
    # the summary: slowest first, with the failures explained
    assert "1/7 passed" in result.output
    assert "crash.hang: timed out" in result.output


def test_smoke_filters_and_a_clean_run_exits_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--bank", str(RUNNER_BANK), "smoke", "--ids", "crash.passes", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "1/1 passed" in result.output
    result = CliRunner().invoke(cli, ["--bank", str(FIXTURES / "quiz"), "smoke", "--tag", "zzz"])
    assert result.exit_code == 2 and "no runnable questions" in result.output
    missing = tmp_path / "no" / "smoke.xml"
    result = CliRunner().invoke(cli, ["--bank", str(RUNNER_BANK), "smoke", "--junit", str(missing)])
    assert result.exit_code == 2 and "its folder does not exist" in result.output
