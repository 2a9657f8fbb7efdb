"""The solution kit (``aiprep.kit``) stands alone: it never imports the app, and importing
it costs no TensorFlow."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiprep.kit

KIT = Path(aiprep.kit.__file__).parent


def _aiprep_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {n for n in names if n == "aiprep" or n.startswith("aiprep.")}


def test_the_kit_never_imports_the_app() -> None:
    outside = {
        str(path.relative_to(KIT)): sorted(bad)
        for path in sorted(KIT.rglob("*.py"))
        if (bad := {n for n in _aiprep_imports(path) if not n.startswith("aiprep.kit")})
    }
    assert not outside, f"the kit imports the app: {outside}"


def test_every_public_name_of_the_kit_resolves() -> None:
    for name in aiprep.kit.__all__:
        assert getattr(aiprep.kit, name) is not None, name


def test_solutions_import_only_the_kit_from_aiprep() -> None:
    solutions = Path(__file__).parents[1] / "solutions"
    outside = {
        str(path.relative_to(solutions)): sorted(bad)
        for path in sorted(solutions.rglob("*.py"))
        if (bad := {n for n in _aiprep_imports(path) if not n.startswith("aiprep.kit")})
    }
    assert not outside, f"a solution imports the app: {outside}"


def test_importing_the_kit_loads_no_tensorflow() -> None:
    code = (
        "import sys; import aiprep.kit; from aiprep.kit import SolutionReport, events, "
        "synthetic; assert 'tensorflow' not in sys.modules, 'tensorflow'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_run_seed_runs_the_code_as_printed_and_records_what_it_raised() -> None:
    from aiprep.kit import SolutionReport, run_seed

    seed = "import numpy as np\nx = data * 2\nprint('noise')\ny = x.reshape(3)\n"
    run = run_seed(seed, {"data": [1, 2]}, replace=[("import numpy as np\n", "")])
    assert isinstance(run.error, AttributeError) and run.namespace["x"] == [1, 2, 1, 2]
    report = SolutionReport("t.seed")
    assert report.expect_raise(
        "original raises AttributeError", run.error, AttributeError, "reshape"
    )
    assert not report.expect_raise("original raises TypeError", run.error, TypeError, "reshape")
    assert [f.passed for f in report.seed_facts] == [True, False]
    assert report.metrics[0].value == "AttributeError: 'list' object has no attribute 'reshape'"
    assert not report.checks  # facts about the seed are never the candidate's verdict
    clean = run_seed("y = 1\n")
    assert clean.error is None and clean.namespace["y"] == 1


def test_run_seed_refuses_a_substitution_that_does_not_apply() -> None:
    import pytest

    from aiprep.kit import run_seed

    with pytest.raises(ValueError, match="is not in the seed's code"):
        run_seed("x = 1\n", replace=[("import tensorflow as tf\n", "")])


def test_timed_records_the_blocks_wall_time_and_check_close_holds_a_comparison() -> None:
    from aiprep.kit.compare import compare
    from aiprep.kit.report import SolutionReport

    report = SolutionReport("x")
    with report.timed("train wall time"):
        sum(range(1000))
    (metric,) = report.metrics
    assert metric.name == "train wall time" and metric.unit == "s" and metric.value >= 0
    try:
        with report.timed("never finished"):
            raise ValueError
    except ValueError:
        pass
    assert [m.name for m in report.metrics] == ["train wall time"]  # a raising block: none
    assert report.check_close("equal", compare([1.0, 2.0], [1.0, 2.0 + 1e-9], atol=1e-6))
    assert not report.check_close("far", compare([1.0], [2.0], atol=1e-6))
    assert [c.op for c in report.checks] == ["<=", "<="] and not report.passed


def _memoized(calls: list[int]) -> Any:
    from aiprep.kit.memo import memo

    @memo
    def weights(seed: int, shape: tuple[int, int] = (2, 3)) -> list[Any]:
        calls.append(seed)
        import numpy as np

        return [np.full(shape, seed, np.float32)]

    return weights


def test_memo_computes_once_per_arguments_and_code_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import numpy as np

    monkeypatch.setenv("AIPREP_MEMO_DIR", str(tmp_path / "memo"))
    calls: list[int] = []
    weights = _memoized(calls)
    first = weights(1)
    again = weights(1)
    assert calls == [1] and np.array_equal(first[0], again[0])  # the second read from disk
    assert weights(2)[0][0, 0] == 2 and weights(1, (1, 1))[0].shape == (1, 1)
    assert calls == [1, 2, 1]  # other arguments: computed
    assert len(list((tmp_path / "memo").glob("*.pkl"))) == 3
    monkeypatch.setenv("AIPREP_MEMO", "write")  # as smoke runs: compute, and write for others
    weights(1)  # on disk already: computed again all the same (what a fresh machine pays)
    first_here = weights(3)
    first_here[0][0, 0] = -1.0  # the caller's copy: the next call gets its own
    again_here = weights(3)  # computed once in this process: not twice
    assert calls == [1, 2, 1, 1, 3] and len(list((tmp_path / "memo").glob("*.pkl"))) == 4
    assert again_here[0][0, 0] == 3
    monkeypatch.delenv("AIPREP_MEMO")

    # Another process sees the same entries (the key holds no id or address)...
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_kit\n"
        "calls = []; test_kit._memoized(calls)(1); print(calls)"
    )
    env = dict(os.environ, AIPREP_MEMO_DIR=str(tmp_path / "memo"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    # ...unless it is turned off.
    env["AIPREP_MEMO"] = "0"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[1]", out.stderr


def test_memo_refuses_what_could_carry_the_answer_and_results_that_do_not_pickle(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import pytest

    from aiprep.kit.memo import memo

    monkeypatch.setenv("AIPREP_MEMO_DIR", str(tmp_path))

    @memo
    def trained(impl: object) -> int:
        return 1

    with pytest.raises(TypeError, match="plain values only"):
        trained(object())

    @memo
    def model() -> Any:
        return lambda: None  # a model-like object that does not pickle

    with pytest.raises(TypeError, match="does not pickle"):
        model()


def test_memo_recomputes_once_the_code_changes(tmp_path: Path) -> None:
    """The key holds the source of the function's module and of the solution modules it
    imports: an edited helper is never answered from an entry the old code wrote."""
    topic = tmp_path / "solutions" / "topic"
    topic.mkdir(parents=True)
    for package in (topic.parent, topic):
        (package / "__init__.py").write_text("")
    (topic / "helper.py").write_text("FACTOR = 2\n")
    (topic / "mod.py").write_text(
        "from aiprep.kit.memo import memo\nfrom solutions.topic.helper import FACTOR\n\n"
        "@memo\ndef value(x: int) -> int:\n    print('computed')\n    return x * FACTOR\n"
    )
    env = dict(os.environ, AIPREP_MEMO_DIR=str(tmp_path / "memo"), PYTHONPATH=str(tmp_path))
    script = "from solutions.topic import mod; print(mod.value(3))"

    def run() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True
        )
        return out.stdout.decode().split() or [out.stderr.decode()]

    assert run() == ["computed", "6"]
    assert run() == ["6"]
    (topic / "helper.py").write_text("FACTOR = 5\n")
    assert run() == ["computed", "15"]


_PREBUILD_CHILD = r"""
import json
import numpy as np
import tf_keras as keras
from aiprep.kit.fit import fit_classifier

g = np.random.default_rng(0)
x, y = g.normal(size=(256, 8)).astype("float32"), g.integers(0, 3, 256)

def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16, "relu")(inputs)))

kit = model()
fit_classifier(kit, x, y, epochs=2, batch_size=64, phase="fit")
plain = model()  # the same fit without the slots made beforehand
plain.compile(keras.optimizers.Adam(1e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
plain.fit(x, y, batch_size=64, epochs=2, verbose=0)
legacy = model()  # Adam's fused update: its slots are made the legacy way
fit_classifier(legacy, x, y, epochs=1, batch_size=64, phase="fit",
               optimizer=keras.optimizers.legacy.Adam(1e-3))
print(json.dumps({
    "kit": kit.train_function.experimental_get_tracing_count(),
    "legacy": legacy.train_function.experimental_get_tracing_count(),
    "plain": plain.train_function.experimental_get_tracing_count(),
    "same": all(np.array_equal(a, b) for a, b in zip(kit.get_weights(), plain.get_weights())),
}))
"""


def test_fit_classifier_traces_its_train_function_once_and_trains_the_same() -> None:
    """Keras traces a train function twice when its first step makes the optimizer's slots
    and the metrics' trackers; ``fit_classifier`` makes them beforehand: one trace, the
    same weights."""
    import json

    from aiprep.runner import QUIET_ENV

    done = subprocess.run(
        [sys.executable, "-c", _PREBUILD_CHILD],
        capture_output=True,
        text=True,
        env={**os.environ, **QUIET_ENV},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"kit": 1, "legacy": 1, "plain": 2, "same": True}
