"""The solution kit: everything a solution module (``solutions/<topic>/<slug>.py``) imports
from aiprep, and nothing else. The kit never imports the app (cli, runner, quiz, store,
exporters); ``tests/test_kit.py`` holds it to that.

Public API (import the submodule, or the name from ``aiprep.kit``):

Reporting (``aiprep.kit.report``)
    ``SolutionReport(solution)``: what ``check(impl)`` returns.
        ``.metric(name, value, unit="")``: a measurement worth showing.
        ``.timed(name)``: ``with`` it around training to record its wall time as a metric.
        ``.check(name, value, op, threshold, detail="")``: the candidate's verdict; the check
        computes ``value op threshold`` itself, and NaN never passes.
        ``.check_close(name, comparison, detail="")``: the check that a ``compare`` holds.
        ``.seed_fact(...)``: the same form, about a seed's own code, outside the verdict.
    ``print_check_of(__name__)``: ``python -m solutions.<topic>.<slug>`` prints the report.

Progress events (``aiprep.kit.events``)
    ``start(phase, total, unit)``, ``advance(phase, completed, **values)``, ``finish(phase)``,
    ``keras_callback(phase)``: training progress, shown live by ``aiprep run`` and ``verify``.

Comparisons and measurements
    ``compare.compare(got, expected, atol, rtol=0) -> Comparison`` (``aiprep.kit.compare``): the
    ``|a - b| <= atol + rtol * |b|`` rule with the largest difference, for float checks.
    ``accuracy(model, x, y)`` (``aiprep.kit.metrics``): arg-max accuracy of a Keras-like model.

Keeping work across runs (``aiprep.kit.memo``)
    ``@memo``: a function of plain values (never ``impl``) whose pickled result, e.g. a base
    model's or a teacher's trained weights, is kept on disk keyed by its arguments and the
    code it imports; the wrong answers and a candidate's next ``verify`` reuse it.

Devices (``aiprep.kit.devices``)
    ``use_logical_cpus(n)``: n logical CPU devices standing in for GPUs (distributed
    solutions; before TensorFlow initializes its devices).

Processes a check starts (``aiprep.kit.zygote``)
    ``Zygote(preload, log=)``: forks fresh processes (``.start("module:function", args,
    log=, env=)`` -> ``Forked`` with ``.poll()``, ``.wait()``, ``.kill()``) from one
    interpreter that imported ``preload`` once; ``die_with_parent(pid)`` in such a process.

Harness training (``aiprep.kit.fit``)
    ``fit_classifier(model, x, y, epochs=, batch_size=, phase=, learning_rate=1e-3)``: the
    plain Adam + sparse cross-entropy fit of what a check trains around the answer (a
    teacher, a baseline, a pre-trained backbone), progress shown. Answers train themselves.

Debug questions (``aiprep.kit.seed_code``)
    ``run_seed(source, namespace, replace=[(old, new)])`` -> ``SeedRun(error, namespace)``:
    the seed's code run as printed (except the named substitutions), what it raised and
    the names it left; ``SolutionReport.expect_raise(name, error, kind, words, detail)``
    records "it raises kind(...words...)" as a seed fact. ``raised(error, kind, words)``
    and ``describe(error, words)`` are the pieces.

Synthetic data (``aiprep.kit.synthetic``)
    Seeded generators: ``digit_images``, ``class_images``, ``ring_of_gaussians``,
    ``utterance_split``, ``negation_sentences``, ``topic_sentences``, ``word_vocab``, ...;
    ``Split`` (train/test arrays), ``shuffled_labels``, ``rng``.

Nothing here imports TensorFlow at module level (``events.keras_callback`` and
``devices.use_logical_cpus`` import it when called), so the app can read reports without
paying for it. Names are loaded lazily:
``import aiprep.kit`` costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and `smoke --changed`'s import graph; loaded lazily
    from aiprep.kit import (
        compare,
        devices,
        events,
        fit,
        imports,
        memo,
        metrics,
        report,
        seed_code,
        synthetic,
    )
    from aiprep.kit.compare import Comparison
    from aiprep.kit.devices import use_logical_cpus
    from aiprep.kit.fit import fit_classifier
    from aiprep.kit.metrics import accuracy
    from aiprep.kit.report import Check, Metric, SolutionReport, print_check_of
    from aiprep.kit.seed_code import SeedRun, describe, raised, run_seed

_EXPORTS = {
    "SolutionReport": "report",
    "Check": "report",
    "Metric": "report",
    "print_check_of": "report",
    "Comparison": "compare",
    "use_logical_cpus": "devices",
    "accuracy": "metrics",
    "fit_classifier": "fit",
    "raised": "seed_code",
    "describe": "seed_code",
    "run_seed": "seed_code",
    "SeedRun": "seed_code",
}
_SUBMODULES = (
    "report",
    "events",
    "compare",
    "devices",
    "fit",
    "imports",
    "memo",
    "metrics",
    "seed_code",
    "synthetic",
)

__all__ = [
    "Check",
    "Comparison",
    "Metric",
    "SeedRun",
    "SolutionReport",
    "accuracy",
    "compare",
    "describe",
    "devices",
    "events",
    "fit",
    "fit_classifier",
    "imports",
    "memo",
    "metrics",
    "print_check_of",
    "raised",
    "report",
    "run_seed",
    "seed_code",
    "synthetic",
    "use_logical_cpus",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"aiprep.kit.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"aiprep.kit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'aiprep.kit' has no attribute {name!r}")
