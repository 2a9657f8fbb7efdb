"""``make bench``: wall time of ``aiprep list`` against the floor of its own imports.

Both commands run alternately in one go, so machine noise hits them alike; the ratio of
the medians is the number to watch (target <= 1.5, long-term 1.3 with a 150-question bank).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"aiprep list  median {result['aiprep_list_s'] * 1000:7.1f} ms")
        print(f"floor        median {result['floor_s'] * 1000:7.1f} ms  ({FLOOR[-1]})")
        verdict = "ok" if result["ratio"] <= TARGET else "over target"
        runs = args.runs
        print(f"ratio        {result['ratio']:.2f}  (target <= {TARGET}: {verdict}, {runs} runs)")
    sys.exit(0 if result["ratio"] <= TARGET else 1)


if __name__ == "__main__":
    main()
