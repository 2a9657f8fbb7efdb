"""The question file format, as pydantic models; ``aiprep schema`` prints their JSON Schema.

Importing this module costs ~80 ms (pydantic): only validation imports it, commands that
read an already validated bank work from the cached JSON records instead (see bank.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from aiprep.ids import topic_of

Kind = Literal["concept", "multiple-choice", "coding", "estimate", "debug"]
Difficulty = Literal["easy", "medium", "hard"]

KINDS: tuple[str, ...] = ("concept", "multiple-choice", "coding", "estimate", "debug")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
KINDS_WITH_SOLUTION: tuple[str, ...] = ("coding", "estimate", "debug")

SLUG_RE = r"^[a-z][a-z0-9_]*$"
ID_RE = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
SOLUTION_RE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_SOLUTION = re.compile(SOLUTION_RE)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]*$")]
QuestionId = Annotated[str, StringConstraints(pattern=ID_RE)]
AS_OF_RE = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"
AsOf = Annotated[str, StringConstraints(pattern=AS_OF_RE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bilingual(_Strict):
    """A text in English and Chinese, both required (Markdown)."""

    en: Text
    zh: Text


class Choice(_Strict):
    """One option of a multiple-choice question."""

    text: Bilingual
    correct: bool
    why: Bilingual = Field(description="Why this option is right or wrong, shown after grading.")


class Reference(_Strict):
    """A source that backs a figure or claim in the answer: a paper, official docs, a law."""

    title: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="What it is, as a reader would cite it (e.g. 'Llama 2 paper, Table 2')."
    )
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] = Field(
        description="Where to read it (http or https)."
    )


class SeedSource(_Strict):
    """Where in the seed articles a question comes from."""

    seed: Annotated[str, StringConstraints(pattern=r"^[\w.-]+\.txt$")] = Field(
        description="File name of the seed article, e.g. 000_2f9af281971e9fad.txt"
    )
    section: Text = Field(description="The heading or question exactly as the seed writes it.")


class Question(_Strict):
    """One interview question: a file questions/<topic>/<slug>.yaml."""

    model_config = ConfigDict(title="aiprep question")

    id: QuestionId = Field(description="<topic>.<slug>, equal to the file's path; stable forever.")
    kind: Kind
    difficulty: Difficulty
    tags: list[Tag] = Field(default_factory=list)
    title: Bilingual
    prompt: Bilingual
    answer: Bilingual
    key_points: Annotated[list[Bilingual], Field(min_length=1)] = Field(
        description="The rubric a self-grader ticks off."
    )
    hints: Annotated[list[Bilingual], Field(min_length=1)] = Field(
        description="Progressive hints, gentlest first."
    )
    choices: list[Choice] | None = Field(
        default=None,
        validate_default=True,
        description="multiple-choice only: the options, at least one correct.",
    )
    solution: str | None = Field(
        default=None,
        validate_default=True,
        description="Dotted module name under solutions/ (e.g. training.cnn_image_classifier); "
        "required for coding / estimate / debug, forbidden for concept.",
    )
    source: Literal["original"] | Annotated[list[SeedSource], Field(min_length=1)]
    see_also: list[QuestionId] = Field(default_factory=list)
    moved_from: list[QuestionId] = Field(
        default_factory=list,
        description="The ids this question had before it moved (oldest first). Ids are "
        "forever: the learner's progress, an old progress export and the Anki note follow "
        "the question to its new id.",
    )
    as_of: AsOf | None = Field(
        default=None,
        description="YYYY-MM when the answer's facts that age (regulation, prices, market "
        "figures, hardware, model names) were last checked; shown beside the answer.",
    )
    references: list[Reference] = Field(
        default_factory=list,
        description="Papers, official docs or laws behind the answer's published figures and "
        "claims; shown after the answer by `show --answer` and every export.",
    )

    @property
    def topic(self) -> str:
        return topic_of(self.id)

    @field_validator("choices", mode="after")
    @classmethod
    def _choices_fit_kind(cls, choices: list[Choice] | None, info: ValidationInfo) -> object:
        kind = info.data.get("kind")
        if kind == "multiple-choice":
            if not choices or len(choices) < 2:
                raise ValueError(
                    "a multiple-choice question needs two `choices` or more — add some"
                )
            if not any(c.correct for c in choices):
                raise ValueError("no choice is marked `correct: true` — mark at least one")
        elif choices is not None and kind is not None:
            raise ValueError(
                f"`choices` is only for multiple-choice questions, not {kind} — "
                "remove them or set `kind: multiple-choice`"
            )
        return choices

    @field_validator("solution", mode="after")
    @classmethod
    def _solution_fits_kind(cls, solution: str | None, info: ValidationInfo) -> object:
        kind = info.data.get("kind")
        if kind in KINDS_WITH_SOLUTION and solution is None:
            raise ValueError(
                f"a {kind} question needs a solution — add `solution: <topic>.<module>`"
            )
        if kind == "concept" and solution is not None:
            raise ValueError("a concept question has no `solution` — remove it or change `kind`")
        if solution is not None and not _SOLUTION.match(solution):
            raise ValueError(
                f"{solution!r} is not a plain dotted module name inside the solutions "
                "package — write it like `training.cnn_image_classifier`"
            )
        return solution


def json_schema() -> dict[str, object]:
    """The JSON Schema of a question file, for editors."""
    schema = Question.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# -----------------------------------------------------------------------------
# The JSON export (``aiprep export --format json``): format "aiprep-questions", version 1


class ExportText(_Strict):
    """A text in the exported language(s): ``--lang en`` keeps only ``en``, and so on."""

    en: Text | None = None
    zh: Text | None = None


class ExportChoice(_Strict):
    text: ExportText
    correct: bool | None = Field(default=None, description="Absent on a student sheet.")
    why: ExportText | None = Field(default=None, description="Absent on a student sheet.")


class ExportQuestion(_Strict):
    """A question record as the bank holds it, plus the solution's source (``code``)."""

    id: QuestionId
    kind: Kind
    difficulty: Difficulty
    tags: list[Tag]
    title: ExportText
    prompt: ExportText
    answer: ExportText | None = Field(default=None, description="Absent on a student sheet.")
    key_points: list[ExportText] | None = Field(
        default=None, description="Absent on a student sheet."
    )
    hints: list[ExportText]
    choices: list[ExportChoice] | None
    solution: str | None
    source: Literal["original"] | list[SeedSource]
    see_also: list[QuestionId]
    moved_from: list[QuestionId] = Field(
        default_factory=list, description="The ids the question had before it moved."
    )
    as_of: AsOf | None = Field(
        default=None, description="YYYY-MM when the answer's dated facts were last checked."
    )
    references: list[Reference] | None = Field(
        default=None, description="Absent on a student sheet."
    )
    code: str | None = Field(
        default=None, description="The reference solution's source (--with-code)."
    )


class ExportFile(_Strict):
    """An exported question set."""

    format: Literal["aiprep-questions"]
    version: Literal[1]
    title: str
    lang: Literal["en", "zh", "both"]
    answers: bool
    questions: list[ExportQuestion]


def export_json_schema() -> dict[str, object]:
    """The JSON Schema of ``aiprep export --format json`` files."""
    schema = ExportFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
