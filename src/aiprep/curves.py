"""Terminal charts of a run's curves, drawn after ``aiprep run`` and ``aiprep verify``.

What an engineer reads after training is the curve, not the last number: train against
validation loss, the arms of a comparison (baseline, dropout, early stopping) overlaid.
The series come from the run's progress events (``runner.Job.series``); a chart is one
metric family (``loss`` with ``val_loss``, ``accuracy`` with ``val_accuracy``, ...), the
phases overlaid in one colour each, validation drawn with a lighter marker.

plotext draws them (a maintained terminal plotting library). It is imported only when a
chart is drawn, so ``aiprep list``/``show`` never pay for it; the caller draws only when
stdout is a terminal (a pipe or a file never gets a chart) and ``--no-plot`` is not given.
"""

from __future__ import annotations

import math
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

Series = Mapping[str, Mapping[str, Sequence[Sequence[float]]]]  # phase -> metric -> points
Epochs = Mapping[str, Sequence[Sequence[float]]]  # phase -> [[step, epoch], ...]

MAX_CHARTS = 4
HEIGHT = 12  # rows per chart: compact enough for four on one screen
MAX_WIDTH = 120  # a wider terminal gets this: longer lines do not read better
PRIORITY = ("loss", "accuracy")  # the families drawn first, in this order
PAIRED_PHASES = 2  # up to this many phases, validation curves share their family's chart
LOG_RATIO = 20.0  # a chart whose values span more than this factor gets a log y axis
# One colour per phase (the names plotext and ANSI share); train solid, validation dotted.
COLORS = ("cyan", "yellow", "green", "magenta", "blue", "red")
ANSI = {"cyan": 36, "yellow": 33, "green": 32, "magenta": 35, "blue": 34, "red": 31}
TRAIN_MARKER, VAL_MARKER = "hd", "dot"
TRAIN_KEY, VAL_KEY = "━", "•"  # how the legend shows each marker


@dataclass
class Line:
    """One curve: a phase's metric, against epoch or step."""

    label: str
    phase: str
    validation: bool
    x: list[float]
    y: list[float]


@dataclass
class Chart:
    """One metric family: every phase's train and validation curves of it."""

    family: str
    xlabel: str  # "epoch" or "step"
    lines: list[Line] = field(default_factory=list)


def family_of(metric: str) -> tuple[str, bool]:
    """``val_loss`` -> (``loss``, True): validation overlays its training metric."""
    if metric.startswith("val_") and len(metric) > 4:
        return metric[4:], True
    return metric, False


def _by_epoch(
    points: Sequence[Sequence[float]], epoch_at: Mapping[float, float]
) -> tuple[list[float], list[float]] | None:
    """The points per epoch (each epoch's last value: its end), or None when some point
    carries no epoch (then the chart plots per step)."""
    last: dict[float, float] = {}
    for step, value in points:
        if step not in epoch_at:
            return None
        last[epoch_at[step]] = value  # later points of an epoch replace earlier ones
    xs = sorted(last)
    return xs, [last[x] for x in xs]


def charts(series: Series, epochs: Epochs | None = None, limit: int = MAX_CHARTS) -> list[Chart]:
    """The charts worth drawing: one per metric family with a curve of >= 2 points.

    A family's validation curves share its chart (dotted) while at most ``PAIRED_PHASES``
    phases report it; with more (five arms of a comparison) train and validation get a
    chart each, ``val_*`` after the others, so ten curves do not tangle in one box.
    Loss first, then accuracy, then the other families in the order they were reported;
    at most ``limit``. The x axis is the epoch when every point of the chart's curves
    carries one, else the step."""
    epochs = epochs or {}
    members: dict[str, list[tuple[str, str, bool]]] = {}  # family -> (phase, metric, val)
    for phase, metrics in series.items():
        for metric in metrics:
            family, validation = family_of(metric)
            members.setdefault(family, []).append((phase, metric, validation))
    groups: list[tuple[str, list[tuple[str, str, bool]], bool]] = []  # title, curves, later
    for family, curves in members.items():
        phases = {phase for phase, _, _ in curves}
        train = [c for c in curves if not c[2]]
        val = [c for c in curves if c[2]]
        if len(phases) <= PAIRED_PHASES or not train or not val:
            groups.append((family, curves, not train))
        else:
            groups += [(family, train, False), (f"val_{family}", val, True)]

    def rank(group: tuple[str, list[tuple[str, str, bool]], bool]) -> tuple[int, int]:
        family = family_of(group[0])[0]
        return (int(group[2]), PRIORITY.index(family) if family in PRIORITY else len(PRIORITY))

    groups.sort(key=rank)  # stable: the other families keep the order they came in
    out: list[Chart] = []
    for title, curves, _ in groups:
        per_epoch = []
        for phase, metric, _ in curves:
            epoch_at = {step: epoch for step, epoch in epochs.get(phase, ())}
            per_epoch.append(_by_epoch(series[phase][metric], epoch_at))
        use_epoch = all(p is not None for p in per_epoch)
        chart = Chart(title, "epoch" if use_epoch else "step")
        several = len({p for p, _, _ in curves}) > 1
        one_metric = len({m for _, m, _ in curves}) == 1
        for (phase, metric, validation), by_epoch in zip(curves, per_epoch, strict=True):
            if by_epoch is not None and use_epoch:
                x, y = by_epoch
            else:
                points = series[phase][metric]
                x, y = [p[0] for p in points], [p[1] for p in points]
            if several and phase:
                label = phase if one_metric else f"{phase} {metric}"
            else:
                label = metric
            chart.lines.append(Line(label, phase, validation, x, y))
        if any(len(line.x) >= 2 for line in chart.lines):  # a single point is no curve
            out.append(chart)
        if len(out) == limit:
            break
    return out


def _ticks(low: float, high: float, first: float | None = None, most: int = 8) -> list[float]:
    """Round x ticks (1, 2 or 5 times a power of ten apart, whole numbers for epochs and
    steps): "83.3" on a step axis reads worse than "100"."""
    if high <= low:
        return [low]
    raw = (high - low) / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0)  # steps and epochs are whole numbers
    start = math.ceil(low / step) * step
    if first is not None and first < start:
        start = first if first + step * 0.5 < start else start
    ticks, t = [], start
    while t <= high + 1e-9:
        ticks.append(t)
        t = (math.floor(t / step) + 1) * step if t % step else t + step
    return ticks


def _log_scale(chart: Chart) -> bool:
    """A loss that falls by more than ``LOG_RATIO`` (or one arm far above the others, like
    a loss with its weight penalty) reads on a log axis; a flat axis hides the rest."""
    values = [v for line in chart.lines for v in line.y]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_RATIO


def render(
    series: Series,
    epochs: Epochs | None = None,
    *,
    width: int = 80,
    height: int = HEIGHT,
    color: bool = True,
) -> str:
    """The charts as text ("" when there is nothing worth drawing), ``width`` columns wide.

    The legend goes under each chart, not inside it: with three arms and their validation
    curves a boxed legend would hide half of an 80-column plot."""
    drawn = charts(series, epochs)
    if not drawn:
        return ""
    import plotext as plt  # only here: the commands that draw nothing never load it

    width = max(40, min(width, MAX_WIDTH))
    figure = plt.figure
    parts = []
    for chart in drawn:
        figure.clear()
        figure.plot_size(width, height)
        figure.theme("colorless")  # the terminal's own colours; only the curves are coloured
        figure.legend(False)
        phases = list(dict.fromkeys(line.phase for line in chart.lines))
        legend = []
        # Dotted validation only beside its training curve; a val_* chart of its own is solid.
        mixed = len({line.validation for line in chart.lines}) > 1
        for line in chart.lines:
            name = COLORS[phases.index(line.phase) % len(COLORS)]
            dotted = mixed and line.validation
            symbol = VAL_MARKER if dotted else TRAIN_MARKER
            marker = plt.marker(symbol, name) if color else plt.marker(symbol)
            figure.draw(figure.signal(line.x, line.y, marker=marker).lines())
            key = f"{VAL_KEY if dotted else TRAIN_KEY} {line.label}"
            legend.append(f"\x1b[{ANSI[name]}m{key}\x1b[0m" if color else key)
        figure.title(chart.family + (" (log scale)" if _log_scale(chart) else ""))
        if _log_scale(chart):
            figure.ruler("y").scale("log")
        figure.label(chart.xlabel)
        xs = [x for line in chart.lines for x in line.x]
        ticks = _ticks(min(xs), max(xs), first=1 if chart.xlabel == "epoch" else None)
        figure.ruler("x").ticks(ticks, [f"{t:g}" for t in ticks])
        text = figure.build().string(colorless=not color).rstrip()
        parts.append(text + "\n" + _wrap(legend, width))
    figure.clear()
    return "\n".join(parts)


def _wrap(entries: list[str], width: int) -> str:
    """Legend entries, as many per line as fit in ``width`` columns (ANSI codes not counted)."""
    lines: list[str] = []
    current, used = "", 0
    for entry in entries:
        visible = len(re.sub(r"\x1b\[[0-9;]*m", "", entry))
        if current and used + 3 + visible > width:
            lines.append(current)
            current, used = "", 0
        current, used = (
            (current + "   " + entry, used + 3 + visible) if current else (entry, visible)
        )
    if current:
        lines.append(current)
    return "\n".join("  " + line for line in lines)


def show(series: Series, epochs: Epochs | None = None, *, stream: TextIO | None = None) -> bool:
    """Print the charts on ``stream`` (stdout) when it is a terminal; whether it did.

    A pipe or a file never gets a chart: what a script reads from ``aiprep run`` stays the
    report alone."""
    stream = stream or sys.stdout
    if not stream.isatty():
        return False
    text = render(series, epochs, width=shutil.get_terminal_size().columns - 1)
    if not text:
        return False
    stream.write("\n" + text + "\n")
    stream.flush()
    return True
