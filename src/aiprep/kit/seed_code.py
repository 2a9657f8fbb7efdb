"""Helpers for debug questions, which run a seed's broken snippet and record how it fails.

``run_seed`` executes the seed's code as printed (after named substitutions) and returns
what it raised and the names it left; ``SolutionReport.expect_raise`` records that as a
seed fact. ``raised`` and ``describe`` are the pieces, for a fact they do not cover.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SeedRun:
    """What running a seed's code did: the exception it raised (None: it ran through) and
    the namespace it left (its models, its variables), to measure what it built."""

    error: BaseException | None
    namespace: dict[str, Any] = field(default_factory=dict)


def run_seed(
    source: str,
    namespace: dict[str, Any] | None = None,
    *,
    replace: Iterable[tuple[str, str]] = (),
    filename: str = "<seed>",
    quiet: bool = True,
) -> SeedRun:
    """Execute a seed's ``source`` in ``namespace`` (what the snippet assumes exists: its
    data, an ``env``, ``tf`` as tf_keras's Keras 2, ...) and record what it raises.

    ``replace`` is a list of (old, new) substitutions made first, each of which must occur
    (e.g. ``("import tensorflow as tf\n", "")`` when ``tf`` is given in the namespace):
    the seed runs as printed except for what is named here. ``quiet`` silences its
    prints and progress bars. Any ``Exception`` is caught and returned, never raised.
    """
    for old, new in replace:
        if old not in source:
            raise ValueError(f"run_seed: {old!r} is not in the seed's code")
        source = source.replace(old, new)
    ns: dict[str, Any] = {} if namespace is None else namespace
    code = compile(source, filename, "exec")
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            exec(code, ns)  # the seed's code, on purpose
    except Exception as error:  # record whatever it raises
        return SeedRun(error, ns)
    return SeedRun(None, ns)


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
