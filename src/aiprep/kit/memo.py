"""Keep what a check computes around the answer (a trained base model, a teacher, a control
run) from one run to the next, so the wrong answers, the starter and a candidate's next
``verify`` do not train it again.

    @memo
    def trained_teacher(seed: int, epochs: int) -> list[np.ndarray]:
        ...  # builds and trains the teacher; returns its weights

Only for work that does not depend on the candidate's answer: the arguments must be plain
values (int, float, str, bool, None, and tuples of them), so ``impl`` cannot be passed in,
and the result must pickle (arrays, lists of weights, numbers; not a Keras model). The
function must seed whatever it draws from (a cached call draws nothing, so code after it
must not rely on the random state it leaves).

The cache key is the function's module and name, its arguments, a digest of the source of
its module and of every solution and aiprep module it imports at any depth
(``kit.imports``), and the TensorFlow and NumPy versions. Not the oneDNN setting: weights
trained with either kernel set are an equally valid trained model (rounding differs, and
training can carry that further), and the runs of the reference comparisons under the
other setting reuse them. An entry is a pickle in ``$AIPREP_MEMO_DIR`` (default
``$XDG_CACHE_HOME/aiprep/memo``, i.e. ``~/.cache/aiprep/memo``), written atomically, so runs
side by side share it; entries unused for 30 days are removed. ``AIPREP_MEMO=0`` turns it
off: every call computes. ``AIPREP_MEMO=write`` computes each entry once per process
(ignoring what is on disk) and writes it; later calls in the same process with the same key
get a copy of it: ``aiprep smoke`` runs so, for compute times a fresh machine pays (where a
check calls the same function twice, as a fresh machine would after the first call wrote
the entry) and entries the tests read.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_PLAIN = (int, float, str, bool, type(None))
_MAX_AGE_S = 30 * 24 * 3600
_computed_here: dict[str, bytes] = {}  # AIPREP_MEMO=write: entry -> the pickle this process made


def memo_dir() -> Path | None:
    """Where entries live; None when ``AIPREP_MEMO=0``."""
    if os.environ.get("AIPREP_MEMO", "1") == "0":
        return None
    override = os.environ.get("AIPREP_MEMO_DIR")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "aiprep" / "memo"


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, tuple):
        for item in value:
            _check_plain(item, where)
    elif not isinstance(value, _PLAIN):
        raise TypeError(
            f"memo: {where} is a {type(value).__name__}; a memoized function takes plain "
            "values only (int, float, str, bool, None, tuples), never the candidate's answer"
        )


@functools.cache
def _code_digest(module: str) -> str:
    """The source of ``module`` and of the solution and aiprep modules it imports."""
    from aiprep.kit.imports import ImportGraph

    path = Path(sys.modules[module].__file__ or "").resolve()
    solutions = next((p for p in path.parents if p.name == "solutions"), path.parent)
    graph = ImportGraph(solutions)
    h = hashlib.sha256()
    for file in sorted({path} | graph.closure(path)):
        h.update(str(file).encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def _environment() -> str:
    import numpy as np  # every memoized function returns arrays

    tf = sys.modules.get("tensorflow")  # imported by every run; not loaded here for a key
    return repr((getattr(tf, "__version__", None), np.__version__))


def memo(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with its result kept on disk, keyed as the module docstring says."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        folder = memo_dir()
        if folder is None:
            return fn(*args, **kwargs)
        for i, value in enumerate(args):
            _check_plain(value, f"argument {i + 1} of {fn.__qualname__}")
        for name, value in kwargs.items():
            _check_plain(value, f"argument {name!r} of {fn.__qualname__}")
        key = hashlib.sha256(
            repr(
                (
                    fn.__module__,
                    fn.__qualname__,
                    args,
                    sorted(kwargs.items()),
                    _code_digest(fn.__module__),
                    _environment(),
                )
            ).encode()
        ).hexdigest()[:32]
        path = folder / f"{fn.__qualname__}-{key}.pkl"
        if str(path) in _computed_here:  # write mode, computed earlier in this process
            copy: R = pickle.loads(_computed_here[str(path)])
            return copy
        writing = os.environ.get("AIPREP_MEMO") == "write"
        if not writing:
            try:
                with open(path, "rb") as f:
                    cached: R = pickle.load(f)
                os.utime(path)  # still in use: not pruned
                return cached
            except (OSError, EOFError, pickle.UnpicklingError):
                pass  # not there (or unreadable): compute it
        result = fn(*args, **kwargs)
        data = _store(folder, path, result)
        if writing:
            _computed_here[str(path)] = data
        return result

    return wrapper


def _store(folder: Path, path: Path, result: Any) -> bytes:
    """Write ``result`` to ``path`` atomically and return its pickle; a full disk or a
    read-only home only costs the next run a recomputation."""
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise TypeError(
            f"memo: the result of {path.name.split('-')[0]} does not pickle ({e}); return "
            "arrays or lists of weights, not a model"
        ) from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        _prune(folder)
    except OSError:
        pass
    return data


def _prune(folder: Path) -> None:
    now = time.time()
    for entry in folder.iterdir():
        try:
            if now - entry.stat().st_mtime > _MAX_AGE_S:
                entry.unlink()
        except OSError:
            pass
