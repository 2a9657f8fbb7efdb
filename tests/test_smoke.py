"""`aiprep smoke`: every solution in its own forked process; one bad one hides no other."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from aiprep.cli import cli
from conftest import FIXTURES, RUNNER_BANK


def test_smoke_isolates_crashes_hangs_hard_exits_and_memory_hogs(
    tmp_path: Path, runner_bank: Path
) -> None:
    junit, data = tmp_path / "smoke.xml", tmp_path / "smoke.json"
    result = CliRunner().invoke(
        cli,
        [
            "--bank",
            str(runner_bank),
            "smoke",
            "--jobs",
            "3",
            "--timeout",
            "8",
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
        "crash.hang": "timed out after 8 s",
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
    assert result.exit_code == 2 and "unknown tag zzz; tags: " in result.output
    missing = tmp_path / "no" / "smoke.xml"
    result = CliRunner().invoke(cli, ["--bank", str(RUNNER_BANK), "smoke", "--junit", str(missing)])
    assert result.exit_code == 2 and "its folder does not exist" in result.output


# -----------------------------------------------------------------------------
# Shards, merging, timings, --changed

FAST = "crash.passes,crash.wrong_answer,crash.raises,crash.seed_changed,crash.exit_hard"


def _smoke(*args: str, bank: Path = RUNNER_BANK) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(bank), "smoke", "--jobs", "2", *args])
    return result.exit_code, result.output


def _states(path: Path) -> dict[str, tuple[str, str]]:
    data = json.loads(path.read_text())
    return {s["id"]: (s["state"], s["message"]) for s in data["solutions"]}


def test_shards_are_disjoint_cover_the_bank_and_merge_to_the_unsharded_run(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "whole.json"
    assert _smoke("--ids", FAST, "--json", str(whole))[0] == 1
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"shard{k}.json"
        _smoke("--ids", FAST, "--shard", f"{k}/3", "--json", str(part))
        parts.append(part)
    ids = [set(_states(p)) for p in parts]
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    merged, junit = tmp_path / "merged.json", tmp_path / "merged.xml"
    result = CliRunner().invoke(
        cli, ["smoke-merge", *map(str, parts), "--json", str(merged), "--junit", str(junit)]
    )
    assert result.exit_code == 1  # four of them fail, in whichever shard
    assert _states(merged) == _states(whole)
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("5", "4")
    again = CliRunner().invoke(cli, ["smoke-merge", str(parts[0]), str(parts[0])])
    assert again.exit_code == 2 and "shards overlap" in again.output


def test_smoke_merge_refuses_what_is_not_a_smoke_report(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"format": "aiprep-questions"}')
    result = CliRunner().invoke(cli, ["smoke-merge", str(other)])
    assert result.exit_code == 2
    assert "not an `aiprep smoke --json` report" in result.output


def test_a_bad_shard_is_one_line() -> None:
    code, out = _smoke("--shard", "3/2")
    assert code == 2 and "write K/N with 1 <= K <= N" in out


def test_shards_balance_the_recorded_times() -> None:
    """On the shipped bank's recorded compute times, 4 shards: the largest within 20 % of
    the mean, every solution in exactly one."""
    from aiprep.bank import load_bank
    from aiprep.paths import default_bank_root
    from aiprep.smoke import read_timings, shards

    root = default_bank_root()
    modules = sorted(
        q["solution"] for q in load_bank(root, use_cache=False).questions.values() if q["solution"]
    )
    timings = read_timings(root)
    assert set(modules) <= set(timings), "run `aiprep smoke --record-timings`"
    parts = shards(modules, timings, 4)
    assert sorted(m for p in parts for m in p) == modules
    loads = [sum(timings[m] for m in p) for p in parts]
    assert max(loads) <= 1.2 * (sum(loads) / len(loads)), loads
    assert shards(modules, timings, 4) == parts  # deterministic


def test_a_solution_without_a_recorded_time_counts_as_the_median() -> None:
    from aiprep.smoke import shards

    timings = {"a": 10.0, "b": 1.0, "c": 1.0}
    assert shards(["a", "b", "c", "new"], timings, 2) == [["a"], ["b", "c", "new"]]


def test_changed_runs_only_what_a_change_can_reach(tmp_path: Path) -> None:
    import shutil
    import subprocess

    bank = tmp_path / "bank"
    shutil.copytree(RUNNER_BANK, bank)
    helper = bank / "solutions" / "crash" / "_shared.py"
    helper.write_text("SHARED = 1\n")
    passes = bank / "solutions" / "crash" / "passes.py"
    passes.write_text(passes.read_text() + "\nfrom solutions.crash._shared import SHARED\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=bank, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "bank")
    report = tmp_path / "changed.json"
    code, out = _smoke("--changed", "--json", str(report), bank=bank)
    assert code == 0 and "nothing to run" in out and not report.exists()
    helper.write_text("SHARED = 2\n")  # imported by passes only
    code, out = _smoke("--changed", "HEAD", "--json", str(report), bank=bank)
    assert code == 0, out
    assert set(_states(report)) == {"crash.passes"}
    code, out = _smoke("--changed", "no-such-ref", bank=bank)
    assert code == 2 and out.startswith("Error: --changed:")


def test_an_aiprep_module_change_reaches_every_solution_importing_it() -> None:
    import aiprep.kit.report
    from aiprep.smoke import affected

    report_py = Path(aiprep.kit.report.__file__).resolve()
    modules = ["crash.passes", "crash.hang", "crash.wrong_answer"]
    # passes and wrong_answer import aiprep.kit.report; hang imports nothing of ours
    assert affected(RUNNER_BANK, modules, {report_py}) == ["crash.passes", "crash.wrong_answer"]
    assert affected(RUNNER_BANK, modules, set()) == []


def test_the_report_says_whether_the_runs_used_onednn_and_merge_keeps_one_answer() -> None:
    from aiprep.runner import Job
    from aiprep.smoke import merge, report

    def run(slug: str, onednn: bool | None) -> Job:
        return Job(f"t.{slug}", f"t.{slug}", state="passed", onednn=onednn)

    on = report([run("a", True), run("b", None)], 1.0, 1, "d")
    off = report([run("c", False)], 1.0, 1, "d")
    assert (on["onednn"], off["onednn"]) == (True, False)
    assert report([run("a", True), run("c", False)], 1.0, 1, "d")["onednn"] is None  # mixed
    assert merge([on, report([], 1.0, 1, "d")])["onednn"] is True  # an empty shard says nothing
    assert merge([on, off])["onednn"] is None  # the tests then run both settings
    dated = [{**on, "measured_at": "2026-11-30"}, {**off, "measured_at": "2026-11-29"}]
    assert merge(dated)["measured_at"] == "2026-11-29"  # the evidence is as old as its oldest
