"""What a solution's code depends on: the solution and ``aiprep`` modules it imports, at any
depth (read from the source with ``ast``, nothing imported). ``aiprep smoke --changed`` uses
it to pick the solutions a change can affect, ``memo`` to key its cache on the code, and the
runner to start a run without TensorFlow when the solution cannot load it (``may_load``)."""

from __future__ import annotations

import ast
from pathlib import Path


class ImportGraph:
    """The import graph of the files under ``solutions`` and the ``aiprep`` package."""

    def __init__(self, solutions: Path) -> None:
        self.package = Path(__file__).resolve().parents[1]  # the aiprep package
        self.solutions = solutions.resolve()
        self._deps: dict[Path, set[Path]] = {}

    def file_of(self, name: str) -> Path | None:
        """The file of module ``name`` (``solutions.x.y`` or ``aiprep.x``); None for others."""
        parts = name.split(".")
        if parts[0] == "solutions":
            base = self.solutions.joinpath(*parts[1:])
        elif parts[0] == "aiprep":
            base = self.package.joinpath(*parts[1:])
        else:
            return None
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def may_load(self, path: Path) -> set[str]:
        """The top-level packages that importing and running ``path`` may load: every import
        in it and in the solution files it imports, also inside functions (a check may
        import TensorFlow when it runs), and the module-level imports of the aiprep modules
        they import (aiprep imports what it needs lazily, inside the function that needs
        it: ``kit.events.keras_callback`` loads TensorFlow only when called). Imports under
        ``if TYPE_CHECKING`` never run and do not count."""
        seen: set[Path] = set()
        packages: set[str] = set()
        todo = [path.resolve()]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            in_package = current.is_relative_to(self.package)
            for name in _runtime_names(current, anywhere=not in_package):
                packages.add(name.split(".")[0])
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                    dep = self.file_of(".".join(parts[:depth]))
                    if dep is not None:
                        todo.append(dep.resolve())
        return packages

    def closure(self, path: Path) -> set[Path]:
        """The solution and aiprep files ``path`` imports, at any depth (itself excluded unless
        a cycle leads back), and the solution it declares ``BASED_ON``."""
        path = path.resolve()
        if path not in self._deps:
            self._deps[path] = set()
            found: set[Path] = set()
            for name in _imported_names(path):
                dep = self.file_of(name)
                if dep is not None and dep != path:
                    found.add(dep)
                    found |= self.closure(dep)
            self._deps[path] = found
        return self._deps[path]


def _imported_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
        elif (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "BASED_ON"
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            names.append(f"solutions.{node.value.value}")
    return names


def _runtime_names(path: Path, anywhere: bool) -> list[str]:
    """The modules ``path`` imports when it runs: with ``anywhere``, every import statement
    (functions and classes included), else those at module level (also inside ``try`` /
    ``if`` / ``with`` blocks); never those under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body
            todo += node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                todo += handler.body
        elif isinstance(node, ast.With):
            todo += node.body
        elif anywhere and isinstance(node, ast.stmt):
            todo += list(ast.iter_child_nodes(node))
    return names
