"""Where a team's questionnaire answers start before it saved any: answers that apps above audits offer.

The audits app sits below ``models_zoo`` (pyproject's import-linter layers), so it cannot ask a model for its
card. A higher app instead registers a *prefiller* in its ``AppConfig.ready`` (``PREFILLERS.append``); for a
submission and the questionnaire it will be answered against, a prefiller returns :class:`Prefill` s, each
answers with the source the team reads (later ones win a question both answer). Only answers the
questionnaire accepts are kept, one by one, so a prefiller never makes a draft unsaveable.

The prefill is the team's own starting point: :func:`~.answers.prefill_for` shows it only to those who may
answer (the hosts and auditors of this challenge must not read, through it, what the team wrote elsewhere),
and it becomes answers only when the team saves or submits them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from assay.server.submissions.models import Submission

from ..models import Questionnaire


@dataclass(frozen=True)
class Prefill:
    """Answers offered for a draft: where they come from as the team reads it (``source``: may name other
    challenges, so shown to the team only) and as the evidence trail records it (``kind``: names nothing)."""

    kind: str
    source: str
    answers: dict[str, Any]


@dataclass
class Start:
    """The draft a team starts from: the merged answers, and the sources (and kinds) that gave at least one."""

    answers: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


Prefiller = Callable[[Submission, Questionnaire], Sequence[Prefill]]
#: Registered by higher apps' AppConfig.ready (models_zoo: the model card and the model's earlier answers).
PREFILLERS: list[Prefiller] = []


def _unanswered(value: Any) -> bool:
    return value is None or value == "" or value == []


def starting_answers(submission: Submission, questionnaire: Questionnaire) -> Start:
    """The merged prefill for ``submission`` against ``questionnaire`` (empty when no prefiller offers any)."""
    schema = QuestionnaireSchema.model_validate(questionnaire.schema)
    start = Start()
    for prefiller in PREFILLERS:
        for offered in prefiller(submission, questionnaire):
            kept = {
                key: value
                for key, value in offered.answers.items()
                if not _unanswered(value) and not schema.validate_answers({key: value}, complete=False)
            }
            if kept:
                start.answers.update(kept)
                if offered.source not in start.sources:
                    start.sources.append(offered.source)
                if offered.kind not in start.kinds:
                    start.kinds.append(offered.kind)
    return start
