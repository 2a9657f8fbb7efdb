"""Child side of runner.py: ``python -m aiprep._child ROOT MODULE EVENTS_FD [ATTEMPT]``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from aiprep import progress


def _load_attempt(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("attempt", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["attempt"] = module
    spec.loader.exec_module(module)
    return module


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


def main() -> None:
    root, module_name, fd = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    attempt = Path(sys.argv[4]).resolve() if len(sys.argv) > 4 else None
    progress.connect(fd)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3":
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(root))
    solution_file = root / "solutions" / Path(*module_name.split("."))
    try:
        solution = importlib.import_module(f"solutions.{module_name}")
        impl = solution if attempt is None else _load_attempt(attempt)
        report = solution.check(impl)
        progress.emit("report", report=report.to_dict())
    except BaseException as e:  # report every failure, then exit non-zero
        traceback.print_exc()
        frames = traceback.extract_tb(e.__traceback__)
        prefer = [p.resolve() for p in (attempt, solution_file.with_suffix(".py")) if p]
        if isinstance(e, SyntaxError) and e.filename:
            where, message = _display(Path(e.filename), e.lineno), str(e.msg)
        else:
            where = _where(frames, prefer)
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        progress.emit("error", message=f"{where}: {type(e).__name__}: {message}".rstrip(": "))
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip TensorFlow's slow (and occasionally hanging) interpreter teardown


if __name__ == "__main__":
    main()
