"""Load and validate the question bank: questions/<topic>/<slug>.yaml + solutions/<topic>/<slug>.py.

Every problem is collected as ``path:line: what is wrong — how to fix it``, all of them in
one run. The validated records and the problems are cached as JSON keyed by the files'
sizes and mtimes, so ``aiprep list`` and ``aiprep show`` read them back without importing
pydantic. Commands that read the bank skip a broken question file (``skip_broken``);
``validate``, ``smoke`` and ``check-coverage`` refuse a bank with any problem.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict

from aiprep.ids import topic_of
from aiprep.lang import Bilingual
from aiprep.paths import default_bank_root, user_home

if TYPE_CHECKING:  # imported where a YAML file is read: a bank read from its cache needs none
    import yaml


class ChoiceRecord(TypedDict):
    text: Bilingual
    correct: bool
    why: Bilingual


class SeedRecord(TypedDict):
    seed: str
    section: str


class ReferenceRecord(TypedDict):
    title: str
    url: str


class Record(TypedDict):
    """A validated question as the bank holds it (``schema.Question``, dumped to JSON types):
    what ``show --json`` prints and every command reads."""

    id: str
    kind: str
    difficulty: str
    tags: list[str]
    title: Bilingual
    prompt: Bilingual
    answer: Bilingual
    key_points: list[Bilingual]
    hints: list[Bilingual]
    choices: list[ChoiceRecord] | None
    solution: str | None
    source: Literal["original"] | list[SeedRecord]  # or where in the seeds
    see_also: list[str]
    moved_from: list[str]
    as_of: str | None
    references: list[ReferenceRecord]


_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_CACHE_FORMAT = 4
# The validated bank, cached between commands in marshal's format: it loads ~6x faster than
# the same records as JSON (~3 vs ~17 ms for 60 questions; `list` and `show` pay it on every
# call) and only holds dicts, lists and strings. The format is this Python's own, hence the
# version in the name. The full records are one marshalled blob inside it, decoded only
# when asked for: `aiprep list` reads the summaries (SUMMARY_KEYS) alone, a few percent of
# the bytes (the answers, in two languages, are most of them).
_CACHE_SUFFIX = f".py{sys.version_info[0]}{sys.version_info[1]}.marshal"
# What a listing shows and filters on (Bank.select, topics, tags, moves, the table).
SUMMARY_KEYS = ("id", "kind", "difficulty", "tags", "title", "solution", "moved_from")


class Problem(NamedTuple):
    """One thing wrong with the bank, located at a file and line (0: the path as a whole,
    e.g. a folder, which has no lines). Sorted by path, line, message, fix. (Named tuples
    rather than frozen, ordered dataclasses: those cost ~1.8 ms each to define, in the
    start-up of every command that imports the bank, `list` included.)"""

    path: Path
    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{_display(self.path)}:{self.line}" if self.line else _display(self.path)
        return f"{where}: {self.message} — {self.fix}"


class BankError(Exception):
    """The bank has problems; ``problems`` holds all of them, sorted by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Bank:
    """A validated bank: question records (as ``aiprep list --json`` prints them) by id."""

    root: Path
    questions: dict[str, Record] = field(default_factory=dict)
    # With load_bank(skip_broken=True): the problems of the files left out
    problems: list[Problem] = field(default_factory=list)

    @property
    def broken_files(self) -> dict[Path, int]:
        """Each file with problems -> how many (question files among them are left out)."""
        counts: dict[Path, int] = {}
        for problem in self.problems:
            counts[problem.path] = counts.get(problem.path, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def moves(self) -> dict[str, str]:
        """Old id -> current id, for every question that moved (``moved_from``)."""
        return {old: qid for qid, q in self.questions.items() for old in q["moved_from"]}

    def get(self, question_id: str) -> Record | None:
        return self.questions.get(question_id)

    def closest(self, question_id: str, n: int = 3) -> list[str]:
        """Ids that look like ``question_id`` (for "did you mean")."""
        import difflib

        ids = list(self.questions)
        near = difflib.get_close_matches(question_id, ids, n=n, cutoff=0.5)
        if not near:
            near = [i for i in ids if question_id in i][:n]
        return near

    def select(
        self,
        topic: Iterable[str] = (),
        kind: Iterable[str] = (),
        difficulty: Iterable[str] = (),
        tag: Iterable[str] = (),
    ) -> list[Record]:
        """Questions matching every given filter (any value within one filter), by id."""
        topics, kinds, diffs, tags = set(topic), set(kind), set(difficulty), set(tag)
        return [
            q
            for q in self.questions.values()
            if (not topics or topic_of(q["id"]) in topics)
            and (not kinds or q["kind"] in kinds)
            and (not diffs or q["difficulty"] in diffs)
            and (not tags or tags & set(q["tags"]))
        ]

    @property
    def topics(self) -> list[str]:
        return sorted({topic_of(q["id"]) for q in self.questions.values()})

    @property
    def tags(self) -> list[str]:
        return sorted({tag for q in self.questions.values() for tag in q["tags"]})


def load_bank(
    root: Path | None = None,
    *,
    use_cache: bool = True,
    skip_broken: bool = False,
    summary: bool = False,
) -> Bank:
    """Load the bank at ``root`` (default: the shipped one); raise BankError on any problem.

    With ``skip_broken``, a question file with problems is left out instead and the bank
    carries the problems (``Bank.problems``): one broken file must not block reading the
    rest. A missing bank still raises. With ``summary``, the records may hold only
    SUMMARY_KEYS (they do when the cache answers): enough for a listing.
    """
    root = (root or default_bank_root()).resolve()
    if not (root / "questions").is_dir():
        what = "no questions/ folder here" if root.is_dir() else "no such folder"
        raise BankError([Problem(root, 0, what, "point --bank at a folder holding questions/")])
    files = _bank_files(root)
    key = _cache_key(root, files) if use_cache else ""
    cache_file = user_home() / "cache" / f"bank-{zlib.crc32(str(root).encode()):08x}{_CACHE_SUFFIX}"
    cached = _read_cache(cache_file, key, summary) if use_cache else None
    if cached is not None:
        records, problems = cached
    else:
        records, problems = check_bank(root)
        if use_cache:
            _write_cache(cache_file, key, records, problems)
    if problems and not skip_broken:
        raise BankError(problems)
    if not problems:
        return Bank(root, records, [])
    broken = {str(p.path) for p in problems}
    questions = root / "questions"
    kept = {
        qid: q
        for qid, q in records.items()
        if os.path.join(questions, *qid.split(".")) + ".yaml" not in broken
    }
    return Bank(root, kept, sorted(problems))


def validate(paths: Iterable[Path] = ()) -> list[Problem]:
    """All problems of the banks holding ``paths``, limited to problems under ``paths``.

    A path may be a bank root, a folder inside one or a single question/solution file;
    cross-file rules (see_also, solution links, orphan solutions) use the whole bank.
    """
    return validate_and_date(paths)[0]


class Dated(NamedTuple):
    """A question whose answer carries ``as_of``: when its facts that age were checked."""

    path: Path
    line: int
    id: str
    as_of: str  # YYYY-MM

    def months_old(self, today: date) -> int:
        year, month = (int(x) for x in self.as_of.split("-"))
        return (today.year - year) * 12 + today.month - month

    def stale_line(self, today: date) -> str:
        """``path:line: id: as_of ... is N months old — what to do`` for ``validate --stale``."""
        return (
            f"{_display(self.path)}:{self.line}: {self.id}: as_of {self.as_of} is "
            f"{self.months_old(today)} months old — recheck its dated facts, then set "
            f"`as_of: {today:%Y-%m}`"
        )


def validate_and_date(paths: Iterable[Path] = ()) -> tuple[list[Problem], list[Dated]]:
    """``validate(paths)``, and the valid questions under ``paths`` that carry ``as_of``."""
    paths = [Path(p).resolve() for p in paths] or [default_bank_root().resolve()]
    dated: list[Dated] = []
    problems: list[Problem] = []
    roots: dict[Path, list[Path]] = {}
    for path in paths:
        if not path.exists():
            problems.append(Problem(path, 0, "no such file or folder", "check the path"))
            continue
        root = _root_of(path)
        if root is None:
            problems.append(
                Problem(
                    path, 0, "not inside a bank", "give a path under a folder holding questions/"
                )
            )
            continue
        roots.setdefault(root, []).append(path)
    for root, wanted in roots.items():
        records, found = check_bank(root)
        problems += [p for p in found if any(_is_within(p.path, w) for w in wanted)]
        for qid, record in records.items():
            path = root / "questions" / Path(*qid.split(".")).with_suffix(".yaml")
            as_of = record.get("as_of")
            if as_of and any(_is_within(path, w) for w in wanted):
                dated.append(Dated(path, _key_line(path, "as_of"), qid, as_of))
    return sorted(set(problems)), sorted(dated)


def _key_line(path: Path, key: str) -> int:
    """1-based line of the top-level ``key:`` in a valid YAML file (1 if not found)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:")), 1)


@dataclass
class _Entry:
    """One question file that parsed as a YAML mapping, valid or not: what the cross-file
    rules read (the raw ``see_also``, ``solution`` and ``moved_from`` when the schema
    rejected the file), so a schema error does not hide them for another round."""

    id: str  # the id its path gives
    path: Path
    node: yaml.Node
    question: Any  # schema.Question, or None when the file does not validate
    see_also: list[tuple[int, str]]  # (index in the list, id): the index locates the line
    solution: str | None
    moved_from: list[tuple[int, str]]


def check_bank(root: Path) -> tuple[dict[str, Record], list[Problem]]:
    """Validate every file of the bank at ``root``: (records by id, problems).

    Every problem of every file in one run: schema errors, the id/path match and the
    cross-file rules (see_also, solution, moved_from) are all checked, also for a file
    whose other fields are wrong. Only valid files with the right id become records.
    """
    from aiprep.schema import Question  # pydantic: only when validating

    root = root.resolve()
    problems: list[Problem] = []
    entries: list[_Entry] = []
    qdir = root / "questions"
    # Ids of every question file, valid or not: a see_also naming a file that has its own
    # problems is not a second problem.
    file_ids = {f"{p.parent.name}.{p.stem}" for p in qdir.glob("*/*.yaml")}
    for path in sorted(qdir.rglob("*")):
        if path.is_dir() or path.suffix not in (".yaml", ".yml"):
            continue
        rel = path.relative_to(qdir)
        if len(rel.parts) != 2 or path.suffix != ".yaml":
            problems.append(
                Problem(
                    path, 1, "misplaced question file", "move it to questions/<topic>/<slug>.yaml"
                )
            )
            continue
        topic, slug = rel.parts[0], path.stem
        if not (_SLUG.match(topic) and _SLUG.match(slug)):
            problems.append(
                Problem(
                    path,
                    1,
                    f"folder/file name {topic}/{slug} is not a valid id part",
                    "use lowercase letters, digits and _ (starting with a letter)",
                )
            )
            continue
        loaded = _load_question(path, Question, problems)
        if loaded is None:
            continue
        question, node, data = loaded
        expected = f"{topic}.{slug}"
        declared = question.id if question is not None else data.get("id")
        if isinstance(declared, str) and _ID.match(declared) and declared != expected:
            problems.append(
                Problem(
                    path,
                    _line_of(node, ("id",)),
                    f"id {declared!r} does not match the file's path",
                    f"set `id: {expected}` (ids are <topic>.<slug> of the path) or move the file",
                )
            )
            question = None  # not a record under either id
        entries.append(
            _Entry(
                expected,
                path,
                node,
                question,
                see_also=_ids_in(data.get("see_also")),
                solution=s if isinstance(s := data.get("solution"), str) else None,
                moved_from=_ids_in(data.get("moved_from")),
            )
        )
    questions = {e.id: (e.question, e.path, e.node) for e in entries if e.question is not None}

    used_solutions: set[str] = set()
    for entry in entries:
        path, node, module = entry.path, entry.node, entry.solution
        if module is not None and _SOLUTION_NAME.match(module):
            used_solutions.add(module)
            if _solution_file(root, module) is None:
                problems.append(
                    Problem(
                        path,
                        _line_of(node, ("solution",)),
                        f"solution module {module!r} not found",
                        f"create solutions/{module.replace('.', '/')}.py or fix the name",
                    )
                )
        for i, other in entry.see_also:
            if other == entry.id:
                problems.append(
                    Problem(
                        path, _line_of(node, ("see_also", i)), "see_also names itself", "remove it"
                    )
                )
            elif other not in file_ids:
                import difflib

                # never the question itself: it cannot be its own see_also
                near = difflib.get_close_matches(other, sorted(file_ids - {entry.id}), n=1)
                problems.append(
                    Problem(
                        path,
                        _line_of(node, ("see_also", i)),
                        f"see_also names unknown id {other!r}",
                        f"did you mean {near[0]!r}?" if near else "remove it or fix the id",
                    )
                )

    claimed: dict[str, str] = {}  # an old id -> the question that says it moved from there
    for entry in entries:
        path, node = entry.path, entry.node
        for i, old in entry.moved_from:
            where = _line_of(node, ("moved_from", i))
            if old in file_ids:
                problems.append(
                    Problem(
                        path,
                        where,
                        f"moved_from names {old!r}, which is still a question",
                        "delete or rename that file: an id belongs to one question",
                    )
                )
            elif old in claimed:
                problems.append(
                    Problem(
                        path,
                        where,
                        f"{claimed[old]} also moved from {old!r}",
                        "an old id follows one question: keep it in one moved_from",
                    )
                )
            else:
                claimed[old] = entry.id

    wrong_answers = root / "tests" / "fixtures" / "wrong_answers"
    for module, path in _solution_modules(root):
        problems += solution_problems(module, path, wrong_answers)
        if module not in used_solutions:
            problems.append(
                Problem(
                    path,
                    1,
                    f"no question names solution {module!r}",
                    f"add `solution: {module}` to its question, or delete the file",
                )
            )
    records = {
        qid: _join_cjk_lines(q.model_dump(mode="json"))
        for qid, (q, _, _) in sorted(questions.items())
    }
    return records, problems


# A line break between two Chinese characters (or CJK punctuation) in a YAML block is a
# soft break of the source: Markdown would render it as a space, which Chinese text does
# not have ("实现。 输入输出为 int8"). Between CJK and Latin text the space stays.
_CJK = (
    r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff"  # radicals, CJK punctuation, kana
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"  # ideographs, full-width forms
)
# Markdown emphasis and code marks may sit at either side of the break ("转换为\n**全整数**"):
# they are kept, the break goes.
# Chinese quotation marks (“”‘’, shared with English) count as Chinese here: only zh
# texts are joined.
_CJK_Q = _CJK + "\u2018\u2019\u201c\u201d"


@cache
def _cjk_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a soft break between CJK text, a fenced code block): compiled when a YAML file is
    read, not on every import (the character classes take milliseconds to compile)."""
    cjk_break = re.compile(rf"(?<=[{_CJK_Q}])([*_`]*)[ \t]*\n[ \t]*(?=[*_`]*[{_CJK_Q}])")
    return cjk_break, re.compile(r"(^```.*?^```[ \t]*$)", re.M | re.S)


def _join_cjk_lines(value: Any) -> Any:
    """Every ``zh`` text in a record with its soft line breaks between CJK characters
    removed (fenced code left as written)."""
    if isinstance(value, dict):
        return {
            k: _join_cjk_text(v) if k == "zh" and isinstance(v, str) else _join_cjk_lines(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_join_cjk_lines(v) for v in value]
    return value


def _join_cjk_text(text: str) -> str:
    cjk_break, fence = _cjk_patterns()
    parts = fence.split(text)  # odd indices: fenced code blocks
    return "".join(p if i % 2 else cjk_break.sub(r"\1", p) for i, p in enumerate(parts))


def solution_problems(module: str, path: Path, wrong_answers: Path) -> list[Problem]:
    """The solution contract, read from the source alone (no import, no TensorFlow).

    ``ANSWER`` names what a candidate writes, and the module defines (or imports) each
    name; ``check`` and ``make_data`` exist; ``check`` calls on ``impl`` only names in
    ``ANSWER``; ``SolutionReport(...)`` carries the module's own id; where the bank ships
    wrong answers (``tests/fixtures/wrong_answers/``), this solution has one.
    """
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as e:
        return [Problem(path, e.lineno or 1, f"does not parse: {e.msg}", "fix the syntax")]
    except (OSError, UnicodeDecodeError) as e:
        return [Problem(path, 1, f"cannot read ({e})", "save it as UTF-8")]
    defined: set[str] = set()
    answer: tuple[str, ...] | None = None
    answer_line = 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            defined |= set(names)
            if "ANSWER" in names:
                answer_line = node.lineno
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    value = None
                ok = isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)
                answer = value if ok else ()
    problems = []
    if answer is None:
        problems.append(
            Problem(
                path,
                1,
                "no ANSWER",
                'add `ANSWER = ("build_model", ...)`: the functions a candidate writes',
            )
        )
    elif not answer:
        problems.append(
            Problem(
                path,
                answer_line,
                "ANSWER is not a non-empty tuple of names",
                'write it as `ANSWER = ("build_model", "train")`',
            )
        )
    for name in answer or ():
        if name not in defined:
            problems.append(
                Problem(
                    path,
                    answer_line,
                    f"ANSWER names {name!r}, which the module does not define",
                    f"define {name}() here or import it from the solution it reuses",
                )
            )
    for needed, what in (
        ("check", "check(impl) -> SolutionReport"),
        ("make_data", "make_data(seed)"),
    ):
        if needed not in defined:
            problems.append(Problem(path, 1, f"no {needed}", f"define {what}"))
    for found in ast.walk(tree):
        if (
            answer
            and isinstance(found, ast.Attribute)
            and isinstance(found.value, ast.Name)
            and found.value.id == "impl"
            and found.attr not in answer
        ):
            problems.append(
                Problem(
                    path,
                    found.lineno,
                    f"check calls impl.{found.attr}, which is not in ANSWER",
                    f"add {found.attr!r} to ANSWER, or call this module's own {found.attr}",
                )
            )
        if (
            isinstance(found, ast.Call)
            and getattr(found.func, "id", getattr(found.func, "attr", "")) == "SolutionReport"
        ):
            given = [*found.args[:1], *(k.value for k in found.keywords if k.arg == "solution")]
            for arg in given:
                if isinstance(arg, ast.Constant) and arg.value != module:
                    problems.append(
                        Problem(
                            path,
                            found.lineno,
                            f"SolutionReport names {arg.value!r}, not this module",
                            f'write SolutionReport(solution="{module}")',
                        )
                    )
    fixture = wrong_answers / Path(*module.split(".")).with_suffix(".py")
    if wrong_answers.is_dir() and not fixture.is_file():
        problems.append(
            Problem(
                path,
                1,
                "no wrong-answer fixture",
                f"add {fixture.relative_to(wrong_answers.parents[2])}: a typical wrong answer "
                'with CAUGHT_BY = "<the check that catches it>"',
            )
        )
    return problems


_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")  # schema.ID_RE, without pydantic
_SOLUTION_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")  # schema.SOLUTION_RE


def _ids_in(value: Any) -> list[tuple[int, str]]:
    """(index, id) of the well-formed ids in a raw ``see_also`` / ``moved_from`` list; the
    schema reports the others."""
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str) and _ID.match(v)]


def _load_question(
    path: Path, model: Any, problems: list[Problem]
) -> tuple[Any, yaml.Node, dict[str, Any]] | None:
    """(the validated question or None, its YAML node, its raw fields); None when the file
    is not a YAML mapping at all. Schema errors go to ``problems``."""
    from pydantic import ValidationError

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(
            Problem(
                path,
                raw.count(b"\n", 0, e.start) + 1,
                f"not UTF-8 (byte 0x{raw[e.start]:02x})",
                "save the file as UTF-8",
            )
        )
        return None
    import yaml

    # libyaml's loader where PyYAML was built with it (the wheels are), else the pure one
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(
                Problem(path, 1, "the file is empty", "write a question (see `aiprep schema`)")
            )
            return None
        dup = _duplicate_key(node)
        if dup is not None:
            key, line = dup
            problems.append(Problem(path, line, f"field {key!r} appears twice", "keep one of them"))
            return None
        data = loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        problems.append(Problem(path, line, f"invalid YAML: {what}", "fix the YAML syntax here"))
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        problems.append(
            Problem(
                path, 1, "the file is not a mapping of fields", "start with `id: <topic>.<slug>`"
            )
        )
        return None
    try:
        return model.model_validate(data), node, data
    except ValidationError as e:
        problems += _explain(path, node, data, model, e.errors())
        return None, node, data


def _explain(
    path: Path, node: yaml.Node, data: Any, model: Any, errors: list[Any]
) -> Iterator[Problem]:
    import difflib

    seen: set[tuple[Any, ...]] = set()
    # A misspelt field shows up twice, as unknown (`hint`) and as missing (`hints`):
    # report it once, as the unknown one with its "did you mean".
    unknown = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p)))
        if loc and loc[0] == "source":
            # `source` is `original` or a list: explain only the branch the author meant.
            from_literal = any(isinstance(p, str) and "literal" in p for p in err["loc"])
            if isinstance(data.get("source"), list):
                if from_literal:
                    continue
            else:
                if ("source",) not in seen:
                    seen.add(("source",))
                    yield Problem(
                        path,
                        _line_of(node, ("source",)),
                        "`source` must be `original` or a list of {seed, section}",
                        "write `source: original` or `source: [{seed: <file>.txt, section: ...}]`",
                    )
                continue
        if loc in seen:
            continue
        seen.add(loc)
        name = ".".join(str(p) for p in loc) or "question"
        kind = err["type"]
        line = _line_of(node, loc)
        if kind == "missing":
            if any(
                u[:-1] == loc[:-1] and difflib.get_close_matches(str(loc[-1]), [str(u[-1])])
                for u in unknown
            ):
                continue
            yield Problem(
                path, line, f"missing field `{name}`", f"add `{loc[-1]}:` (see `aiprep schema`)"
            )
        elif kind == "extra_forbidden":
            allowed = ", ".join(_allowed_fields(model, loc[:-1]))
            near = difflib.get_close_matches(str(loc[-1]), allowed.split(", "), n=1)
            fix = f"did you mean `{near[0]}`?" if near else f"remove it; allowed here: {allowed}"
            yield Problem(path, line, f"unknown field `{name}`", fix)
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            yield Problem(path, line, f"`{name}` is {err['input']!r}", f"use one of {expected}")
        elif kind == "value_error":
            what, _, fix = str(err["msg"]).removeprefix("Value error, ").partition(" — ")
            if loc and loc[0] not in data and "kind" in data:
                line = _line_of(node, ("kind",))  # a rule of the kind: point at `kind:`
            yield Problem(path, line, what, fix or "see `aiprep schema`")
        elif kind == "string_type" and isinstance(err["input"], bool):
            yield Problem(
                path,
                line,
                f"`{name}` is read as the boolean {err['input']}",
                "quote the text: YAML reads yes/no/on/off/true/false as booleans",
            )
        elif kind == "string_too_short":
            yield Problem(path, line, f"`{name}` is empty", "write the text")
        elif kind == "too_short":
            yield Problem(path, line, f"`{name}` is empty", "give at least one item")
        elif kind == "string_pattern_mismatch":
            yield Problem(
                path,
                line,
                f"`{name}` is {err['input']!r}",
                _PATTERN_FIX.get(str(loc[0]), "fix its format"),
            )
        else:
            yield Problem(path, line, f"`{name}`: {err['msg']}", "see `aiprep schema`")


_PATTERN_FIX = {
    "id": "write it as <topic>.<slug> in lowercase, e.g. training.cnn_image_classifier",
    "see_also": "write ids as <topic>.<slug>, e.g. training.cnn_image_classifier",
    "tags": "use lowercase kebab-case, e.g. image-classification",
    "source": "name the seed file, e.g. 000_2f9af281971e9fad.txt",
    "as_of": "write the month the facts were checked as YYYY-MM, e.g. 2026-11",
    "references": "give the full http(s) address, e.g. https://arxiv.org/abs/2307.09288",
}


def _allowed_fields(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the pydantic model found at ``loc`` inside ``model``."""
    from typing import get_args

    from pydantic import BaseModel

    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        if info is None:
            break
        stack, found = [info.annotation], None
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                found = t
                break
            stack.extend(get_args(t))
        if found is None:
            break
        current = found
    return list(current.model_fields)


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the YAML element at ``loc`` (the key line for a mapping entry).

    When the element is missing, the line of the deepest part that exists.
    """
    import yaml

    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicate_key(node: yaml.Node) -> tuple[str, int] | None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if key.value in keys:
                return str(key.value), key.start_mark.line + 1
            keys.add(key.value)
            found = _duplicate_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _duplicate_key(item)
            if found:
                return found
    return None


def solution_path(root: Path, module: str) -> Path:
    """The file of solution ``module`` (e.g. ``training.cnn``) in the bank at ``root``."""
    found = _solution_file(root, module)
    if found is None:
        raise FileNotFoundError(module)
    return found


def _solution_file(root: Path, module: str) -> Path | None:
    base = root / "solutions" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _solution_modules(root: Path) -> Iterator[tuple[str, Path]]:
    sdir = root / "solutions"
    for path in sorted(sdir.rglob("*.py")):
        rel = path.relative_to(sdir)
        if path.name == "__init__.py" or any(p.startswith("_") for p in rel.parts):
            continue
        yield ".".join(rel.with_suffix("").parts), path


def _bank_files(root: Path) -> list[tuple[str, int, int]]:
    """(path, mtime, size) of every file the bank is read from: the cache's key. Walked with
    scandir, which knows each entry's type without another system call (os.walk asks
    islink of every folder): every `list` and `show` pays this walk."""
    out: list[tuple[str, int, int]] = []

    def walk(folder: str, suffixes: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, suffixes)
            elif entry.name.endswith(suffixes):
                st = entry.stat()
                out.append((entry.path, st.st_mtime_ns, st.st_size))

    # the wrong-answer fixtures too: validate says when a solution has none
    for sub, suffixes in (
        ("questions", (".yaml", ".yml")),
        ("solutions", (".py",)),
        ("tests/fixtures/wrong_answers", (".py",)),
    ):
        walk(os.path.join(root, sub), suffixes)
    return sorted(out)


def _cache_key(root: Path, files: list[tuple[str, int, int]]) -> str:
    """Everything a cached bank depends on: each file's size and mtime, and the loader's code."""
    here = Path(__file__).parent
    code = [(p.name, p.stat().st_mtime_ns) for p in (here / "bank.py", here / "schema.py")]
    return repr([_CACHE_FORMAT, str(root), code, files])  # no json import on the warm path


def _read_cache(
    path: Path, key: str, summary: bool = False
) -> tuple[dict[str, Record], list[Problem]] | None:
    """The records (or with ``summary``, their summaries) and problems of the last
    validation, when no file changed since. A bank with problems is cached too: a broken
    file costs its validation once."""
    try:
        data = marshal.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        blob = data.get("questions")
        records = data.get("summaries") if summary else marshal.loads(blob)  # type: ignore[arg-type]
    except (OSError, ValueError, EOFError, TypeError):
        return None
    problems = data.get("problems")
    if not (isinstance(records, dict) and isinstance(problems, list)):
        return None
    try:
        return records, [Problem(Path(p), int(n), str(m), str(f)) for p, n, m, f in problems]
    except (TypeError, ValueError):
        return None


def _summary(record: Record) -> dict[str, Any]:
    fields: dict[str, Any] = dict(record)
    return {k: fields[k] for k in SUMMARY_KEYS}


def _write_cache(path: Path, key: str, records: dict[str, Record], problems: list[Problem]) -> None:
    found = [[str(p.path), p.line, p.message, p.fix] for p in problems]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        summaries = {qid: _summary(q) for qid, q in records.items()}
        data = {
            "key": key,
            "questions": marshal.dumps(records),
            "summaries": summaries,
            "problems": found,
        }
        tmp.write_bytes(marshal.dumps(data))
        os.replace(tmp, path)
    except (OSError, ValueError):  # ValueError: a value marshal cannot hold
        pass  # a read-only home only costs speed


def _root_of(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if (candidate / "questions").is_dir() and (
            candidate == path
            or path.is_relative_to(candidate / "questions")
            or path.is_relative_to(candidate / "solutions")
        ):
            return candidate
    return None


def _is_within(path: Path, base: Path) -> bool:
    return path == base or path.is_relative_to(base)


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when under it: how problems name files."""
    return _display(path)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
