"""aiprep.kit.zygote: processes forked from one interpreter, with their exit codes, logs and
environment, killed with whatever opened them. Light: the preloads here are the standard
library; the cluster check that uses it with TensorFlow is tested in test_solutions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# An opener, run as its own script (a fresh process: one thread, so the zygote is a fork of
# it, unless told to start a thread first).
_OPENER = r"""
import json, os, sys, threading, time
from pathlib import Path
from aiprep.kit.zygote import Zygote, ZygoteError

folder, threaded = Path(sys.argv[1]), sys.argv[2] == "threaded"
if threaded:
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
print("the opener's own output")  # never printed again by the zygote's processes
out = {}
with Zygote(["json", "tests.test_zygote"], log=folder / "zygote.txt") as zygote:
    out["forked"] = zygote.forked
    ok = zygote.start("tests.test_zygote:greet", ["hi"], log=folder / "ok.txt",
                      env={"GREETING_TO": "worker"})
    exits = zygote.start("os:_exit", [3])
    raises = zygote.start("json:loads", ["{"], log=folder / "raises.txt")
    sleeps = zygote.start("time:sleep", [60])
    out["codes"] = [ok.wait(30), exits.wait(30), raises.wait(30)]
    out["sleeping"] = sleeps.poll()
    sleeps.kill()
    out["killed"] = sleeps.wait(30)
    out["pids"] = len({os.getpid(), ok.pid, exits.pid, raises.pid, sleeps.pid})
try:
    Zygote(["no_such_module_here"]).start("os:getpid")
except ZygoteError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def greet(word: str) -> None:
    """A target: prints its argument and an environment variable the opener passed."""
    print(word, os.environ.get("GREETING_TO"), flush=True)


def _open(tmp_path: Path, how: str) -> dict:
    root = Path(__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _OPENER, str(tmp_path), how],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("the opener's own output") == 1, done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("how", ["single", "threaded"])
def test_a_zygote_forks_processes_and_reports_how_they_ended(tmp_path: Path, how: str) -> None:
    """One thread: the zygote is a fork of the opener; with threads, a new interpreter.
    Either way: exit code 0 when the target returns, what it passes to os._exit, 1 with
    the traceback in its log when it raises, -9 once killed; its output and environment
    are its own; a preload that fails to import is one clear error."""
    got = _open(tmp_path, how)
    assert got["forked"] is (how == "single")
    assert got["codes"] == [0, 3, 1]
    assert got["sleeping"] is None and got["killed"] == -signal.SIGKILL
    assert got["pids"] == 5  # the opener and four processes of their own
    assert (tmp_path / "ok.txt").read_text() == "hi worker\n"
    assert "JSONDecodeError" in (tmp_path / "raises.txt").read_text()
    assert "no_such_module_here" in got["error"]


_DIES = r"""
import sys, time
from pathlib import Path
from aiprep.kit.zygote import Zygote
zygote = Zygote(["tests.test_zygote"])
zygote.start("tests.test_zygote:sleep_holding", [sys.argv[1]])
time.sleep(60)  # killed from outside while its process runs
"""


def sleep_holding(pid_file: str) -> None:
    """A target that asks to die with its zygote, notes its pid, and sleeps."""
    from aiprep.kit.zygote import die_with_parent

    die_with_parent(os.getppid())
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for init is gone too
        return f.read().split(") ")[-1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_nothing_a_zygote_forked_outlives_its_opener(tmp_path: Path) -> None:
    """SIGKILL the opener: its zygote dies with it, and the process the zygote forked dies
    with the zygote (it runs in its own session, so a kill of the opener's group alone
    would miss it)."""
    root = Path(__file__).parents[1]
    pid_file = tmp_path / "pid"
    opener = subprocess.Popen(
        [sys.executable, "-c", _DIES, str(pid_file)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and opener.poll() is None, "never started"
            time.sleep(0.05)
        forked = int(pid_file.read_text())
        assert _alive(forked)
        opener.kill()
        opener.wait()
        deadline = time.monotonic() + 10
        while _alive(forked):
            assert time.monotonic() < deadline, f"process {forked} outlived its opener"
            time.sleep(0.05)
    finally:
        opener.kill()
        opener.wait()
