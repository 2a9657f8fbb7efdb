"""Measured evidence for the instructors' sheets: what a smoke run of each reference showed.

``aiprep export --results smoke.json`` reads an ``aiprep smoke --json`` report and puts,
beside each runnable question, the run's verdict, its checks (value, comparison,
threshold), its metrics, when it was measured and charts of its training curves. An
instructor then hands out a claim together with the numbers that prove it, instead of
asking to be trusted. Only the report's numbers are shown: nothing is run here, and
TensorFlow is never imported.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiprep import svg_chart
from aiprep.kit.report import format_value

MAX_METRICS = 12  # beyond these, "and N more": a sheet shows the evidence, not a dump
MAX_CHARTS = 4  # one chart per curve (loss, accuracy, ...): the first ones recorded
FIX = "make one with `aiprep smoke --ids ID,... --json FILE`"


@dataclass(frozen=True)
class CheckRow:
    name: str
    value: str
    rule: str  # "op threshold", e.g. ">= 0.9"
    passed: bool


@dataclass(frozen=True)
class Chart:
    metric: str
    file: str  # a file name for it: <question id>-<metric>.svg
    svg: str


@dataclass(frozen=True)
class Evidence:
    """One question's measured result, ready to show."""

    passed: bool
    state: str  # passed, failed, timeout, crashed ...
    message: str
    measured_at: str | None  # ISO date
    checks: list[CheckRow] = field(default_factory=list)
    metrics: list[tuple[str, str]] = field(default_factory=list)  # (name, value with unit)
    more_metrics: int = 0
    charts: list[Chart] = field(default_factory=list)
    wall_s: float | None = None


@dataclass(frozen=True)
class Results:
    """A smoke report read for an export: each question id's entry, and the date."""

    path: str
    entries: Mapping[str, Mapping[str, Any]]
    measured_at: str | None


def load(path: Path) -> Results:
    """The smoke report at ``path``; ValueError with a one-line reason naming the file
    and the fix when it cannot be read or is not one."""
    from aiprep.smoke import read_report

    try:
        data = read_report(path)
    except ValueError as e:
        raise ValueError(f"{e}; {FIX}") from None
    solutions = data.get("solutions")
    if not isinstance(solutions, list):
        raise ValueError(f"{path}: no list of solutions in it; {FIX}")
    entries: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(solutions):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and "state" in entry):
            raise ValueError(f"{path}: solution #{i + 1} has no id and state; {FIX}")
        entries[entry["id"]] = entry
    measured = data.get("measured_at")
    if not isinstance(measured, str):
        # Reports written before they carried a date: the file's own date is the best
        # evidence of when it was measured.
        stamp = path.stat().st_mtime
        measured = datetime.datetime.fromtimestamp(stamp, datetime.UTC).date().isoformat()
    return Results(str(path), entries, measured[:10])


def unknown_ids(results: Results, bank_ids: set[str]) -> list[str]:
    """The report's ids that this bank does not have (a report from another bank)."""
    return sorted(set(results.entries) - bank_ids)


def evidence_of(qid: str, results: Results | None) -> Evidence | None:
    """The evidence for question ``qid``, or None when the report has no entry for it."""
    if results is None or qid not in results.entries:
        return None
    entry = results.entries[qid]
    report = entry.get("report") or {}
    checks = [
        CheckRow(
            str(c.get("name", "")),
            format_value(_number(c.get("value"))),
            f"{c.get('op', '?')} {format_value(_number(c.get('threshold')))}",
            bool(c.get("passed")),
        )
        for c in report.get("checks") or []
    ]
    metrics = []
    for m in report.get("metrics") or []:
        value = m.get("value")
        shown = format_value(value if isinstance(value, str | int) else _number(value))
        unit = m.get("unit") or ""
        metrics.append((str(m.get("name", "")), f"{shown} {unit}".strip()))
    wall = entry.get("wall_s")
    return Evidence(
        passed=entry.get("state") == "passed" and bool(report.get("passed")),
        state=str(entry.get("state")),
        message=str(entry.get("message") or ""),
        measured_at=results.measured_at,
        checks=checks,
        metrics=metrics[:MAX_METRICS],
        more_metrics=max(0, len(metrics) - MAX_METRICS),
        charts=charts(qid, entry.get("series") or {}),
        wall_s=float(wall) if isinstance(wall, int | float) else None,
    )


def charts(qid: str, series: Mapping[str, Any]) -> list[Chart]:
    """One chart per metric (loss, val_loss, ...), a line per phase: phases are the runs
    a solution compares (a baseline against a remedy), so they belong on one chart."""
    by_metric: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    for phase, metrics in series.items():
        if not isinstance(metrics, Mapping):
            continue
        for metric, points in metrics.items():
            pts = [
                (float(p[0]), float(p[1]))
                for p in points or []
                if isinstance(p, Sequence) and len(p) == 2 and _finite(p[0]) and _finite(p[1])
            ]
            if len(pts) >= 2:
                by_metric.setdefault(str(metric), []).append((str(phase), pts))
    out = []
    for metric, lines in list(by_metric.items())[:MAX_CHARTS]:
        # A file name whatever the metric is called: no folder, no "..", no hidden file.
        slug = re.sub(r"[^A-Za-z0-9_.-]+|\.{2,}", "-", f"{qid}-{metric}").strip("-.")
        title = f"{metric} by step"
        out.append(Chart(metric, f"{slug}.svg", svg_chart.line_chart(title, lines)))
    return out


def summary(ev: Evidence, heads: dict[str, str]) -> str:
    """One line in the sheet's language(s): the verdict, how many checks hold, when."""
    held = sum(c.passed for c in ev.checks)
    verdict = heads["verdict_passed"] if ev.passed else ev.state.upper()
    when = f" · {heads['measured_on']} {ev.measured_at}" if ev.measured_at else ""
    took = f" · {ev.wall_s:.0f} s" if ev.wall_s is not None else ""
    return f"{verdict}: {held}/{len(ev.checks)} {heads['checks_hold']}{took}{when}"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
