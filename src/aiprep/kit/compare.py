"""Compare an attempt's array with the expected one, and say how they differ.

For checks of the form "the candidate's function gives the same numbers as the
reference". Two values count as equal when ``|got - expected| <= atol + rtol * |expected|``
(NumPy's ``allclose`` rule): the relative part follows the values' magnitude, so the
bound holds for float32 on any CPU (another vendor, oneDNN on or off), and the absolute
part covers values near zero. Choose ``rtol`` from float32's precision (eps = 1.2e-7) and
the depth of the computation: ~1e-5 after a few matmuls, ~1e-4 after a training run.

The check's value is ``tolerance_used``: the largest ``|got - expected| / (atol + rtol *
|expected|)`` over the values, so "<= 1" is the check, and a wrong answer shows by how many
times it misses (``inf`` when the shapes differ, so the check fails instead of crashing on
broadcasting). The detail names what a candidate needs to fix: shape and dtype against the
expected ones, how many values are off, and the first and the largest differing values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Comparison:
    max_abs_diff: float  # inf: shapes differ, or a value is NaN/inf where it should not be
    tolerance_used: float  # max |got - expected| / (atol + rtol * |expected|); <= 1: equal
    detail: str


def compare(got: Any, expected: Any, atol: float, rtol: float = 0.0) -> Comparison:
    """``got`` against ``expected`` (array-likes), equal within ``atol + rtol * |expected|``."""
    if atol < 0 or rtol < 0 or atol + rtol == 0:
        raise ValueError("give a positive atol or rtol (both >= 0)")
    g, e = np.asarray(got), np.asarray(expected)
    notes = [] if g.dtype == e.dtype else [f"dtype {g.dtype}, expected {e.dtype}"]
    if g.shape != e.shape:
        notes.insert(0, f"shape {g.shape}, expected {e.shape}")
        return Comparison(math.inf, math.inf, "; ".join(notes))
    g, e = np.atleast_1d(g), np.atleast_1d(e)  # a scalar is one value, at index [0]
    try:
        g64, e64 = g.astype(np.float64), e.astype(np.float64)
    except (TypeError, ValueError):
        return Comparison(math.inf, math.inf, "; ".join([*notes, "not numbers"]))
    diff = np.abs(g64 - e64)
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN never counts as close
    allowed = atol + rtol * np.abs(e64)
    used = np.where(np.isfinite(allowed), diff / allowed, np.inf)
    rule = f"{atol:g}" if rtol == 0 else f"{atol:g} + {rtol:g}·|expected|"
    if g.size == 0:
        return Comparison(0.0, 0.0, "; ".join([*notes, "no values"]))
    off = np.argwhere(~(used <= 1.0))
    max_diff, max_used = float(diff.max()), float(used.max())
    if off.size == 0:
        notes.append(f"all {g.size} values within {rule}")
        return Comparison(max_diff, max_used, "; ".join(notes))
    first = tuple(int(i) for i in off[0])
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(used)), used.shape))
    notes.append(f"{len(off)} of {g.size} values differ by more than {rule}")
    notes.append(f"first at {_at(g, e, first)}")
    if worst != first:
        notes.append(f"largest at {_at(g, e, worst)}")
    return Comparison(max_diff, max_used, "; ".join(notes))


def _at(g: np.ndarray, e: np.ndarray, index: tuple[int, ...]) -> str:
    return f"{list(index)}: got {float(g[index]):.6g}, expected {float(e[index]):.6g}"
