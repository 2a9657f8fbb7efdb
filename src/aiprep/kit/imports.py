"""What a solution's code depends on: the solution and ``aiprep`` modules it imports, at any
depth (read from the source with ``ast``, nothing imported). ``aiprep smoke --changed`` uses
it to pick the solutions a change can affect, ``memo`` to key its cache on the code."""

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
