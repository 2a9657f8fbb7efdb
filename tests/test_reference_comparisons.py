"""Every equality-type check holds with oneDNN on and off, on this CPU.

A solution that compares an answer with an independent reference to float tolerance
(attention vs Keras, 2 replicas vs 1, TD targets vs a hand computation, ...) puts those
comparisons in ``reference_comparisons(impl) -> dict[str, Comparison]``. oneDNN changes
the kernels and their summation order, so a tolerance that only holds for one of them
(an absolute 1e-5 on values of order 100 is about one float32 ulp) fails here before it
fails on a user's machine. Each run is a fresh process: TF reads the flag at import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from aiprep.paths import default_bank_root
from aiprep.runner import QUIET_ENV
from aiprep.smoke import read_timings, shards
from conftest import smoke_report

ROOT = default_bank_root()

# Solutions whose claim is an equality with a reference: each must expose its comparisons.
MUST_COMPARE = {
    "distributed.mirrored_strategy",
    "nlp.transformer_attention_classifier",
    "rl.dqn_lane_keeping",
    "rl.fix_seed_dqn",
}


def _comparing_solutions() -> list[str]:
    found = []
    for path in sorted((ROOT / "solutions").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(n, ast.FunctionDef) and n.name == "reference_comparisons" for n in tree.body
        ):
            found.append(".".join(path.relative_to(ROOT / "solutions").with_suffix("").parts))
    return found


COMPARING = _comparing_solutions()

# The comparisons run in a few parts, balanced by the solutions' recorded compute times, so
# that test workers share them (one part is one TensorFlow import per oneDNN setting).
PARTS = [p for p in shards(COMPARING, read_timings(ROOT), 4) if p]

# One process per oneDNN setting imports TensorFlow (about 3 s, paid twice, not twice per
# solution) and forks a fresh child per solution, before TensorFlow's runtime starts: a
# solution may configure devices (logical CPUs), which only a fresh runtime allows. A
# solution that raises is reported.
_CHILD = """
import importlib, json, os, sys, traceback
import tensorflow  # noqa: F401  (imported once; its runtime starts in each child)
found = {}
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            module = importlib.import_module("solutions." + name)
            got = module.reference_comparisons(module)
            out = {k: [c.tolerance_used, c.max_abs_diff, c.detail] for k, c in got.items()}
        except Exception:
            out = traceback.format_exc(limit=3)
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    found[name] = json.loads(data) if data else f"child exited with status {status}"
print(json.dumps(found))
"""


def test_the_equality_solutions_expose_their_comparisons() -> None:
    assert MUST_COMPARE <= set(COMPARING)


def test_the_parts_cover_every_comparing_solution_once() -> None:
    assert sorted(m for part in PARTS for m in part) == sorted(COMPARING)


def _comparisons(onednn: str, modules: list[str]) -> dict[str, dict[str, list[Any]]]:
    """The comparisons of ``modules`` under TF_ENABLE_ONEDNN_OPTS=onednn:
    {module: {name: [tolerance used, max |diff|, detail]}}."""
    env = dict(os.environ, **QUIET_ENV, TF_ENABLE_ONEDNN_OPTS=onednn, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found) == set(modules)
    raised = {m: r for m, r in found.items() if isinstance(r, str)}
    assert not raised, raised
    empty = sorted(m for m, r in found.items() if not r)
    assert not empty, f"reference_comparisons returned nothing: {empty}"
    return found


def _assert_hold(found: dict[str, dict[str, list[Any]]], onednn: str) -> None:
    failed = {
        f"{m}: {name}": r for m, rs in found.items() for name, r in rs.items() if not r[0] <= 1.0
    }
    assert not failed, f"with TF_ENABLE_ONEDNN_OPTS={onednn}: {failed}"


@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS, ids="+".join)
def test_reference_comparisons_hold_with_onednn_off_and_on(part: list[str]) -> None:
    smoke = smoke_report()
    smoked = None if smoke is None else smoke.get("onednn")  # the smoke's setting, if known
    for onednn in ("0", "1"):
        if smoked is not None and onednn == ("1" if smoked else "0"):
            continue  # CI's smoke ran every reference so: its passed checks are this half
        found = _comparisons(onednn, part)
        _assert_hold(found, onednn)
    if smoke is None or smoked is None:
        return
    # Each comparison is recorded as a check of the same name, which the smoke run passed.
    passed = {
        job["solution"]: {c["name"] for c in job["report"]["checks"] if c["passed"]}
        for job in smoke["solutions"]
        if job.get("report")
    }
    missing = {
        m: sorted(set(names) - passed.get(m, set()))
        for m, names in found.items()
        if set(names) - passed.get(m, set())
    }
    assert not missing, (
        f"not a passed check of the smoke run (oneDNN {'on' if smoked else 'off'}); record "
        f"each comparison with report.check_close under its own name: {missing}"
    )
