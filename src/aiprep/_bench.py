"""``make bench``: how fast the two commands that must be fast are.

1. ``aiprep list`` against the floor of its own imports. Both run alternately in one go,
   so machine noise hits them alike; the ratio of the medians is the number to watch
   (target <= 1.5, long-term 1.3 with a 150-question bank).
2. ``aiprep smoke`` over the whole bank (``--smoke``, on by default): its wall time
   against the ideal, the sum of the solutions' own compute time (``check()``'s wall
   time) divided by the job count. The overhead is TensorFlow imports, process starts
   and uneven packing of jobs; target <= 15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = [sys.executable, "-c", "import yaml, rich.console, rich.table"]
TARGET = 1.5
SMOKE_TARGET = 0.15


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: `{' '.join(cmd)}` failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def measure(runs: int = 21) -> dict[str, float]:
    """Median wall seconds of ``aiprep list`` and of the floor, and their ratio."""
    # Measure the steady state a user sees: bytecode cached after the first run, even where
    # PYTHONDONTWRITEBYTECODE is set (pip already compiled the dependencies at install).
    import compileall

    compileall.compile_dir(Path(__file__).parent, quiet=1)
    aiprep = Path(sys.executable).with_name("aiprep")
    command = [str(aiprep), "list"] if aiprep.exists() else [sys.executable, "-m", "aiprep", "list"]
    env = dict(os.environ, COLUMNS="120")
    _time(command, env)  # first run validates and caches the bank, like any first use
    listed, floor = [], []
    for _ in range(runs):
        listed.append(_time(command, env))
        floor.append(_time(FLOOR, env))
    a, f = statistics.median(listed), statistics.median(floor)
    return {"aiprep_list_s": a, "floor_s": f, "ratio": a / f, "runs": runs}


def measure_smoke(jobs: int) -> dict[str, float]:
    """``aiprep smoke --jobs N`` over the bank: wall time, compute / jobs, the overhead."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "smoke.json"
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "aiprep", "smoke", "--jobs", str(jobs), "--json", str(report)],
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        if not report.exists():
            sys.exit(f"bench: aiprep smoke failed (exit {done.returncode})")
        data = json.loads(report.read_text())
    solutions = data["solutions"]
    failed = [s["id"] for s in solutions if s["state"] != "passed"]
    if failed:
        sys.exit(f"bench: smoke failures make the timing meaningless: {', '.join(failed)}")
    ideal = sum(s["compute_s"] for s in solutions) / jobs
    return {
        "smoke_wall_s": wall,
        "smoke_ideal_s": ideal,
        "smoke_overhead": wall / ideal - 1,
        "smoke_solutions": len(solutions),
        "smoke_jobs": jobs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-smoke", dest="smoke", action="store_false")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    ok = result["ratio"] <= TARGET
    if args.smoke:
        result.update(measure_smoke(args.jobs))
        ok = ok and result["smoke_overhead"] <= SMOKE_TARGET
    if args.json:
        print(json.dumps(result))
    else:
        print(f"aiprep list  median {result['aiprep_list_s'] * 1000:7.1f} ms")
        print(f"floor        median {result['floor_s'] * 1000:7.1f} ms  ({FLOOR[-1]})")
        verdict = "ok" if result["ratio"] <= TARGET else "over target"
        runs = args.runs
        print(f"ratio        {result['ratio']:.2f}  (target <= {TARGET}: {verdict}, {runs} runs)")
        if args.smoke:
            over = result["smoke_overhead"]
            verdict = "ok" if over <= SMOKE_TARGET else "over target"
            print(
                f"smoke        {result['smoke_wall_s']:.1f} s wall for "
                f"{result['smoke_solutions']:.0f} solutions, {args.jobs} jobs; "
                f"compute / jobs {result['smoke_ideal_s']:.1f} s"
            )
            print(f"overhead     {over:+.1%}  (target <= {SMOKE_TARGET:.0%}: {verdict})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
