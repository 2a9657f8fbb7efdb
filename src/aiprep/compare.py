"""Compare an attempt's array with the expected one, and say how they differ.

For checks of the form "the candidate's function gives the same numbers as the
reference": the measured value is the largest absolute difference (``inf`` when the
shapes differ, so the check fails instead of crashing on broadcasting), and the detail
names what a candidate needs to fix: shape and dtype against the expected ones, how many
values are off, and the first and the largest differing values with their indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Comparison:
    max_abs_diff: float  # inf: shapes differ, or a value is NaN/inf where it should not be
    detail: str


def compare(got: Any, expected: Any, atol: float) -> Comparison:
    """``got`` against ``expected`` (array-likes); values within ``atol`` count as equal."""
    g, e = np.asarray(got), np.asarray(expected)
    notes = [] if g.dtype == e.dtype else [f"dtype {g.dtype}, expected {e.dtype}"]
    if g.shape != e.shape:
        notes.insert(0, f"shape {g.shape}, expected {e.shape}")
        return Comparison(math.inf, "; ".join(notes))
    try:
        diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
    except (TypeError, ValueError):
        return Comparison(math.inf, "; ".join([*notes, "not numbers"]))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN never counts as close
    off = np.argwhere(~(diff <= atol))
    if off.size == 0:
        notes.append(f"all {g.size} values within {atol:g}")
        return Comparison(float(diff.max()) if g.size else 0.0, "; ".join(notes))
    first = tuple(int(i) for i in off[0])
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    notes.append(f"{len(off)} of {g.size} values differ by more than {atol:g}")
    notes.append(f"first at {_at(g, e, first)}")
    if worst != first:
        notes.append(f"largest at {_at(g, e, worst)}")
    return Comparison(float(diff.max()), "; ".join(notes))


def _at(g: np.ndarray, e: np.ndarray, index: tuple[int, ...]) -> str:
    return f"{list(index)}: got {float(g[index]):.6g}, expected {float(e[index]):.6g}"
