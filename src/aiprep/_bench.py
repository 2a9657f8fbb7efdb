"""``make bench``: the budgets a bank three times this size depends on, measured here.

1. ``aiprep list`` and ``aiprep show ID`` against the floor of their own imports
   (``python -c "import yaml, rich.console, rich.table"``); ``list`` both into a pipe (one
   plain line per question) and on a pseudo-terminal (the coloured, wrapped table). All
   run alternately in one go, so machine noise hits them alike; the ratio of the medians
   is the number to watch (targets: list <= 1.3 either way, show <= 1.5). ``show`` is
   measured on a question whose prompt has no Markdown and on one that has
   (rich.markdown then costs its import).
2. ``aiprep smoke`` over the bank (``--no-smoke`` skips it): each solution's compute time
   (``check()``'s wall time; budget <= 20 s each, median <= 12 s), the machine time each
   costs CI (wall x jobs / solutions), and the overhead of the run over the ideal, the sum
   of compute divided by the job count (target <= 15 %). By default ``--jobs`` is the
   core count, as CI runs it: the runs then share the machine's caches and memory
   bandwidth, and take longer than alone. ``--one-core`` measures the budget as it is
   set, each solution alone on one core (``--jobs 1``, one TensorFlow thread); the
   overhead is then that of a one-job run.
3. ``aiprep verify --watch``: from saving the file to the verdict, against that run's own
   time as its verdict line gives it (target: <= run + 1 s; the fork server stays warm
   between saves).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLOOR = [sys.executable, "-c", "import yaml, rich.console, rich.table"]
LIST_TARGET, SHOW_TARGET = 1.3, 1.5
SMOKE_TARGET = 0.15
MAX_COMPUTE, MEDIAN_COMPUTE = 20.0, 12.0
WATCH_SLACK = 1.0
PLAIN_ID = "generative.gan_mode_collapse"  # a prompt without Markdown
MARKDOWN_ID = "training.digits_mlp"  # a prompt with Markdown (inline code)
WATCH_ID = "training.digits_mlp"


def _aiprep() -> list[str]:
    script = Path(sys.executable).with_name("aiprep")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aiprep"]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: `{' '.join(cmd)}` failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def _time_tty(cmd: list[str], env: dict[str, str]) -> float:
    """``_time`` with the command's output on a terminal (a pseudo-terminal read to the end):
    the path a person sees, colours and the laid-out table included."""
    import pty

    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdout and stderr are the terminal
        try:
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    output = bytearray()
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    os.close(fd)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"bench: `{' '.join(cmd)}` failed on a terminal:\n{output.decode(errors='replace')}"
        )
    return elapsed


def measure_commands(runs: int = 21) -> dict[str, float]:
    """Median wall seconds of list, show (plain and Markdown) and the floor; the ratios."""
    # The steady state a user sees: bytecode cached after the first run, even where
    # PYTHONDONTWRITEBYTECODE is set (pip already compiled the dependencies at install).
    import compileall

    compileall.compile_dir(Path(__file__).parent, quiet=1)
    env = dict(os.environ, COLUMNS="120")
    commands = {
        "list": [*_aiprep(), "list"],
        "show": [*_aiprep(), "show", PLAIN_ID],
        "show_markdown": [*_aiprep(), "show", MARKDOWN_ID],
        "floor": FLOOR,
    }
    tty = {"list_tty": commands["list"], "floor_tty": FLOOR}  # what a person at a terminal sees
    _time(commands["list"], env)  # the first run validates and caches the bank
    times: dict[str, list[float]] = {name: [] for name in [*commands, *tty]}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(_time(cmd, env))
        for name, cmd in tty.items():
            times[name].append(_time_tty(cmd, {**env, "LINES": "40"}))
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        **{f"{name}_s": value for name, value in med.items()},
        "list_ratio": med["list"] / med["floor"],
        "list_tty_ratio": med["list_tty"] / med["floor_tty"],
        "show_ratio": med["show"] / med["floor"],
        "show_markdown_ratio": med["show_markdown"] / med["floor"],
        "runs": runs,
    }


ONE_CORE = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def measure_smoke(jobs: int, one_core: bool = False) -> dict[str, Any]:
    """``aiprep smoke --jobs N`` over the bank: compute per solution, CI cost, overhead.
    With ``one_core``: one job at a time, each with one thread."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "smoke.json"
        start = time.perf_counter()
        done = subprocess.run(
            [*_aiprep(), "smoke", "--jobs", str(jobs), "--json", str(report)],
            stdout=subprocess.DEVNULL,
            env={**os.environ, **ONE_CORE} if one_core else None,
        )
        wall = time.perf_counter() - start
        if not report.exists():
            sys.exit(f"bench: aiprep smoke failed (exit {done.returncode})")
        data = json.loads(report.read_text())
    solutions = data["solutions"]
    failed = [s["id"] for s in solutions if s["state"] != "passed"]
    if failed:
        sys.exit(f"bench: smoke failures make the timing meaningless: {', '.join(failed)}")
    compute = {s["solution"]: s["compute_s"] for s in solutions}
    ideal = sum(compute.values()) / jobs
    return {
        "smoke_wall_s": wall,
        "smoke_ideal_s": ideal,
        "smoke_overhead": wall / ideal - 1,
        "smoke_solutions": len(solutions),
        "smoke_jobs": jobs,
        "ci_machine_s_per_solution": wall * jobs / len(solutions),
        "compute_median_s": statistics.median(compute.values()),
        "compute_max_s": max(compute.values()),
        "compute_s": compute,
    }


def measure_watch(question_id: str) -> dict[str, float]:
    """Seconds from saving an attempt to its verdict in ``verify --watch`` (2nd save on),
    and how much of it is not the run itself."""
    from aiprep.bank import load_bank, solution_path

    bank = load_bank()
    module = bank.questions[question_id]["solution"]
    assert module is not None, question_id
    with tempfile.TemporaryDirectory() as tmp:
        attempt = Path(tmp) / "attempt.py"
        shutil.copy(solution_path(bank.root, module), attempt)
        proc = subprocess.Popen(
            [*_aiprep(), "verify", question_id, str(attempt), "--watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, COLUMNS="200"),
        )
        assert proc.stdout is not None
        latencies, runs = [], []  # save -> verdict line; the run's own time on that line
        try:
            for _ in range(4):  # the first verdict, then three saves
                saved = time.perf_counter()
                for line in proc.stdout:
                    if "checks passed" in line:
                        latencies.append(time.perf_counter() - saved)
                        found = re.search(r"in ([0-9.]+) s", line)
                        runs.append(float(found.group(1)) if found else float("nan"))
                    if "watching" in line:
                        break
                attempt.write_text(attempt.read_text() + "\n")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    after_save = statistics.median(latencies[1:]) if len(latencies) > 1 else float("nan")
    result = {"watch_first_s": latencies[0] if latencies else float("nan")}
    result["watch_save_to_verdict_s"] = after_save
    # Against the same run's own time (the verdict line's "in X s": its compute plus the
    # fork), not another run's: a solution's compute varies by a second from run to run.
    over = [lat - run for lat, run in zip(latencies[1:], runs[1:], strict=True)]
    result["watch_compute_s"] = statistics.median(runs[1:]) if len(runs) > 1 else float("nan")
    result["watch_over_compute_s"] = statistics.median(over) if over else float("nan")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-smoke", dest="smoke", action="store_false")
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="smoke one solution at a time on one thread: compute as the budget sets it",
    )
    parser.add_argument("--no-watch", dest="watch", action="store_false")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = measure_commands(args.runs)
    verdicts = {
        "list": result["list_ratio"] <= LIST_TARGET,
        "list on a terminal": result["list_tty_ratio"] <= LIST_TARGET,
        "show": result["show_ratio"] <= SHOW_TARGET,
    }
    if args.smoke:
        result.update(measure_smoke(1 if args.one_core else args.jobs, args.one_core))
        verdicts["smoke overhead"] = result["smoke_overhead"] <= SMOKE_TARGET
        verdicts["compute max"] = result["compute_max_s"] <= MAX_COMPUTE
        verdicts["compute median"] = result["compute_median_s"] <= MEDIAN_COMPUTE
    if args.watch:
        result.update(measure_watch(WATCH_ID))
        verdicts["watch"] = result["watch_over_compute_s"] <= WATCH_SLACK
    if args.json:
        print(json.dumps({**result, "ok": verdicts}))
    else:
        _print(result, verdicts, args)
    sys.exit(0 if all(verdicts.values()) else 1)


def _print(result: dict[str, Any], verdicts: dict[str, bool], args: Any) -> None:
    def ok(name: str) -> str:
        return "ok" if verdicts[name] else "OVER TARGET"

    ms = {k: result[f"{k}_s"] * 1000 for k in ("list", "show", "show_markdown", "floor")}
    print(f"floor          {ms['floor']:7.1f} ms  ({FLOOR[-1]}), {args.runs} runs")
    print(
        f"list           {ms['list']:7.1f} ms  {result['list_ratio']:.2f}x floor "
        f"(target <= {LIST_TARGET}: {ok('list')})"
    )
    print(
        f"list, terminal {result['list_tty_s'] * 1000:7.1f} ms  {result['list_tty_ratio']:.2f}x "
        f"the floor on a terminal, {result['floor_tty_s'] * 1000:.1f} ms "
        f"(target <= {LIST_TARGET}: {ok('list on a terminal')})"
    )
    print(
        f"show           {ms['show']:7.1f} ms  {result['show_ratio']:.2f}x floor "
        f"(target <= {SHOW_TARGET}: {ok('show')}; {PLAIN_ID})"
    )
    print(
        f"show, Markdown {ms['show_markdown']:7.1f} ms  {result['show_markdown_ratio']:.2f}x floor"
        f" ({MARKDOWN_ID}: rich.markdown's import)"
    )
    if "smoke_wall_s" in result:
        print(
            f"smoke          {result['smoke_wall_s']:.1f} s wall for "
            f"{result['smoke_solutions']} solutions, {result['smoke_jobs']} jobs"
            f"{' (one core each)' if args.one_core else ''}; "
            f"compute / jobs {result['smoke_ideal_s']:.1f} s; overhead "
            f"{result['smoke_overhead']:+.1%} (target <= {SMOKE_TARGET:.0%}: "
            f"{ok('smoke overhead')})"
        )
        print(
            f"compute        median {result['compute_median_s']:.1f} s "
            f"(target <= {MEDIAN_COMPUTE:g}: {ok('compute median')}), max "
            f"{result['compute_max_s']:.1f} s (target <= {MAX_COMPUTE:g}: {ok('compute max')})"
        )
        print(f"CI cost        {result['ci_machine_s_per_solution']:.1f} machine-s per solution")
        slow = sorted(result["compute_s"].items(), key=lambda kv: -kv[1])[:5]
        print("slowest        " + ", ".join(f"{m} {s:.1f} s" for m, s in slow))
    if "watch_save_to_verdict_s" in result:
        line = f"verify --watch save to verdict {result['watch_save_to_verdict_s']:.1f} s"
        if "watch_over_compute_s" in result:
            over = result["watch_over_compute_s"]
            line += (
                f", the run itself {result['watch_compute_s']:.1f} s: {over:+.2f} s"
                f" (target <= +{WATCH_SLACK:g} s: {ok('watch')})"
            )
        print(line + f"; first verdict {result['watch_first_s']:.1f} s (TensorFlow's import)")


if __name__ == "__main__":
    main()
