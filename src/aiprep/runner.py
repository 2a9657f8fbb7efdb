"""Run solutions' checks, each in its own process forked from one TensorFlow-preloaded server.

The one way solutions run, for ``aiprep run``, ``verify`` (``--watch`` too), the quiz, ``smoke``,
``check-coverage`` and the tests. TensorFlow's import (about 3 s here) is paid once per
process that runs solutions: a ``multiprocessing`` fork server imports it (and tf_keras,
numpy), and every run is a fresh process forked from it, in its own session. A run that
crashes, hangs, exits hard or eats memory is killed (its whole process group) and
reported with the tail of its output; nothing it does reaches the caller or the next run.

A run whose solution (and attempt) cannot load TensorFlow (the estimates: plain Python) is
not forked from that server but started in a fresh interpreter, which takes a fraction of a
second; the server is then not started at all. Which runs need it is read from the source
(``kit.imports.ImportGraph.may_load``).

A run reports progress and its result as JSON lines over a pipe (``aiprep._child``); its
stdout and stderr go to a log whose tail is kept when it fails (or, with ``verbose``,
is copied to the caller's stderr as it is written).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import selectors
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from aiprep.kit.imports import ImportGraph
from aiprep.kit.report import Check, SolutionReport

Event = dict[str, Any]
Status = Literal["ok", "stopped", "timeout", "crash"]
State = Literal["queued", "running", "passed", "failed"]

# Imported once by the fork server; the first one silences the server's own stderr
# (absl's pre-init warnings ignore TF_CPP_MIN_LOG_LEVEL). Runs write to their logs.
PRELOAD = ["aiprep._forkserver_stdio", "tensorflow", "tf_keras", "numpy", "aiprep._child"]
DEFAULT_MEMORY_MB = 8192
# A solution or attempt that imports one of these at module level runs on the server.
TENSORFLOW_PACKAGES = frozenset(
    {"tensorflow", "tf_keras", "keras", "transformers", "tensorflow_model_optimization"}
)

# What a run needs to keep TensorFlow's logs quiet (unless verbose).
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ logging: errors only
    "PYTHONWARNINGS": "ignore",
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",
}


@dataclass
class Job:
    """One run of a solution's checks (on the reference, or on ``attempt``) and its result."""

    id: str
    module: str
    attempt: Path | None = None  # a candidate's file; None: the reference itself
    # End the run as soon as one of these checks fails (a wrong answer's test needs only
    # the check that must catch it); the report then holds the checks made so far.
    stop_at: frozenset[str] = frozenset()
    state: State = "queued"
    # Once it ended: ok (a report came back), stopped (at a failed ``stop_at`` check),
    # timeout, crash.
    status: Status | None = None
    phase: str = ""  # the last progress phase it reported
    started: float = 0.0
    wall_s: float = 0.0
    compute_s: float | None = None  # the wall time of check() itself
    cpu_s: float | None = None  # the run's CPU time (threads and waited-for children included)
    onednn: bool | None = None  # TensorFlow ran its oneDNN kernels (None: unknown)
    tensorflow: bool | None = None  # TensorFlow was loaded in the run when it reported
    report: SolutionReport | None = None
    message: str = ""  # why it failed, one line
    output_tail: str = ""
    peak_rss_mb: float = 0.0
    # What the run trained, as its progress events told it: phase -> metric -> [[step,
    # value], ...] in the order received (for the terminal chart, TensorBoard, exports).
    series: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    # phase -> [[step, epoch], ...]: the steps whose event carried an epoch (a chart may
    # then plot per epoch).
    epochs: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The candidate's verdict: the run finished and every check holds."""
        return self.status == "ok" and self.report is not None and self.report.passed

    @property
    def reference_holds(self) -> bool:
        """For the reference run: passed, and every fact it states about the seed holds."""
        return self.passed and self.report is not None and self.report.seed_facts_hold

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "solution": self.module,
            "state": self.state,
            "wall_s": round(self.wall_s, 3),
            "compute_s": None if self.compute_s is None else round(self.compute_s, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "onednn": self.onednn,
            "tensorflow": self.tensorflow,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "message": self.message,
            "output_tail": self.output_tail if self.state != "passed" else "",
            "report": self.report.to_dict() if self.report else None,
            "series": self.series,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        report = data.get("report")
        state = data["state"]
        return cls(
            id=data["id"],
            module=data["solution"],
            state=state,
            status="ok" if report is not None else "crash",
            wall_s=data["wall_s"],
            compute_s=data.get("compute_s"),
            cpu_s=data.get("cpu_s"),
            onednn=data.get("onednn"),
            tensorflow=data.get("tensorflow"),
            report=SolutionReport.from_dict(report) if report is not None else None,
            message=data.get("message", ""),
            output_tail=data.get("output_tail", ""),
            peak_rss_mb=data.get("peak_rss_mb", 0.0),
            series=data.get("series") or {},
            epochs=data.get("epochs") or {},
        )


RunResult = Job  # what run_solution returns: one finished job

# -----------------------------------------------------------------------------
# The fork server

_server_lock = threading.Lock()
_warm = False  # the server answered once: later calls need not wait for it


def _context(verbose: bool = False) -> Any:
    """The fork server's context; its environment is set before it first starts."""
    if not verbose:
        os.environ.update(QUIET_ENV)  # read by TensorFlow when the server imports it
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up(verbose: bool = False) -> None:
    """Start the fork server and wait until it has imported TensorFlow (a no-op once done).

    Keeps the import out of the first run's time and timeout.
    """
    global _warm
    with _server_lock:
        if _warm:
            return
        context = _context(verbose)
        warm = context.Process(target=_noop, name="warm-up")
        warm.start()
        warm.join()
        _warm = True


def warm_up_in_background(
    verbose: bool = False, root: Path | None = None, modules: Iterable[str] = ()
) -> threading.Thread:
    """``warm_up`` in a daemon thread: a session (quiz, verify --watch) starts at once and
    its first run finds TensorFlow already imported. Given ``root`` and the ``modules`` a
    session may run, it warms only when one of them may load TensorFlow (read with
    ``ast`` in the thread, so the session does not wait for that either)."""

    def warm() -> None:
        if root is not None:
            graph = ImportGraph(root / "solutions")
            if not any(needs_tensorflow(graph, Job(m, m)) for m in modules):
                return
        warm_up(verbose)

    thread = threading.Thread(target=warm, name="aiprep-warm-up", daemon=True)
    thread.start()
    return thread


def needs_tensorflow(graph: ImportGraph, job: Job) -> bool:
    """Whether the job's solution, or its attempt, may load TensorFlow.

    An attempt that does not parse counts as not loading it: its run only reports the
    syntax error, which needs no server."""
    solution = graph.file_of(f"solutions.{job.module}")
    if solution is None:
        return True  # the run reports the missing module; the server is the usual path
    loaded = graph.may_load(solution)
    if job.attempt is not None:
        try:
            loaded |= graph.may_load(job.attempt)
        except (OSError, SyntaxError, ValueError):
            pass
    return bool(loaded & TENSORFLOW_PACKAGES)


def _noop() -> None:
    """A first job for the fork server: it returns once the preloading is done."""


def _worker(
    root: str,
    module: str,
    attempt: str | None,
    cwd: str,
    env: dict[str, str],
    events: Connection,
    log_path: str,
) -> None:
    """In the forked process: own session, the caller's folder and environment, output to
    the log, then the run itself."""
    os.setsid()  # its own process group: a kill takes whatever it started too
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # Its temp files go to a folder the caller removes, also when the run is killed (a
    # stopped or timed-out run never reaches its own cleanup).
    os.environ["TMPDIR"] = str(Path(log_path).with_suffix(".tmp"))
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    tempfile.tempdir = None  # re-read TMPDIR (the fork server may have cached the default)
    from aiprep._child import run_check

    run_check(Path(root), module, os.dup(events.fileno()), Path(attempt) if attempt else None)


# -----------------------------------------------------------------------------
# Runs


@dataclass
class _Running:
    job: Job
    process: Any  # multiprocessing.Process (forked from the server, or spawned)
    reader: Connection
    log: Path
    buffer: bytes = b""
    got_report: bool = False
    shown: int = 0  # bytes of the log copied to stderr (verbose)
    events: list[Event] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)  # as they were made (for stop_at)
    stopped_at: str = ""  # the stop_at check that failed


def thread_share(workers: int) -> dict[str, str]:
    """The environment that gives each of ``workers`` concurrent runs its share of the cores.

    TensorFlow sizes its thread pools to every core; two runs on two cores would each start
    two busy threads. One thread each measured ~8 % less wall time for the same work (6
    solutions, 2 jobs on 2 cores, 4 alternating rounds). Nothing for a single run."""
    if workers <= 1:
        return {}
    share = str(max(1, (os.cpu_count() or 1) // workers))
    return {
        "TF_NUM_INTRAOP_THREADS": share,
        "TF_NUM_INTEROP_THREADS": share,
        "OMP_NUM_THREADS": share,
    }


def run_jobs(
    root: Path,
    jobs: Sequence[Job],
    *,
    workers: int,
    timeout: float,
    memory_mb: float = DEFAULT_MEMORY_MB,
    verbose: bool = False,
    on_change: Callable[[Job], None] | None = None,
    on_event: Callable[[Job, Event], None] | None = None,
    env_defaults: dict[str, str] | None = None,
) -> list[Job]:
    """Run every job, ``workers`` at a time; returns them with their results.

    The runs get the caller's environment, over ``env_defaults`` (the caller's own value
    of a variable wins) and each run's share of the cores (``thread_share``).

    A job fails when a check fails (for a reference: or a fact about the seed), when it
    raises, exits without a report, runs past ``timeout`` seconds or holds more than
    ``memory_mb`` MiB. ``on_change`` hears of each job's state changes, ``on_event`` of
    every progress event. Ctrl-C kills every running job and re-raises.
    """
    graph = ImportGraph(root / "solutions")
    heavy = {id(job): needs_tensorflow(graph, job) for job in jobs}
    if any(heavy.values()):
        warm_up(verbose)
    server, fresh = _context(verbose), multiprocessing.get_context("spawn")
    queue = list(jobs)
    running: dict[int, _Running] = {}
    notify = on_change or (lambda job: None)
    cwd = os.getcwd()
    env = {**thread_share(workers), **(env_defaults or {}), **os.environ}  # the user's wins
    with (
        tempfile.TemporaryDirectory(prefix="aiprep-run-") as tmp,
        selectors.DefaultSelector() as sel,
    ):
        try:
            while queue or running:
                while queue and len(running) < workers:
                    job = queue.pop(0)
                    context = server if heavy[id(job)] else fresh
                    run = _start(context, root, job, Path(tmp), cwd, env)
                    running[run.reader.fileno()] = run
                    sel.register(run.reader.fileno(), selectors.EVENT_READ)
                    notify(job)
                for key, _ in sel.select(timeout=0.1 if verbose else 0.25):
                    run = running[key.fd]
                    if _read(run, notify, on_event):
                        continue  # more to come
                    sel.unregister(key.fd)
                    del running[key.fd]
                    _finish(run, "", verbose)
                    notify(run.job)
                now = time.monotonic()
                for fd, run in list(running.items()):
                    run.job.wall_s = now - run.job.started
                    if verbose:
                        _copy_log(run)
                    why = ""
                    if not run.process.is_alive():  # ended: take what it sent, then finish
                        while _read(run, notify, on_event):
                            pass
                        sel.unregister(fd)
                        del running[fd]
                        _finish(run, "", verbose)
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
                        _finish(run, why, verbose)
                        notify(run.job)
        except BaseException:
            for run in running.values():
                _kill(run)
            raise
    return list(jobs)


def run_solution(
    root: Path,
    module: str,
    *,
    attempt: Path | None = None,
    timeout: float = 120.0,
    memory_mb: float = DEFAULT_MEMORY_MB,
    verbose: bool = False,
    on_event: Callable[[Event], None] | None = None,
    stop_at: frozenset[str] = frozenset(),
) -> RunResult:
    """Run ``solutions.<module>.check`` on the reference (or on ``attempt``, a .py file).

    ``on_event`` receives each progress event as it arrives. With ``stop_at``, the run
    ends as soon as one of those checks fails (status ``stopped``). Ctrl-C kills the run
    and re-raises KeyboardInterrupt.
    """
    job = Job(module, module, attempt=attempt, stop_at=stop_at)
    forward = None if on_event is None else (lambda _job, event: on_event(event))
    run_jobs(
        root,
        [job],
        workers=1,
        timeout=timeout,
        memory_mb=memory_mb,
        verbose=verbose,
        on_event=forward,
    )
    return job


def _start(
    context: Any, root: Path, job: Job, tmp: Path, cwd: str, env: dict[str, str]
) -> _Running:
    reader, writer = context.Pipe(duplex=False)
    fd, name = tempfile.mkstemp(dir=tmp, suffix=".log")  # ids may repeat (several attempts)
    os.close(fd)
    log = Path(name)
    attempt = str(job.attempt.absolute()) if job.attempt else None
    process = context.Process(
        target=_worker,
        args=(str(root), job.module, attempt, cwd, env, writer, str(log)),
        name=job.id,
        daemon=False,
    )
    process.start()
    job.state, job.started = "running", time.monotonic()
    writer.close()
    return _Running(job, process, reader, log)


def _read(
    run: _Running,
    notify: Callable[[Job], None],
    on_event: Callable[[Job, Event], None] | None,
) -> bool:
    """Take in what the run sent; False once it closed its end."""
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
            run.job.onednn = event.get("onednn")
            run.job.tensorflow = event.get("tensorflow")
        elif kind == "error":
            run.job.message = str(event.get("message", ""))
        elif kind == "check":
            found = Check(**{k: v for k, v in event.items() if k != "event"})
            run.checks.append(found)
            if found.name in run.job.stop_at and not found.passed:
                run.stopped_at = found.name
                return False  # decided: the caller ends the run here
        else:
            if kind == "advance":
                _record_series(run.job, event)
            if on_event is not None:
                on_event(run.job, event)
            if kind in ("start", "advance") and run.job.phase != event.get("phase"):
                run.job.phase = str(event.get("phase", ""))
                notify(run.job)
    return True


def _record_series(job: Job, event: Event) -> None:
    """Add an ``advance`` event's values to ``job.series`` (and its epoch to ``job.epochs``).

    The step is the event's ``completed``; ``epoch`` is an x-axis, not a metric. A value
    that is not a finite number (a NaN loss, a string) is left out: no chart or TensorBoard
    scalar could show it."""
    phase = str(event.get("phase", ""))
    values = event.get("values")
    try:
        step = float(event.get("completed", 0))
    except (TypeError, ValueError):
        return
    if not isinstance(values, dict) or not math.isfinite(step):
        return
    metrics = job.series.setdefault(phase, {})
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        if name == "epoch":
            job.epochs.setdefault(phase, []).append([step, float(value)])
        else:
            metrics.setdefault(str(name), []).append([step, float(value)])
    if not metrics:
        del job.series[phase]


def _finish(run: _Running, why: str, verbose: bool) -> None:
    job = run.job
    if run.stopped_at:
        _kill(run)  # what it would still compute cannot change the verdict
    run.process.join(timeout=10)
    if run.process.exitcode is None:
        _kill(run)
    run.reader.close()
    job.wall_s = time.monotonic() - job.started
    if verbose:
        _copy_log(run)
    code = run.process.exitcode
    if run.stopped_at and not run.got_report:
        job.status = "stopped"
        job.report = SolutionReport(job.module, checks=run.checks)
        job.message = f"stopped: {run.stopped_at} failed"
    elif why:
        job.status = "timeout" if why.startswith("timed out") else "crash"
        job.message = why
    elif run.got_report and code == 0:
        job.status = "ok"
    else:
        job.status = "crash"
        if not job.message:
            if code is not None and code < 0:
                job.message = f"killed by {signal.Signals(-code).name} before reporting"
            else:
                job.message = f"exited with code {code} before reporting"
    holds = job.reference_holds if job.attempt is None else job.passed
    if job.status == "ok" and not holds and job.report is not None:
        failed = [c.name for c in job.report.checks if not c.passed]
        if job.attempt is None:
            failed += [f"about the seed: {c.name}" for c in job.report.seed_facts if not c.passed]
        job.message = "failed: " + "; ".join(failed) if failed else "no checks"
    job.state = "passed" if holds else "failed"
    if job.state == "failed" or job.status != "ok":
        try:
            text = run.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        job.output_tail = last_lines(text)
    shutil.rmtree(run.log.with_suffix(".tmp"), ignore_errors=True)  # the run's TMPDIR


def _copy_log(run: _Running) -> None:
    """Verbose: what the run wrote since the last copy, to the caller's stderr."""
    try:
        with open(run.log, "rb") as f:
            f.seek(run.shown)
            data = f.read()
    except OSError:
        return
    if data:
        run.shown += len(data)
        sys.stderr.buffer.write(data)
        sys.stderr.flush()


def _kill(run: _Running) -> None:
    pid = run.process.pid
    try:
        os.killpg(pid, signal.SIGKILL)  # the run leads its own group (setsid)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        run.process.kill()
    except (OSError, ValueError):
        pass
    run.process.join(timeout=10)


def _rss_mb(pid: int | None) -> float:
    """The process's proportional resident memory (PSS), in MiB.

    PSS, not RSS: a run shares TensorFlow's pages with the fork server (and with the other
    runs), and RSS would count those in full for each of them.
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


def last_lines(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
