"""Array comparisons for checks: a value that fails properly and a detail that helps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aiprep.kit.compare import compare


def test_equal_arrays_pass_with_their_size() -> None:
    c = compare(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32), atol=1e-6)
    assert c.max_abs_diff == 0.0 and c.tolerance_used == 0.0
    assert c.detail == "all 6 values within 1e-06"


def test_the_first_differing_value_is_named() -> None:
    expected = np.zeros((2, 3), np.float32)
    got = expected.copy()
    got[1, 2], got[0, 1] = 0.5, 0.25
    c = compare(got, expected, atol=1e-3)
    assert c.max_abs_diff == 0.5
    assert c.tolerance_used == pytest.approx(500.0)
    assert "2 of 6 values differ by more than 0.001" in c.detail
    assert "first at [0, 1]: got 0.25, expected 0; largest at [1, 2]: got 0.5" in c.detail


def test_the_relative_part_follows_the_magnitude() -> None:
    expected = np.array([100.0, 1e-3, 0.0], np.float32)
    # One float32 ulp at 100 is 7.6e-6: more than a plain atol of 1e-6 allows.
    got = np.nextafter(expected, np.float32(np.inf))
    assert compare(got, expected, atol=1e-6).tolerance_used > 1
    close = compare(got, expected, atol=1e-6, rtol=1e-5)
    assert close.tolerance_used <= 1
    assert "within 1e-06 + 1e-05·|expected|" in close.detail
    far = compare(expected + 0.5, expected, atol=1e-6, rtol=1e-5)
    assert far.tolerance_used > 400  # a wrong answer misses by orders of magnitude


def test_a_shape_or_dtype_mismatch_is_said_and_fails() -> None:
    c = compare(np.zeros((4, 1)), np.zeros(4, np.float32), atol=1e-3)
    assert math.isinf(c.max_abs_diff) and math.isinf(c.tolerance_used)
    assert c.detail == "shape (4, 1), expected (4,); dtype float64, expected float32"


def test_nan_never_counts_as_close() -> None:
    c = compare([np.nan, 1.0], [np.nan, 1.0], atol=1.0, rtol=1.0)
    assert math.isinf(c.max_abs_diff) and math.isinf(c.tolerance_used)
    assert "first at [0]: got nan, expected nan" in c.detail


def test_non_numbers_fail() -> None:
    c = compare(np.array(["a"], dtype=object), np.array([1.0]), atol=1.0)
    assert math.isinf(c.max_abs_diff)


def test_a_zero_tolerance_is_refused() -> None:
    with pytest.raises(ValueError):
        compare([1.0], [1.0], atol=0.0)


def test_a_scalar_that_differs_is_said_to_differ() -> None:
    c = compare(0.5126, 0.563, atol=1e-6)
    assert c.tolerance_used == pytest.approx(0.0504 / 1e-6)
    assert "1 of 1 values differ by more than 1e-06; first at [0]: got 0.5126" in c.detail
