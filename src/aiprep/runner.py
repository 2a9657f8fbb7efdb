"""Run a solution's ``check`` in a child process with a timeout.

The child (``python -m aiprep._child``) imports the solution, runs ``check(impl)`` and
sends progress events and the final report as JSON lines over a pipe. A crash, a hang or
a leaked global (TensorFlow's device setup is once per process) stays in the child.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiprep.report import SolutionReport

Event = dict[str, Any]
Status = Literal["ok", "timeout", "crash"]

# What the child needs to keep TensorFlow's logs quiet (unless --verbose).
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ logging: errors only
    "PYTHONWARNINGS": "ignore",
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",
}


@dataclass
class RunResult:
    """What came back from one child run."""

    status: Status
    report: SolutionReport | None
    message: str = ""
    output_tail: str = ""
    wall_s: float = 0.0
    compute_s: float | None = None  # the wall time of check() itself
    cpu_s: float | None = None  # the child's CPU time (threads and children included)

    @property
    def passed(self) -> bool:
        """The candidate's verdict: the run finished and every check holds."""
        return self.status == "ok" and self.report is not None and self.report.passed

    @property
    def reference_holds(self) -> bool:
        """For the reference run: passed, and every fact it states about the seed holds."""
        return self.passed and self.report is not None and self.report.seed_facts_hold


def run_solution(
    root: Path,
    module: str,
    *,
    attempt: Path | None = None,
    timeout: float = 120.0,
    verbose: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> RunResult:
    """Run ``solutions.<module>.check`` on the reference (or on ``attempt``, a .py file).

    ``on_event`` receives each progress event as it arrives. Ctrl-C kills the child and
    re-raises KeyboardInterrupt.
    """
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "aiprep._child", str(root), module, str(write_fd)]
    if attempt is not None:
        cmd.append(str(attempt))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not verbose:
        env.update(QUIET_ENV)
    with tempfile.TemporaryFile("w+b") as log:
        out = None if verbose else log
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(write_fd,),
            env=env,
            start_new_session=True,  # its own process group: a timeout kills everything it started
        )
        os.close(write_fd)
        try:
            report, error, timed_out = _pump(proc, read_fd, start + timeout, on_event)
        except BaseException:
            _kill(proc)
            raise
        finally:
            os.close(read_fd)
        wall = time.monotonic() - start
        log.seek(0)
        tail = last_lines(log.read().decode("utf-8", "replace"))

    if timed_out:
        message = f"timed out after {timeout:g} s (raise --timeout)"
        return RunResult("timeout", None, message, tail, wall)
    if report is not None and proc.returncode == 0:
        parsed = SolutionReport.from_dict(report["report"])
        return RunResult("ok", parsed, "", tail, wall, report.get("compute_s"), report.get("cpu_s"))
    if error is not None:
        return RunResult("crash", None, error, tail, wall)
    code = proc.returncode
    if code is not None and code < 0:
        what = f"killed by {signal.Signals(-code).name}"
    else:
        what = f"exited with code {code}"
    return RunResult("crash", None, f"the solution process {what} before reporting", tail, wall)


def _pump(
    proc: subprocess.Popen[bytes],
    fd: int,
    deadline: float,
    on_event: Callable[[Event], None] | None,
) -> tuple[dict[str, Any] | None, str | None, bool]:
    """Read events until the child closes the pipe or the deadline passes."""
    report: dict[str, Any] | None = None
    error: str | None = None
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(proc)
                return report, error, True
            if not sel.select(timeout=min(left, 0.5)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "report":
                    report = event
                elif event.get("event") == "error":
                    error = event["message"]
                elif on_event is not None:
                    on_event(event)
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill(proc)
        return report, error, True
    return report, error, False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def last_lines(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
