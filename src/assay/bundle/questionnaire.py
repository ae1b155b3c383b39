"""Audit questionnaires: the schema a bundle ships (key ``questionnaire``), and checking a team's answers.

A questionnaire is qualitative evidence beside the computed audit figures: what the model is for, where
its data came from, how consent and labels were handled. Its questions are coded like FG-AI4H's second
questionnaire, by lifecycle stage and requirement type, so a report can group answers either way.

The file is YAML read through :mod:`assay.bundle.yamlsafe` (no aliases expanding without bound, no unsafe
tags), and every problem names the file, the line and the key. A published version is immutable (the
server refuses a changed text under the same version), so :meth:`Questionnaire.sha256` hashes a canonical
form: the same questions give the same hash whatever the YAML's layout, comments or key order.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .errors import BundleError
from .rules import Findings
from .yamlsafe import LineMap, load_yaml

QUESTION_TYPES = ("text", "yes_no", "single_choice", "multiple_choice", "date", "number")
CHOICE_TYPES = ("single_choice", "multiple_choice")
STAGES = ("planning", "development", "validation", "deployment", "monitoring")
REQUIREMENTS = ("technical", "clinical", "regulatory", "ethical", "operational")

MAX_QUESTIONNAIRE_BYTES = 1024 * 1024
MAX_QUESTIONS = 500
MAX_SECTIONS = 100
MAX_OPTIONS = 100
MAX_REFERENCES = 20
MAX_TEXT_ANSWER = 20_000
MAX_EXACT_INT = 2**53  # larger integers do not survive JSON readers that use doubles
MAX_PROBLEMS = 50  # answers with more faults than this are summarised, not listed

ID_PATTERN = r"^[a-z0-9_]+$"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TEMPLATES = ("fg-ai4h-v1",)


def _plain_text(value: Any) -> Any:
    """YAML reads ``yes``, ``1.10`` or ``2024-01-01`` as other things than text; say to quote them."""
    if isinstance(value, str) or value is None:
        return value
    raise ValueError(f"{value!r} is read by YAML as a {type(value).__name__}, not text: put it in quotes")


def _version(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"{value!r} is read by YAML as a number (1.10 becomes 1.1): write the version in quotes")
    return _plain_text(value)


Text = Annotated[str, BeforeValidator(_plain_text)]
Id = Annotated[Text, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Question(_Model):
    """One question; ``stage`` and ``requirement`` code it as FG-AI4H's lifecycle stage × requirement type."""

    id: Id = Field(description="Unique across the questionnaire: lower-case letters, digits and _.")
    text: Text = Field(min_length=1, max_length=1000, description="The question as the team reads it.")
    help: Text = Field("", max_length=4000, description="What a good answer covers.")
    type: Literal[QUESTION_TYPES] = Field(description="The answer's kind.")  # type: ignore[valid-type]
    options: list[Annotated[Text, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=MAX_OPTIONS, description="The choices; choice types only."
    )
    required: bool = Field(False, description="The answers cannot be submitted without it.")
    stage: Literal[STAGES] = Field(description="Lifecycle stage the question concerns.")  # type: ignore[valid-type]
    requirement: Literal[REQUIREMENTS] = Field(description="Requirement type.")  # type: ignore[valid-type]
    references: list[Annotated[Text, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=MAX_REFERENCES, description="Standards or guidelines it draws on."
    )

    @model_validator(mode="after")
    def _options_fit_type(self) -> Question:
        if self.type in CHOICE_TYPES:
            if len(self.options) < 2:
                raise ValueError(f"a {self.type} question needs at least two options")
            repeated = [o for o, n in Counter(self.options).items() if n > 1]
            if repeated:
                raise ValueError(f"options {repeated} are listed twice")
        elif self.options:
            raise ValueError(f"options apply to single_choice and multiple_choice only, not to {self.type}")
        return self


class Section(_Model):
    id: Id
    title: Text = Field(min_length=1, max_length=200)
    help: Text = Field("", max_length=4000)
    questions: list[Question] = Field(min_length=1)


class Questionnaire(_Model):
    """A questionnaire version: build it with :func:`load_questionnaire` (file errors with lines) or
    ``Questionnaire.model_validate`` (a stored schema)."""

    id: Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    version: Annotated[str, BeforeValidator(_version), Field(min_length=1, max_length=50, pattern=r"^[\w.+-]+$")]
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=4000)
    sections: list[Section] = Field(min_length=1, max_length=MAX_SECTIONS)

    @model_validator(mode="after")
    def _unique_ids(self) -> Questionnaire:
        question_ids = [q.id for q in self.questions()]
        if len(question_ids) > MAX_QUESTIONS:
            raise ValueError(f"{len(question_ids)} questions; the limit is {MAX_QUESTIONS}")
        for what, ids in (("question", question_ids), ("section", [s.id for s in self.sections])):
            repeated = [i for i, n in Counter(ids).items() if n > 1]
            if repeated:
                raise ValueError(f"{what} ids {repeated} are used more than once; each must be unique")
        return self

    def questions(self) -> Iterator[Question]:
        for section in self.sections:
            yield from section.questions

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions() if q.id == question_id), None)

    def as_json(self) -> dict:
        """The schema as stored (``audits.Questionnaire.schema``); ``model_validate`` reads it back."""
        return self.model_dump(mode="json")

    def canonical(self) -> bytes:
        """Sorted keys, no spaces, UTF-8: the bytes :meth:`sha256` hashes."""
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def validate_answers(self, answers: Any, *, complete: bool) -> list[str]:
        """Problems with ``answers`` ({question id: value}), one sentence each naming the question.

        A draft (``complete=False``) may leave questions out; ``None``, blank text and an empty list
        count as unanswered. ``complete=True`` adds every required question left unanswered.
        """
        if not isinstance(answers, dict):
            return [f"answers must be a mapping of question id to answer, not a {type(answers).__name__}"]
        by_id = {q.id: q for q in self.questions()}
        problems: list[str] = []
        for key, value in answers.items():
            question = by_id.get(key) if isinstance(key, str) else None
            if question is None:
                close = [] if len(problems) >= MAX_PROBLEMS else difflib.get_close_matches(str(key), by_id, 1, 0.8)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"{str(key)[:80]!r} is not a question of questionnaire {self.id} {self.version}{hint}")
            elif not _unanswered(value) and (problem := _answer_problem(question, value)):
                problems.append(f"question {key!r}: {problem}")
        if complete:
            missing = [q.id for q in self.questions() if q.required and _unanswered(answers.get(q.id))]
            problems += [f"question {qid!r} is required and has no answer" for qid in missing]
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"and {len(problems) - MAX_PROBLEMS} more problems"]
        return problems


def _unanswered(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _answer_problem(question: Question, value: Any) -> str | None:
    """Why ``value`` is no answer to ``question``, or None when it is one."""
    kind = question.type
    if kind == "text":
        if not isinstance(value, str):
            return f"expected text, got {_shown(value)}"
        if len(value) > MAX_TEXT_ANSWER:
            return f"the answer is {len(value)} characters long; the limit is {MAX_TEXT_ANSWER:,}"
    elif kind == "yes_no":
        if not isinstance(value, bool):
            return f"expected yes or no (true or false), got {_shown(value)}"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {_shown(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        if isinstance(value, int) and abs(value) > MAX_EXACT_INT:
            return f"the number is too large to keep exactly (the limit is ±{MAX_EXACT_INT:,})"
    elif kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            return f"expected a date written YYYY-MM-DD, got {_shown(value)}"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not a calendar date"
    elif kind == "single_choice":
        if not isinstance(value, str) or value not in question.options:
            return f"{_shown(value)} is not one of the options {question.options}"
    elif kind == "multiple_choice":
        if not isinstance(value, list):
            return f"expected a list of options, got {_shown(value)}"
        wrong = [v for v in value if not isinstance(v, str) or v not in question.options]
        if wrong:
            return f"{_shown(wrong)} {'is' if len(wrong) == 1 else 'are'} not among the options {question.options}"
        if len(set(value)) != len(value):
            return "an option is chosen more than once"
    return None


# --- reading files ---------------------------------------------------------------------------------------


def load_questionnaire(text: str | bytes, file: str = "questionnaire.yaml") -> Questionnaire:
    """Parse and validate a questionnaire file. Raises :class:`BundleError` naming file, line and key."""
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_QUESTIONNAIRE_BYTES:
        raise BundleError.single(
            "questionnaire_too_large",
            f"the questionnaire is {len(data)} bytes; the limit is {MAX_QUESTIONNAIRE_BYTES}",
            file=file,
        )
    raw, lines, _ = load_yaml(data, file)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise BundleError.single(
            "not_a_mapping", f"a questionnaire must be a mapping of keys, not {got}", file=file, line=1
        )
    findings = Findings(lines, file)
    _count_questions(raw, findings)
    if not findings.problems:
        try:
            return Questionnaire.model_validate(raw)
        except ValidationError as exc:
            _report(exc, raw, lines, findings)
        except (RecursionError, OverflowError) as exc:
            findings.add("bad_value", f"value out of range ({type(exc).__name__})", ())
    raise BundleError(sorted(findings.problems, key=lambda p: p.line or 0))


def _count_questions(raw: dict, f: Findings) -> None:
    """Refuse an oversized questionnaire before validating it item by item."""
    sections = raw.get("sections")
    if not isinstance(sections, list):
        return
    count = sum(len(s["questions"]) for s in sections if isinstance(s, dict) and isinstance(s.get("questions"), list))
    if count > MAX_QUESTIONS:
        f.add("questionnaire_too_large", f"{count} questions; the limit is {MAX_QUESTIONS}", ("sections",))


_MODELS: dict[str, type[BaseModel]] = {"questionnaire": Questionnaire, "section": Section, "question": Question}


def _report(exc: ValidationError, raw: dict, lines: LineMap, f: Findings) -> None:
    """Pydantic's errors as problems at the line of their key; uniqueness errors at the repeated id."""
    for err in exc.errors(include_url=False):
        path = tuple(err["loc"])
        kind = err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "missing":
            f.add("missing_key", f"required key {path[-1]!r} is missing", path)
        elif kind == "extra_forbidden":
            model = _MODELS[_level(path)]
            known = sorted((i.alias or n) for n, i in model.model_fields.items())
            close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            f.add("questionnaire_unknown_key", f"unknown key {path[-1]!r}{hint}", path)
        elif "ids" in msg and "more than once" in msg:
            _duplicates(raw, f)
        else:
            code = "wrong_type" if ("type" in kind or "parsing" in kind) and kind != "literal_error" else "bad_value"
            value = err.get("input")
            shown = "" if kind == "value_error" or isinstance(value, dict | list) else f" (got {_shown(value)})"
            f.add(code, msg + shown, path)


def _level(path: tuple) -> str:
    if "questions" in path:
        return "question"
    return "section" if "sections" in path[:-1] else "questionnaire"


def _duplicates(raw: dict, f: Findings) -> None:
    """Each repeated question or section id, at the line of its second use."""
    seen_q: dict[str, tuple] = {}
    seen_s: dict[str, tuple] = {}
    for i, section in enumerate(raw.get("sections") or []):
        if not isinstance(section, dict):
            continue
        sid = section.get("id")
        if isinstance(sid, str):
            if sid in seen_s:
                f.add("duplicate_section_id", f"section id {sid!r} is used twice", ("sections", i, "id"))
            seen_s.setdefault(sid, ("sections", i, "id"))
        for j, question in enumerate(section.get("questions") or []):
            qid = question.get("id") if isinstance(question, dict) else None
            if isinstance(qid, str):
                here = ("sections", i, "questions", j, "id")
                if qid in seen_q:
                    first = f.lines.line_for(seen_q[qid])
                    f.add(
                        "duplicate_question_id",
                        f"question id {qid!r} is used twice (first on line {first}); ids must be unique",
                        here,
                    )
                seen_q.setdefault(qid, here)


def load_answers(text: str | bytes, file: str = "answers.yaml") -> dict:
    """An answers file (YAML or JSON, ``{question id: value}``) as the values :meth:`validate_answers` takes:
    YAML dates (``2024-03-01`` unquoted) become ISO text, as a JSON file would hold them."""
    data = text.encode() if isinstance(text, str) else text
    raw, _, _ = load_yaml(data, file)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BundleError.single("not_a_mapping", "an answers file must map question ids to answers", file=file, line=1)

    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {str(k): plain(v) for k, v in raw.items()}


def template_text(name: str) -> str:
    """The YAML text of a questionnaire template shipped with Assay (for hosts to copy and adapt)."""
    if name not in TEMPLATES:
        raise KeyError(f"no questionnaire template {name!r}; known: {', '.join(TEMPLATES)}")
    return resources.files(__package__).joinpath(f"templates/questionnaire-{name}.yaml").read_text("utf-8")


def template(name: str = "fg-ai4h-v1") -> Questionnaire:
    """A questionnaire template shipped with Assay, validated as a bundle's would be."""
    return load_questionnaire(template_text(name), f"questionnaire-{name}.yaml")
