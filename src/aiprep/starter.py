"""Practice starters: the reference solution's answer functions with their bodies removed.

Derived from the reference's source with ``ast``: for every name in the module's
``ANSWER``, the definition (decorators, signature, docstring, comments in the signature)
is copied and its body replaced by ``raise NotImplementedError``. Names the reference
imports from another solution are looked up there. The module's third-party imports
come along, and so do the constants the signatures' defaults use; the data, the
measuring and the checks stay in aiprep.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiprep.files import would_overwrite, write_atomic

if TYPE_CHECKING:
    from aiprep.bank import Bank, Record


class StarterError(Exception):
    """The reference cannot be turned into a starter (a bank defect, not a user error)."""


@dataclass
class _Module:
    path: Path
    source: str
    tree: ast.Module
    lines: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = self.source.splitlines()

    def segment(self, first: int, last: int) -> str:
        """Source lines ``first``..``last`` (1-based, inclusive)."""
        return "\n".join(self.lines[first - 1 : last])


def _load(root: Path, module: str) -> _Module:
    path = root / "solutions" / Path(*module.split(".")).with_suffix(".py")
    source = path.read_text(encoding="utf-8")
    return _Module(path, source, ast.parse(source, filename=str(path)))


def answer_names(tree: ast.Module) -> tuple[str, ...]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ANSWER" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return tuple(value)
    raise StarterError("the solution defines no ANSWER")


def _definitions(mod: _Module) -> dict[str, ast.AST]:
    """Top-level names -> the node binding them (def, class, assignment or import)."""
    found: dict[str, ast.AST] = {}
    for node in mod.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                found[alias.asname or alias.name] = node
    return found


def _stub(mod: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """The definition with its body replaced (for a class: each method's body)."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    body = node.body
    has_doc = bool(
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    header_end = body[0].end_lineno if has_doc else body[0].lineno - 1
    assert header_end is not None
    head = mod.segment(first, header_end)
    indent = " " * body[0].col_offset
    if isinstance(node, ast.ClassDef):
        methods = [
            _stub(mod, n) for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        return "\n\n".join([head, *methods]) if methods else f"{head}\n{indent}pass"
    return f'{head}\n{indent}raise NotImplementedError("{node.name}: your code here")'


def _names_in(nodes: list[ast.AST]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def _evaluated_names(node: ast.AST) -> set[str]:
    """Names evaluated when the definition runs: defaults, decorators, bases."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        defaults: list[ast.AST] = [*node.args.defaults, *filter(None, node.args.kw_defaults)]
        return _names_in([*defaults, *node.decorator_list])
    if isinstance(node, ast.ClassDef):
        inner = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        return _names_in([*node.bases, *node.decorator_list]).union(
            *(_evaluated_names(n) for n in inner)
        )
    return set()


def _third_party_imports(mod: _Module) -> list[str]:
    out = []
    for node in mod.tree.body:
        if isinstance(node, ast.Import):
            if all(not a.name.startswith(("aiprep", "solutions")) for a in node.names):
                out.append(ast.unparse(node))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith(("aiprep", "solutions", "__future__")):
                out.append(ast.unparse(node))
    return out


def _only_used(line: str, used: set[str]) -> str:
    """A standard-library import cut down to the names the starter uses ("" if none): the
    reference's ``Protocol``, ``time`` or ``contextlib`` are its own business. Imports of
    libraries (numpy, tensorflow) stay: they are a candidate's likely tools."""
    node = ast.parse(line).body[0]
    assert isinstance(node, ast.Import | ast.ImportFrom)
    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
    if (module or "").split(".")[0] not in sys.stdlib_module_names | {"typing_extensions"}:
        return line
    node.names = [a for a in node.names if (a.asname or a.name.split(".")[0]) in used]
    return ast.unparse(node) if node.names else ""


def seed_code(root: Path, module: str) -> str | None:
    """The seed's broken code a debug solution holds in ``ORIGINAL`` (what the question asks
    to fix), or None."""
    for node in _load(root, module).tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ORIGINAL" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value.strip("\n") if isinstance(value, str) else None
    return None


def _as_comment(code: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in code.splitlines())


def build_starter(root: Path, module: str, header: str, *, seed: str | None = None) -> str:
    """The starter file's text for ``solutions.<module>``; ``header`` becomes its docstring.

    ``seed``: a debug question's broken code, put in as comments above the functions (it
    is what the candidate fixes; as code it would run, and fail, on import)."""
    main = _load(root, module)
    names = answer_names(main.tree)
    imports: list[str] = []
    constants: dict[str, str] = {}
    stubs: list[str] = []

    def need_constant(mod: _Module, name: str, seen: set[str]) -> None:
        if name in constants or name in seen:
            return
        seen.add(name)
        node = _definitions(mod).get(name)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("solutions.")
        ):
            need_constant(_load(root, node.module.removeprefix("solutions.")), name, seen)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            assert node.end_lineno is not None
            value = node.value
            for dep in _names_in([value] if value is not None else []):
                need_constant(mod, dep, seen)
            constants[name] = mod.segment(node.lineno, node.end_lineno)

    def add(mod: _Module, name: str) -> None:
        node = _definitions(mod).get(name)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("solutions.")
        ):
            add(_load(root, node.module.removeprefix("solutions.")), name)
            return
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            raise StarterError(f"{mod.path}: ANSWER names {name!r}, which is not a def or class")
        for line in _third_party_imports(mod):
            if line not in imports:
                imports.append(line)
        for dep in sorted(_evaluated_names(node)):
            need_constant(mod, dep, set())
        stubs.append(_stub(mod, node))

    for name in names:
        add(main, name)
    used = _names_in([ast.parse(code) for code in [*stubs, *constants.values()]])
    imports = [line for line in (_only_used(line, used) for line in imports) if line]
    parts = [f'"""{header}"""', "from __future__ import annotations", "\n".join(imports)]
    if seed:
        heading = "# The seed's code, as the question shows it: find its bugs, then write\n"
        heading += "# the fixed version into the functions below.\n#\n"
        parts.append(heading + _as_comment(seed))
    if constants:
        parts.append("\n".join(constants.values()))
    text = "\n\n".join(p for p in parts if p) + "\n\n\n" + "\n\n\n".join(stubs) + "\n"
    compile(text, f"<starter for {module}>", "exec")  # a bank defect if this fails
    return text


# -----------------------------------------------------------------------------
# Practice files (``aiprep practice`` and the quiz's ``p``)


def practice_filename(question_id: str) -> str:
    return f"{question_id}.py"


def starter_text(bank: Bank, q: Record) -> str:
    header = (
        f"Practice: {q['title']['en']} / {q['title']['zh']}\n\n"
        f"Write the functions below (keep their names and parameters), then check them:\n\n"
        f"    aiprep verify {q['id']} <this file>\n\n"
        f"`aiprep show {q['id']}` prints the question; the checks are the reference's own.\n"
    )
    if q["solution"] is None:
        raise StarterError(f"{q['id']} has no solution to practise")
    seed = seed_code(bank.root, q["solution"]) if q["kind"] == "debug" else None
    return build_starter(bank.root, q["solution"], header, seed=seed)


def write_starter(bank: Bank, q: Record, path: Path, *, force: bool = False) -> None:
    """Write the starter atomically; refuses to overwrite unless ``force``."""
    if would_overwrite(path) and not force:
        raise FileExistsError(path)  # before the work of building it
    write_atomic(path, starter_text(bank, q).encode("utf-8"), force=force)
