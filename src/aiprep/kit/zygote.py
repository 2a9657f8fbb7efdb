"""Fresh processes without paying TensorFlow's import in each: a zygote.

A check that starts processes of its own (the workers of a multi-worker cluster) would
otherwise start a new interpreter per process, and each imports TensorFlow again: seconds
apiece, twice per round when two workers import on two cores at once. A ``Zygote`` is one
process that has the heavy modules imported and forks a process per request. Each forked
process starts from TensorFlow imported but not initialised (no runtime, no device, no
thread pool: the zygote never runs an op), in its own session, with its own environment
and log: what a process started on its own host would have. Where the opener is still a
single thread (a run forked from the runner's server, at the start of its check) the
zygote is a fork of it and its imports cost nothing; elsewhere it is a new interpreter.

    with Zygote(["tensorflow", "tf_keras", __name__], log=folder / "zygote.txt") as zygote:
        worker = zygote.start(f"{__name__}:run_worker", log=folder / "w0.txt", env={...})
        while worker.poll() is None: ...
        worker.kill()

The zygote asks Linux to kill it when the process that opened it dies, and every forked
process may ask the same of the zygote (``die_with_parent``), so nothing outlives a check
killed from outside; closing the zygote kills what it forked and is still running.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiprep.kit import events


class ZygoteError(RuntimeError):
    """The zygote failed to start (a preload did not import) or died."""


class Forked:
    """A process forked by a ``Zygote``: its pid (also its process group), and its exit code
    once it has exited (negative: killed by that signal), as ``subprocess.Popen`` has."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self._zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        return self._zygote._exit_codes.get(self.pid)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def kill(self) -> None:
        """SIGKILL the process and everything it started in its session."""
        if self.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # not yet its own group leader (just forked)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            except PermissionError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code, once it has exited; ``TimeoutError`` after ``timeout`` seconds."""
        with self._zygote._changed:
            if not self._zygote._changed.wait_for(
                lambda: self.poll() is not None or self._zygote._dead, timeout
            ):
                raise TimeoutError(f"process {self.pid} still running after {timeout} s")
        code = self.poll()
        return code if code is not None else -signal.SIGKILL  # the zygote died with it


class Zygote:
    """One interpreter that imports ``preload`` (module names), forking fresh processes.

    Where this process is still a single thread (a run forked from the runner's server, at
    the start of its check: TensorFlow imported, its runtime not started), the zygote is a
    fork of it and its imports cost nothing; elsewhere it is a new interpreter (``sys.path``
    the opener's) that starts importing at once while the opener goes on: ``start`` waits
    for the imports. ``log``: where the zygote's own output goes (its imports' warnings).
    """

    def __init__(self, preload: Sequence[str], log: Path | None = None) -> None:
        self._exit_codes: dict[int, int] = {}
        self._started: list[int] = []
        self._replies: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._dead = False
        self._ready = False  # {"ready": pid} comes once the preloads are imported
        self._log = log
        self.forked = _single_threaded()  # the zygote is a fork of this process
        with open(log or os.devnull, "wb") as out:
            if self.forked:
                self._proc: _Child | subprocess.Popen[bytes] = _fork_zygote(preload, out)
            else:
                setup = json.dumps({"path": sys.path, "preload": list(preload)})
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", f"import {__name__} as z; z._serve_spawned()", setup],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=out,
                )
        self._reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self._reader.start()

    def wait_ready(self) -> None:
        """Wait until the preloads are imported (``start`` does; the opener can work meanwhile)."""
        if not self._ready:
            self._reply()
            self._ready = True

    def start(
        self,
        target: str,
        args: Sequence[Any] = (),
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Forked:
        """Fork a process that runs ``target`` ("module:function", the module imported in the
        zygote or importable there) with JSON-able ``args``, its stdout and stderr in ``log``,
        ``env`` added to its environment. Its exit code: 0 when the function returns, 1 when
        it raises (the traceback in its log), or what it passes to ``os._exit``."""
        self.wait_ready()
        request = {
            "target": target,
            "args": list(args),
            "log": str(log or os.devnull),
            "env": dict(env or {}),
        }
        self._send(request)
        return Forked(self, int(self._reply()["pid"]))

    def close(self) -> None:
        """Kill every forked process still running, then the zygote."""
        for pid in self._started:
            Forked(self, pid).kill()
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]  # the zygote exits on EOF
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # The opener's side of the pipe: requests out, replies and exit codes in.

    def _send(self, message: dict[str, Any]) -> None:
        stdin: IO[bytes] = self._proc.stdin  # type: ignore[assignment]
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except OSError as e:
            raise ZygoteError(f"the zygote died (exit code {self._proc.poll()})") from e

    def _reply(self) -> dict[str, Any]:
        with self._changed:
            self._changed.wait_for(lambda: self._replies or self._dead)
            if not self._replies:
                code = self._proc.wait()
                raise ZygoteError(f"the zygote exited with code {code}{self._log_tail()}")
            reply = self._replies.pop(0)
        if "error" in reply:
            raise ZygoteError(reply["error"])
        if "pid" in reply:
            self._started.append(int(reply["pid"]))
        return reply

    def _log_tail(self) -> str:
        """The last line of the zygote's log (its error), for a message that outlives it."""
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines() if self._log else []
        except OSError:
            lines = []
        return f": {lines[-1][:300]}" if lines else ""

    def _read(self) -> None:
        for line in self._proc.stdout:  # type: ignore[union-attr]
            message = json.loads(line)
            with self._changed:
                if "exited" in message:
                    self._exit_codes[int(message["exited"])] = int(message["code"])
                else:
                    self._replies.append(message)
                self._changed.notify_all()
        with self._changed:
            self._dead = True
            self._changed.notify_all()


def die_with_parent(opener: int) -> None:
    """In a process: ask Linux to SIGKILL it when its parent dies, and exit now if
    ``opener`` (a pid) is gone already. A forked process's parent is the zygote, which
    dies with the process that opened it."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    try:
        os.kill(opener, 0)
    except ProcessLookupError:
        os._exit(1)


def _single_threaded() -> bool:
    """Whether this process runs one thread only (Linux: counted in /proc), so that a fork
    of it is safe: no lock held by another thread, no TensorFlow thread pool started."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class _Child:
    """A forked zygote, with what ``Zygote`` uses of ``subprocess.Popen``."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"zygote {self.pid}", timeout or 0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]  # set by poll

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _fork_zygote(preload: Sequence[str], out: IO[bytes]) -> _Child:
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    opener = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # or the zygote's processes print it again
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:  # the zygote: never returns into the opener's code
        code = 1
        try:
            os.close(requests_w)
            os.close(replies_r)
            os.dup2(requests_r, 0)
            os.close(requests_r)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            events.disconnect()  # the opener's progress events are the opener's
            _serve(replies_w, preload, opener)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(requests_r)
    os.close(replies_w)
    return _Child(pid, os.fdopen(requests_w, "wb"), os.fdopen(replies_r, "rb"))


# The zygote's side.


def _serve_spawned() -> None:
    """The zygote as a new interpreter: requests on stdin, replies on stdout."""
    setup = json.loads(sys.argv[1])
    sys.path[:] = setup["path"]
    replies_fd = os.dup(1)  # the replies' own descriptor: what the imports print goes to
    os.dup2(2, 1)  # stdout, which is now the log
    _serve(replies_fd, setup["preload"], os.getppid())


def _serve(replies_fd: int, preload: Sequence[str], opener: int) -> None:
    """Import ``preload``, then fork a process per request line read on fd 0 and report,
    on ``replies_fd``, its pid and later its exit code; return when the requests end."""
    die_with_parent(opener)

    def reply(message: dict[str, Any]) -> None:
        os.write(replies_fd, json.dumps(message).encode() + b"\n")  # short: one write

    try:
        for name in preload:
            __import__(name)
    except BaseException:
        reply({"error": f"a preload failed: {traceback.format_exc().strip().splitlines()[-1]}"})
        return
    reply({"ready": os.getpid()})
    running: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.05)
        while running:  # report every process that exited since the last look
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            running.discard(pid)
            reply({"exited": pid, "code": os.waitstatus_to_exitcode(status)})
        if not readable:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:  # the opener closed the pipe, or died
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            pid = os.fork()
            if pid == 0:
                os.close(replies_fd)
                _run_forked(json.loads(line))  # never returns
            running.add(pid)
            reply({"pid": pid})


def _run_forked(request: dict[str, Any]) -> None:
    """In a forked process: own session, stdin empty, output to its log, its environment;
    then the target. Never returns."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(request["env"])
        module, _, function = request["target"].partition(":")
        getattr(__import__(module, fromlist=[function]), function)(*request["args"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
