"""The run side of runner.py: ``run_check`` is what every forked run executes.

It imports the solution (and the candidate's attempt), checks the attempt's signatures,
runs ``check`` and sends progress events and the report as JSON lines over a pipe.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from aiprep.kit import events


def _load_attempt(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("attempt", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["attempt"] = module
    spec.loader.exec_module(module)
    return module


class AttemptMismatch(Exception):
    """The attempt does not define the answer's names with the reference's signatures."""


def _check_signatures(solution: ModuleType, attempt: ModuleType, path: Path) -> None:
    """Every name in ANSWER exists in the attempt and accepts the reference's parameters.

    Raised before any data is made, so a typo costs a second, not a training run. Extra
    parameters are fine when they have defaults.
    """
    for name in getattr(solution, "ANSWER", ()):
        theirs = getattr(attempt, name, None)
        if theirs is None:
            raise AttemptMismatch(
                f"{_display(path, 1)}: defines no {name!r} — the question needs "
                f"{', '.join(solution.ANSWER)} (`aiprep practice` writes a starter)"
            )
        try:
            want, got = inspect.signature(getattr(solution, name)), inspect.signature(theirs)
        except (TypeError, ValueError):
            continue
        if not _accepts(got, want):
            line = getattr(getattr(theirs, "__code__", None), "co_firstlineno", 1)
            raise AttemptMismatch(
                f"{_display(path, line)}: {name}{_plain(got)} does not match the question's "
                f"{name}{_plain(want)} — keep the starter's parameters"
            )


def _accepts(got: inspect.Signature, want: inspect.Signature) -> bool:
    params = list(got.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params) and any(
        p.kind is p.VAR_POSITIONAL for p in params
    ):
        return True  # (*args, **kwargs) takes anything
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    want_order = [p.name for p in want.parameters.values() if p.kind in positional]
    got_order = [p.name for p in params if p.kind in positional]
    if got_order[: len(want_order)] != want_order:
        return False  # the checks may pass arguments by position
    by_name = {p.name: p for p in params}
    for p in want.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in by_name:
            return False
        if p.kind is not p.KEYWORD_ONLY and by_name[p.name].kind is p.KEYWORD_ONLY:
            return False
    wanted = set(want.parameters)
    return all(
        p.name in wanted or p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in params
    )


def _plain(sig: inspect.Signature) -> str:
    """A signature without annotations: names and defaults are what must match."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def _where(tb: traceback.StackSummary, prefer: list[Path]) -> str:
    """file:line of the deepest frame in one of the ``prefer`` files, else the last frame."""
    if not tb:
        return "?"
    frame = next(
        (f for f in reversed(tb) if Path(f.filename).resolve() in prefer),
        tb[-1],
    )
    return _display(Path(frame.filename), frame.lineno)


def _display(path: Path, line: int | None) -> str:
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    return f"{path}:{line or 1}"


def _onednn() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (None: no TensorFlow, or
    it cannot tell). The default depends on the CPU (on, for one, where it has AVX-512;
    off on an AMD EPYC without it), and TF_ENABLE_ONEDNN_OPTS overrides it: the sum order,
    so the last bits of float results, follow it."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def run_check(root: Path, module_name: str, fd: int, attempt: Path | None = None) -> NoReturn:
    """Run ``solutions.<module_name>.check`` and send the report (or the error) to ``fd``.

    Exits the process: 0 when a report was sent, 1 on any failure. The report event also
    carries ``compute_s`` (the wall time of ``check`` itself), ``cpu_s`` (this process's
    CPU time, its threads and waited-for children included), ``onednn`` (``_onednn``) and
    ``tensorflow`` (whether TensorFlow was loaded by then).
    """
    events.connect(fd)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3":
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(root))
    solution_file = root / "solutions" / Path(*module_name.split("."))
    checking = False  # past loading: a traceback then helps to find the bug
    try:
        solution = importlib.import_module(f"solutions.{module_name}")
        impl = solution if attempt is None else _load_attempt(attempt)
        if attempt is not None:
            _check_signatures(solution, impl, attempt)
        checking = True
        start = time.perf_counter()
        report = solution.check(impl)
        compute = time.perf_counter() - start
        usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        cpu = sum(u.ru_utime + u.ru_stime for u in usage)
        events.emit(
            "report",
            report=report.to_dict(),
            compute_s=compute,
            cpu_s=cpu,
            onednn=_onednn(),
            tensorflow="tensorflow" in sys.modules,
        )
    except BaseException as e:  # report every failure, then exit non-zero
        if isinstance(e, AttemptMismatch):
            where_message = str(e)
        else:
            if checking or attempt is None:
                traceback.print_exc()
            if isinstance(e, SyntaxError) and e.filename:
                where, message = _display(Path(e.filename), e.lineno), str(e.msg)
            else:
                frames = traceback.extract_tb(e.__traceback__)
                prefer = [p.resolve() for p in (attempt, solution_file.with_suffix(".py")) if p]
                where = _where(frames, prefer)
                message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            where_message = f"{where}: {type(e).__name__}: {message}".rstrip(": ")
        events.emit("error", message=where_message)
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip TensorFlow's slow (and occasionally hanging) interpreter teardown
