"""Smoke-run many reference solutions in parallel, each isolated in its own process.

TensorFlow's import (about 3 s here) is paid once: a ``multiprocessing`` fork server
imports it (and tf_keras, numpy), and every solution runs in a fresh process forked from
that server. Each one still gets a process of its own, in its own session: a solution
that crashes, hangs, exits hard or eats memory is killed (its whole process group) and
reported with the tail of its output, and the others run on.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import selectors
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from aiprep.report import SolutionReport
from aiprep.runner import QUIET_ENV, last_lines

State = Literal["queued", "running", "passed", "failed"]
PRELOAD = ["tensorflow", "tf_keras", "numpy", "aiprep._child", "aiprep.report"]


@dataclass
class Job:
    """One solution's run: its state while it runs, its result once it ended."""

    id: str
    module: str
    attempt: Path | None = None  # run the checks on this file instead of the reference
    state: State = "queued"
    phase: str = ""  # the last progress phase it reported
    started: float = 0.0
    wall_s: float = 0.0
    compute_s: float | None = None
    cpu_s: float | None = None
    report: SolutionReport | None = None
    message: str = ""  # why it failed, one line
    output_tail: str = ""
    peak_rss_mb: float = 0.0

    @property
    def passed(self) -> bool:
        return self.state == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "solution": self.module,
            "state": self.state,
            "wall_s": round(self.wall_s, 3),
            "compute_s": None if self.compute_s is None else round(self.compute_s, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "message": self.message,
            "output_tail": self.output_tail if not self.passed else "",
            "report": self.report.to_dict() if self.report else None,
        }


def _worker(root: str, module: str, attempt: str | None, events: Connection, log_path: str) -> None:
    """In the forked process: own session, output to the log, then the usual child run."""
    os.setsid()  # its own process group: a kill takes whatever it started too
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from aiprep._child import run_check

    run_check(Path(root), module, os.dup(events.fileno()), Path(attempt) if attempt else None)


@dataclass
class _Running:
    job: Job
    process: Any  # multiprocessing.Process of the forkserver context
    reader: Connection
    log: Path
    buffer: bytes = b""
    got_report: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)


def smoke(
    root: Path,
    jobs: Sequence[Job],
    *,
    workers: int,
    timeout: float,
    memory_mb: float,
    on_change: Callable[[Job], None] | None = None,
    preload: Sequence[str] = PRELOAD,
) -> list[Job]:
    """Run every job, ``workers`` at a time; returns them with their results.

    A job fails when a check fails, when it raises, exits without a report, runs past
    ``timeout`` seconds or holds more than ``memory_mb`` MiB resident. Ctrl-C kills every
    running job and re-raises.
    """
    os.environ.update(QUIET_ENV)  # read by TensorFlow when the fork server imports it
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    _start_server(context)
    queue = list(jobs)
    running: dict[int, _Running] = {}
    notify = on_change or (lambda job: None)
    with (
        tempfile.TemporaryDirectory(prefix="aiprep-smoke-") as tmp,
        selectors.DefaultSelector() as sel,
    ):
        try:
            while queue or running:
                while queue and len(running) < workers:
                    job = queue.pop(0)
                    run = _start(context, root, job, Path(tmp))
                    running[run.reader.fileno()] = run
                    sel.register(run.reader.fileno(), selectors.EVENT_READ)
                    notify(job)
                for key, _ in sel.select(timeout=0.25):
                    run = running[key.fd]
                    if _read(run, notify):
                        continue  # more to come
                    sel.unregister(key.fd)
                    del running[key.fd]
                    _finish(run, "")
                    notify(run.job)
                now = time.monotonic()
                for fd, run in list(running.items()):
                    run.job.wall_s = now - run.job.started
                    why = ""
                    if not run.process.is_alive():  # ended: take what it sent, then finish
                        while _read(run, notify):
                            pass
                        sel.unregister(fd)
                        del running[fd]
                        _finish(run, "")
                        notify(run.job)
                        continue
                    if run.job.wall_s > timeout:
                        why = f"timed out after {timeout:g} s (raise --timeout)"
                    else:
                        rss = _rss_mb(run.process.pid)
                        run.job.peak_rss_mb = max(run.job.peak_rss_mb, rss)
                        if rss > memory_mb:
                            why = f"used {rss:.0f} MiB, more than --memory {memory_mb:g}"
                    if why:
                        _kill(run)
                        sel.unregister(fd)
                        del running[fd]
                        _finish(run, why)
                        notify(run.job)
        except BaseException:
            for run in running.values():
                _kill(run)
            raise
    return list(jobs)


def _noop() -> None:
    """A first job for the fork server: it returns once the preloading is done."""


def _start_server(context: Any) -> None:
    """Start the fork server and wait until it has imported TensorFlow.

    Its stderr goes to /dev/null: TensorFlow's import-time chatter (absl's pre-init
    warnings ignore TF_CPP_MIN_LOG_LEVEL) would land on the terminal. Workers send
    their own output to their logs. Waiting here keeps the import out of the first
    solution's time (and its timeout).
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        warmup = context.Process(target=_noop, name="warm-up")
        warmup.start()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    warmup.join()


def _start(context: Any, root: Path, job: Job, tmp: Path) -> _Running:
    reader, writer = context.Pipe(duplex=False)
    fd, name = tempfile.mkstemp(dir=tmp, suffix=".log")  # ids may repeat (several attempts)
    os.close(fd)
    log = Path(name)
    attempt = str(job.attempt) if job.attempt else None
    process = context.Process(
        target=_worker,
        args=(str(root), job.module, attempt, writer, str(log)),
        name=job.id,
        daemon=False,
    )
    process.start()
    job.state, job.started = "running", time.monotonic()
    writer.close()
    return _Running(job, process, reader, log)


def _read(run: _Running, notify: Callable[[Job], None]) -> bool:
    """Take in what the worker sent; False once it closed its end."""
    try:
        chunk = os.read(run.reader.fileno(), 65536)
    except OSError:
        chunk = b""
    if not chunk:
        return False
    run.buffer += chunk
    *lines, run.buffer = run.buffer.split(b"\n")
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "report":
            run.got_report = True
            run.job.report = SolutionReport.from_dict(event["report"])
            run.job.compute_s = event.get("compute_s")
            run.job.cpu_s = event.get("cpu_s")
        elif kind == "error":
            run.job.message = str(event.get("message", ""))
        elif kind in ("start", "advance") and run.job.phase != event.get("phase"):
            run.job.phase = str(event.get("phase", ""))
            notify(run.job)
    return True


def _finish(run: _Running, why: str) -> None:
    job = run.job
    run.process.join(timeout=10)
    if run.process.exitcode is None:
        _kill(run)
    run.reader.close()
    job.wall_s = time.monotonic() - job.started
    code = run.process.exitcode
    if why:
        job.message = why
    elif not run.got_report and not job.message:
        if code is not None and code < 0:
            job.message = f"killed by {signal.Signals(-code).name} before reporting"
        else:
            job.message = f"exited with code {code} before reporting"
    elif job.report is not None and not (job.report.passed and job.report.seed_facts_hold):
        failed = [c.name for c in job.report.checks if not c.passed]
        failed += [f"about the seed: {c.name}" for c in job.report.seed_facts if not c.passed]
        job.message = "failed: " + "; ".join(failed) if failed else "no checks"
    ok = not why and job.report is not None and job.report.passed and job.report.seed_facts_hold
    job.state = "passed" if ok else "failed"
    if job.state == "failed":
        try:
            text = run.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        job.output_tail = last_lines(text)


def _kill(run: _Running) -> None:
    pid = run.process.pid
    try:
        os.killpg(pid, signal.SIGKILL)  # the worker leads its own group (setsid)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        run.process.kill()
    except (OSError, ValueError):
        pass
    run.process.join(timeout=10)


def _rss_mb(pid: int | None) -> float:
    """The process's proportional resident memory (PSS), in MiB.

    PSS, not RSS: a worker shares TensorFlow's pages with the fork server (and with the
    other workers), and RSS would count those in full for each of them.
    """
    if pid is None:
        return 0.0
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path, encoding="ascii") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return 0.0


# -----------------------------------------------------------------------------
# Reports


def junit_xml(jobs: Sequence[Job], wall_s: float) -> bytes:
    """JUnit XML (one testcase per solution) that CI systems show."""
    import xml.etree.ElementTree as ET

    failures = sum(not j.passed for j in jobs)
    suite = ET.Element(
        "testsuite",
        name="aiprep smoke",
        tests=str(len(jobs)),
        failures=str(failures),
        errors="0",
        time=f"{wall_s:.3f}",
    )
    for job in jobs:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"solutions.{job.module}",
            name=job.id,
            time=f"{job.wall_s:.3f}",
        )
        if not job.passed:
            failure = ET.SubElement(case, "failure", message=job.message or job.state)
            failure.text = job.output_tail
        if job.report is not None:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                [
                    f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.value} {c.rule}"
                    for c in job.report.checks
                ]
                + [
                    f"{'HOLDS' if c.passed else 'BROKEN'} about the seed: {c.name}: "
                    f"{c.value} {c.rule}"
                    for c in job.report.seed_facts
                ]
            )
    ET.indent(suite)
    data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
