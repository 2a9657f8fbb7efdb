"""The report every solution's ``check(impl)`` returns: measured metrics and named checks.

A check stores the measured value, the comparison and the threshold, and computes
``passed`` itself, so a solution cannot declare a check passed without measuring it.

Checks are the candidate's verdict: each responds to the code under test. What a debug
solution shows about the seed's own code ("the original raises TypeError", "the seed's
pruned model has sparsity 0") is recorded with ``seed_fact``: the same measured-value form,
shown in its own section, required to hold for the reference run (tests and smoke), but
never part of ``passed``: a candidate's code cannot change it, and a library upgrade that
rewords an error must not fail a correct candidate.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, SupportsFloat

from aiprep.kit import events

if TYPE_CHECKING:
    from aiprep.kit.compare import Comparison

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Metric:
    """A measured number (or short label) worth showing, with its unit."""

    name: str
    value: float | int | str
    unit: str = ""


@dataclass(frozen=True)
class Check:
    """A claim the solution proves: ``value op threshold``."""

    name: str
    value: float
    op: str
    threshold: float
    passed: bool
    detail: str = ""

    @property
    def rule(self) -> str:
        return f"{self.op} {_fmt(self.threshold)}"


@dataclass
class SolutionReport:
    """Metrics and checks of one run of a solution's ``check``."""

    solution: str
    metrics: list[Metric] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seed_facts: list[Check] = field(default_factory=list)  # about the seed, not the verdict

    def metric(self, name: str, value: SupportsFloat | str, unit: str = "") -> None:
        """Record a measurement (NumPy and TensorFlow scalars are stored as plain floats)."""
        stored = value if isinstance(value, str | int) else float(value)
        self.metrics.append(Metric(name, stored, unit))

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the wall time of the ``with`` block as metric ``name``, in seconds.

        Nothing is recorded when the block raises."""
        start = time.perf_counter()
        yield
        self.metric(name, time.perf_counter() - start, "s")

    def check(
        self, name: str, value: SupportsFloat, op: str, threshold: float, detail: str = ""
    ) -> bool:
        """Record the check ``value op threshold`` and return whether it holds.

        A NaN value never passes.
        """
        found = _measure(name, value, op, threshold, detail)
        self.checks.append(found)
        events.emit("check", **asdict(found))  # lets a runner stop at a deciding failure
        return found.passed

    def check_close(self, name: str, comparison: Comparison, detail: str = "") -> bool:
        """Record the check that ``comparison`` (from :func:`aiprep.kit.compare.compare`)
        holds: its ``tolerance_used`` is <= 1, the allclose rule."""
        return self.check(name, comparison.tolerance_used, "<=", 1, detail)

    def seed_fact(
        self, name: str, value: SupportsFloat, op: str, threshold: float, detail: str = ""
    ) -> bool:
        """Record ``value op threshold`` about the seed's code, outside the verdict.

        For what the reference run shows about the broken original (it raises, it learns
        nothing): the candidate's code cannot change it, so it is not a check.
        """
        found = _measure(name, value, op, threshold, detail)
        self.seed_facts.append(found)
        return found.passed

    def expect_raise(
        self,
        name: str,
        error: BaseException | None,
        kind: type[BaseException],
        words: str,
        detail: str = "",
    ) -> bool:
        """The seed fact "``name``": ``error`` (what the seed's code raised, from
        ``run_seed``) is a ``kind`` whose message contains ``words``. Also records the
        metric "``name``: raised" with the exception's type and the line naming ``words``.
        """
        from aiprep.kit.seed_code import describe, raised

        self.metric(f"{name}: raised", describe(error, words) if error else "nothing")
        return self.seed_fact(name, raised(error, kind, words), "==", 1, detail)

    @property
    def passed(self) -> bool:
        """The verdict: at least one check, and every check holds (seed facts aside)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def seed_facts_hold(self) -> bool:
        """Every fact about the seed holds: required of the reference run only."""
        return all(c.passed for c in self.seed_facts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "solution": self.solution,
            "passed": self.passed,
            "metrics": [asdict(m) for m in self.metrics],
            "checks": [asdict(c) for c in self.checks],
            "seed_facts": [asdict(c) for c in self.seed_facts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SolutionReport:
        return cls(
            solution=data["solution"],
            metrics=[Metric(**m) for m in data["metrics"]],
            checks=[Check(**c) for c in data["checks"]],
            seed_facts=[Check(**c) for c in data.get("seed_facts", [])],
        )


def _measure(name: str, value: SupportsFloat, op: str, threshold: float, detail: str) -> Check:
    """``value op threshold`` as a Check whose verdict is computed here; NaN never passes."""
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; use one of {', '.join(_OPS)}")
    number, threshold = float(value), float(threshold)
    passed = not math.isnan(number) and _OPS[op](number, threshold)
    return Check(name, number, op, threshold, passed, detail)


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.4g}"


def format_value(x: float | int | str) -> str:
    """Show a metric or check value compactly (4 significant digits)."""
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return _fmt(x) if x == int(x) else f"{x:.4g}"


def print_check_of(module_name: str) -> None:
    """``python -m solutions.<topic>.<slug>``: run the module's ``check`` on itself, print JSON.

    Each solution ends with ``if __name__ == "__main__": print_check_of(__name__)``;
    ``aiprep run`` is the richer way to run one (child process, progress, tables).
    """
    import json
    import sys

    module = sys.modules[module_name]
    report = module.check(module)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
