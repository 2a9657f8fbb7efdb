"""Smoke-running the bank's reference solutions: which ones, and what the run reports.

The runs themselves go through ``runner.run_jobs`` (the same fork server as ``aiprep run``).
Here: the JSON and JUnit reports, the digest that ties a report to the code it ran, the
recorded compute times (``solutions/timings.json``) that balance shards across machines,
merging the shards' reports, and the solutions a change can affect (``--changed``).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiprep.runner import Job

FORMAT = "aiprep-smoke"
TIMINGS = Path("solutions") / "timings.json"


# -----------------------------------------------------------------------------
# Reports


def report(jobs: Sequence[Job], wall_s: float, workers: int, digest: str) -> dict[str, Any]:
    """The JSON report of a smoke run (``--json``), which ``smoke-merge`` reads back.

    ``onednn`` says whether the runs used TensorFlow's oneDNN kernels (True/False; None when
    unknown or mixed): the tests run the reference comparisons with the other setting only,
    and take the smoke's passed checks as this one. ``measured_at`` (the UTC date) tells a
    reader of an export built from the report (``export --results``) how fresh it is."""
    import datetime

    return {
        "format": FORMAT,
        "version": 1,
        "bank_digest": digest,
        "measured_at": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "onednn": _one({j.onednn for j in jobs if j.onednn is not None}),
        "wall_s": round(wall_s, 3),
        "jobs": workers,
        "solutions": [j.to_dict() for j in jobs],
    }


def _one(values: set[Any]) -> Any:
    """The value, when all agree on one; else None."""
    return values.pop() if len(values) == 1 else None


def read_report(path: Path) -> dict[str, Any]:
    """A smoke JSON report; ValueError with a one-line reason if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an `aiprep smoke --json` report")
    return data


def merge(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One report of several shards' reports: every solution once, wall time the longest
    shard's (they ran side by side), the digest kept only if all shards ran the same code."""
    seen: dict[str, dict[str, Any]] = {}
    for data in reports:
        for job in data["solutions"]:
            if job["id"] in seen:
                raise ValueError(f"{job['id']} is in two of the reports: shards overlap")
            seen[job["id"]] = job
    digests = {data.get("bank_digest") for data in reports}
    onednn = {data.get("onednn") for data in reports if data["solutions"]}
    return {
        "format": FORMAT,
        "version": 1,
        "bank_digest": digests.pop() if len(digests) == 1 else None,
        "onednn": _one(onednn),
        # the earliest shard's date: when the evidence was measured, at the oldest
        "measured_at": min(
            (d["measured_at"] for d in reports if d.get("measured_at")), default=None
        ),
        "wall_s": max((data["wall_s"] for data in reports), default=0.0),
        "jobs": sum(data["jobs"] for data in reports),
        "solutions": [seen[i] for i in sorted(seen)],
    }


def junit_xml(jobs: Sequence[Job], wall_s: float) -> bytes:
    """JUnit XML (one testcase per solution) that CI systems show."""
    import xml.etree.ElementTree as ET

    failures = sum(j.state != "passed" for j in jobs)
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
        if job.state != "passed":
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


def bank_digest(root: Path) -> str:
    """A digest of everything a reference run depends on in the repository: the solutions
    and the aiprep package. A report carries it, so a reader can tell it ran this code."""
    import aiprep

    h = hashlib.sha256()
    package = Path(aiprep.__file__).parent
    for base in (root / "solutions", package):
        for path in sorted(base.rglob("*.py")):
            h.update(str(path.relative_to(base)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


# -----------------------------------------------------------------------------
# Timings and shards


def read_timings(root: Path) -> dict[str, float]:
    """Recorded compute seconds by solution module (``smoke --record-timings``)."""
    try:
        data = json.loads((root / TIMINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.get("compute_s", {}).items()}


def timings_json(jobs: Iterable[Job], old: dict[str, float]) -> bytes:
    """``solutions/timings.json``: the old times updated with these runs' compute times."""
    times = dict(old)
    times.update({j.module: round(j.compute_s, 1) for j in jobs if j.compute_s is not None})
    data = {
        "about": "compute seconds per solution, from `aiprep smoke --record-timings`; "
        "used to balance `aiprep smoke --shard K/N`",
        "compute_s": dict(sorted(times.items())),
    }
    return (json.dumps(data, indent=2) + "\n").encode()


def shard(modules: Sequence[str], timings: dict[str, float], k: int, n: int) -> list[str]:
    """Shard ``k`` of ``n`` (1-based): a deterministic, duration-balanced part of ``modules``.

    Longest first, each to the shard with the least recorded time so far (ties: the lower
    shard); a solution with no recorded time counts as the median of the others.
    """
    if not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: K must be between 1 and N")
    return shards(modules, timings, n)[k - 1]


def shards(modules: Sequence[str], timings: dict[str, float], n: int) -> list[list[str]]:
    """All ``n`` shards of ``modules`` (see ``shard``)."""
    known = [timings[m] for m in modules if m in timings]
    default = statistics.median(known) if known else 1.0
    cost = {m: timings.get(m, default) for m in modules}
    loads: list[float] = [0.0] * n
    parts: list[list[str]] = [[] for _ in range(n)]
    for module in sorted(modules, key=lambda m: (-cost[m], m)):
        i = min(range(n), key=lambda j: (loads[j], j))
        parts[i].append(module)
        loads[i] += cost[module]
    return [sorted(p) for p in parts]


# -----------------------------------------------------------------------------
# What a change can affect


def changed_files(root: Path, ref: str | None) -> set[Path]:
    """Files changed since ``ref`` (default: the merge base with main), committed or not.

    ValueError with git's reason when the ref is unknown or this is not a git checkout.
    """

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            raise ValueError(done.stderr.strip().splitlines()[-1] if done.stderr else "git failed")
        return done.stdout

    if ref is None:
        base = next(
            (b for b in ("main", "origin/main", "master") if _git_ok(root, "rev-parse", b)), None
        )
        if base is None:
            raise ValueError("no branch main to compare with: give a ref, e.g. --changed HEAD~1")
        ref = git("merge-base", base, "HEAD").strip()
    top = Path(git("rev-parse", "--show-toplevel").strip())
    names = git("diff", "--name-only", ref, "--").splitlines()
    names += git("ls-files", "--others", "--exclude-standard").splitlines()
    return {(top / n).resolve() for n in names if n}


def _git_ok(root: Path, *args: str) -> bool:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.returncode == 0


def affected(root: Path, modules: Sequence[str], changed: set[Path]) -> list[str]:
    """The solution modules whose file, or a solution or aiprep module they import (at any
    depth), or the solution they declare ``BASED_ON``, is among ``changed``."""
    from aiprep.kit.imports import ImportGraph

    graph = ImportGraph(root / "solutions")
    out = []
    for module in modules:
        path = graph.file_of(f"solutions.{module}")
        if path is not None and ({path} | graph.closure(path)) & changed:
            out.append(module)
    return out


def write_reports(
    data: dict[str, Any],
    jobs: Sequence[Job],
    *,
    junit: Path | None = None,
    json_path: Path | None = None,
    timings_of: Path | None = None,
) -> None:
    """Write a smoke report (``report`` or ``merge``'s ``data``) as JSON and as JUnit XML,
    and with ``timings_of`` (a bank root) the jobs' compute times into its timings file;
    each whole or not at all. OSError names the file (``filename``) it could not write."""
    from aiprep.files import write_atomic

    outputs: list[tuple[Path | None, bytes]] = [
        (junit, junit_xml(jobs, data["wall_s"])),
        (json_path, (json.dumps(data, indent=2) + "\n").encode()),
    ]
    if timings_of is not None:
        outputs.append((timings_of / TIMINGS, timings_json(jobs, read_timings(timings_of))))
    for path, content in outputs:
        if path is None:
            continue
        try:
            write_atomic(path, content, force=True)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
