"""The child-process runner as a library: events, attempts, and failures kept in the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aiprep.kit.report import SolutionReport
from aiprep.runner import Job, run_jobs, run_solution, thread_share
from conftest import GOOD_BANK, RUNNER_BANK


def test_progress_events_reach_the_parent() -> None:
    events: list[dict[str, Any]] = []
    result = run_solution(GOOD_BANK, "beta.mean_estimate", on_event=events.append)
    assert result.passed
    assert result.tensorflow is False and result.onednn is None  # plain Python: a fresh run
    assert [e["event"] for e in events] == ["start", "advance"]
    assert events[0] == {"event": "start", "phase": "estimate", "total": 2, "unit": "step"}


def test_attempt_is_checked_by_the_solution_checks(tmp_path: Path) -> None:
    right = tmp_path / "right.py"
    right.write_text("def add(a, b):\n    return a + b\n")
    assert run_solution(RUNNER_BANK, "crash.wrong_answer", attempt=right).passed
    assert not run_solution(RUNNER_BANK, "crash.wrong_answer").passed


def test_a_run_stops_at_the_first_failure_of_a_stop_at_check() -> None:
    # crash.wrong_answer's add subtracts: "2 + 2 == 4" fails, then "0 + 0 == 0" passes.
    stopped = run_solution(RUNNER_BANK, "crash.wrong_answer", stop_at=frozenset({"2 + 2 == 4"}))
    assert stopped.status == "stopped" and not stopped.passed
    assert stopped.report is not None
    assert [(c.name, c.passed) for c in stopped.report.checks] == [("2 + 2 == 4", False)]
    assert stopped.message == "stopped: 2 + 2 == 4 failed"
    # A stop_at check that passes, or a failure of another check, does not end the run.
    whole = run_solution(RUNNER_BANK, "crash.wrong_answer", stop_at=frozenset({"0 + 0 == 0"}))
    assert whole.status == "ok" and whole.report is not None
    assert [c.name for c in whole.report.checks] == ["2 + 2 == 4", "0 + 0 == 0"]


def test_a_runs_temp_files_are_removed_even_when_it_is_stopped(tmp_path: Path) -> None:
    """A run's TMPDIR is its own folder, removed by the caller: a run stopped at a failed
    check (killed before its own cleanup) leaves nothing behind."""
    where = tmp_path / "where.txt"
    attempt = tmp_path / "attempt.py"
    attempt.write_text(
        "import tempfile\n\n"
        "def add(a, b):\n"
        "    folder = tempfile.mkdtemp()\n"
        "    open(folder + '/big.bin', 'wb').write(b'0' * 1000)\n"
        # Appended: the check's next call may still start before the kill lands, and a
        # second 'w' would empty the file the first call wrote.
        f"    open({str(where)!r}, 'a').write(folder + '\\n')\n"
        "    return a - b\n"
    )
    result = run_solution(
        RUNNER_BANK, "crash.wrong_answer", attempt=attempt, stop_at=frozenset({"2 + 2 == 4"})
    )
    assert result.status == "stopped"
    folder = Path(where.read_text().splitlines()[0])
    assert folder.name and not folder.exists()
    assert not folder.parent.exists()  # the run's TMPDIR itself


def test_attempt_import_error_points_at_the_attempt(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy\n\ndef add(a, b):\n    return a +\n")
    result = run_solution(RUNNER_BANK, "crash.wrong_answer", attempt=broken)
    assert result.status == "crash"
    assert result.message == f"{broken}:4: SyntaxError: invalid syntax"


def test_report_checks_compute_their_own_verdict() -> None:
    report = SolutionReport("x")
    assert report.check("acc", 0.95, ">=", 0.9)
    assert not report.check("nan never passes", float("nan"), "<=", 1.0)
    assert not report.passed
    assert SolutionReport.from_dict(report.to_dict()) == report
    assert not SolutionReport("empty").passed  # no checks: nothing was proven


def test_ctrl_c_stops_the_child_too(runner_bank: Path) -> None:
    aiprep = Path(sys.executable).with_name("aiprep")
    proc = subprocess.Popen(
        [str(aiprep), "--bank", str(runner_bank), "run", "crash.hang"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child = None
    for _ in range(1200):  # wait for the solution's run: a descendant leading its own session
        child = _run_below(proc.pid)
        if child is not None:
            break
        time.sleep(0.05)
    assert child is not None
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130  # 128 + SIGINT; 1 would mean a check failed
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists()


def _run_below(pid: int) -> int | None:
    """A process below ``pid`` that leads its own session: a run (forked by the server, or
    spawned)."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,sid="], capture_output=True, text=True)
    rows = [tuple(int(x) for x in line.split()) for line in table.stdout.splitlines()]
    below, grew = {pid}, True
    while grew:
        more = {p for p, parent, _ in rows if parent in below} - below
        below |= more
        grew = bool(more)
    return next((p for p, _, sid in rows if p in below - {pid} and p == sid), None)


def test_seed_facts_are_shown_but_not_the_verdict() -> None:
    report = SolutionReport("x")
    assert not report.seed_fact("the seed raises", 0, "==", 1)
    assert report.check("the answer works", 1, "==", 1)
    assert report.passed and not report.seed_facts_hold
    assert SolutionReport.from_dict(report.to_dict()) == report


def test_a_broken_seed_fact_fails_the_reference_run_not_a_candidate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from aiprep.cli import cli

    run = CliRunner().invoke(cli, ["--bank", str(RUNNER_BANK), "run", "crash.seed_changed"])
    assert run.exit_code == 1, run.output
    assert "reference facts: seed, controls (not in the verdict)" in run.output
    assert "1/1 checks passed" in run.output and "no longer holds" in run.output
    attempt = tmp_path / "attempt.py"
    attempt.write_text('def add(a, b):\n    """a + b."""\n    return a + b\n')
    verify = CliRunner().invoke(
        cli, ["--bank", str(RUNNER_BANK), "verify", "crash.seed_changed", str(attempt)]
    )
    assert verify.exit_code == 0, verify.output


def test_concurrent_runs_share_the_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """N runs at a time: each run's TensorFlow gets cores // N threads (its pools would
    otherwise each size to every core); a single run, or a value the user set, is left alone."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert thread_share(1) == {}
    assert thread_share(2)["TF_NUM_INTRAOP_THREADS"] == "4"
    assert thread_share(16)["OMP_NUM_THREADS"] == "1"
    seen = tmp_path / "threads.txt"
    attempt = tmp_path / "attempt.py"
    attempt.write_text(
        "import os\n\n"
        "def add(a, b):\n"
        f"    open({str(seen)!r}, 'w').write(os.environ.get('TF_NUM_INTEROP_THREADS', '-'))\n"
        "    return a + b\n"
    )
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    jobs = [Job("crash.wrong_answer", "crash.wrong_answer", attempt=attempt)]
    run_jobs(RUNNER_BANK, jobs, workers=2, timeout=60)
    assert seen.read_text() == "4"  # 8 cores (as the parent saw them) / 2 workers
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "3")
    run_jobs(
        RUNNER_BANK,
        [Job("crash.wrong_answer", "crash.wrong_answer", attempt=attempt)],
        workers=2,
        timeout=60,
    )
    assert seen.read_text() == "3"


def test_estimates_run_without_tensorflow() -> None:
    """Every estimate in the bank is plain Python: its run starts in a fresh interpreter and
    never loads TensorFlow; a solution that imports it runs on the TensorFlow server."""
    from aiprep.bank import load_bank
    from aiprep.kit.imports import ImportGraph
    from aiprep.paths import default_bank_root
    from aiprep.runner import needs_tensorflow

    root = default_bank_root()
    questions = load_bank(root).questions.values()
    estimates = [str(q["solution"]) for q in questions if q["kind"] == "estimate"]
    assert len(estimates) >= 7
    graph = ImportGraph(root / "solutions")
    assert needs_tensorflow(graph, Job("training.lora", "training.lora"))
    jobs = [Job(m, m) for m in estimates]
    assert not any(needs_tensorflow(graph, job) for job in jobs)
    run_jobs(root, jobs, workers=2, timeout=60)
    assert [(j.id, j.state, j.tensorflow) for j in jobs] == [(j.id, "passed", False) for j in jobs]


def test_background_warm_up_only_for_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quiz warms the fork server in the background only when a question it may run
    loads TensorFlow: a session of estimates and numpy-only answers starts none."""
    from aiprep import runner
    from aiprep.paths import default_bank_root

    calls: list[bool] = []
    monkeypatch.setattr(runner, "warm_up", lambda verbose=False: calls.append(verbose))
    root = default_bank_root()
    plain = ["strategy.training_run_cost", "compression.int4_weight_quantization"]
    runner.warm_up_in_background(root=root, modules=plain).join(timeout=30)
    assert calls == []
    runner.warm_up_in_background(root=root, modules=[*plain, "training.lora"]).join(timeout=30)
    assert calls == [False]
