"""Helpers for debug questions, which run a seed's broken snippet and record how it fails."""

from __future__ import annotations


def raised(error: BaseException | None, kind: type[BaseException], words: str) -> float:
    """1.0 when ``error`` is a ``kind`` whose message contains ``words``, else 0.0.

    The value of a check such as ``"original raises TypeError" == 1``.
    """
    return float(isinstance(error, kind) and words in str(error))


def describe(error: BaseException | None, words: str) -> str:
    """The exception type and the line of its (often long, Keras-wrapped) message naming
    ``words``: a metric that shows what the original code really raised."""
    lines = [line.strip() for line in str(error).splitlines() if words in line]
    return f"{type(error).__name__}: {lines[-1] if lines else error}"
