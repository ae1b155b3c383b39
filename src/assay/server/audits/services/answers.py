"""The submitting team's questionnaire answers for a submission of an audited phase.

Answers are written against the challenge's current questionnaire (the newest ``audits.Questionnaire``):
saved as a draft as often as the team likes (each answer checked, required ones may wait), then
submitted for review once every required question is answered. From then on they are immutable: the
auditors review exactly what was submitted. Every save and the submission append to the evidence trail.

Before the team saved anything, its draft is the prefill (``prefill.py``: for a submission made from a
registered model, the model card and the model's latest submitted answers to the same questionnaire):
shown to the team only, saved as it is edited, and submitted as it stands when the team submits first.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from assay.evidence import chain
from assay.server.submissions.models import Submission

from ..models import AnswerSet, Questionnaire
from . import trail
from .access import AuditRefusal, may_answer, require
from .prefill import Start, starting_answers
from .questionnaires import current_questionnaire

ANSWER_MESSAGE = "Only the submitting team's members answer its questionnaire."


def questionnaire_of(submission: Submission, answer_set: AnswerSet | None) -> Questionnaire | None:
    """The version the answers were written against, or (none yet) the challenge's current one."""
    return answer_set.questionnaire if answer_set else current_questionnaire(submission.phase.challenge)


def schema_of(questionnaire: Questionnaire) -> QuestionnaireSchema:
    return QuestionnaireSchema.model_validate(questionnaire.schema)


def answer_set_of(submission: Submission) -> AnswerSet | None:
    return AnswerSet.objects.select_related("questionnaire").filter(submission=submission).first()


def prefill_for(actor, submission: Submission, answer_set: AnswerSet | None) -> Start:
    """The draft ``actor`` starts from: the prefill while nothing is saved, for the team only (others: empty)."""
    if answer_set is not None or not may_answer(actor, submission):
        return Start()
    questionnaire = current_questionnaire(submission.phase.challenge)
    return starting_answers(submission, questionnaire) if questionnaire is not None else Start()


def answers_sha256(answers: dict[str, Any]) -> str:
    """Of the answers' canonical JSON: what the trail records in place of the answers themselves."""
    return hashlib.sha256(chain.canonical(answers)).hexdigest()


def _questionnaire_or_refuse(submission: Submission) -> Questionnaire:
    questionnaire = current_questionnaire(submission.phase.challenge)
    if questionnaire is None:
        raise AuditRefusal(
            "no_questionnaire", "This challenge has no questionnaire yet: its hosts add one to the bundle.", 409
        )
    return questionnaire


def _refuse_unless_draft(answer_set: AnswerSet) -> None:
    if answer_set.state != AnswerSet.State.DRAFT:
        raise AuditRefusal(
            "immutable",
            "The answers were submitted for review and can no longer change"
            f" (they are {answer_set.get_state_display().lower()}).",
            409,
        )


def _problems(questionnaire: Questionnaire, answers: Any, *, complete: bool) -> list[str]:
    return schema_of(questionnaire).validate_answers(answers, complete=complete)


def _locked(submission: Submission) -> AnswerSet | None:
    return AnswerSet.objects.select_for_update().select_related("questionnaire").filter(submission=submission).first()


def save_draft(actor, submission: Submission, answers: Any, prefilled_from: list[str] | None = None) -> AnswerSet:
    """Replace the team's draft answers with ``answers`` ({question id: value}); unanswered ones may wait.
    ``prefilled_from`` names the prefill's kinds (``Prefill.kind``) when the answers are the prefill as it stands."""
    require(may_answer, actor, submission, ANSWER_MESSAGE)
    questionnaire = _questionnaire_or_refuse(submission)
    problems = _problems(questionnaire, answers, complete=False)
    if problems:
        raise AuditRefusal("invalid", f"The answers have {len(problems)} problem(s): {problems[0]}", 400, problems)
    try:
        with transaction.atomic():
            answer_set = _locked(submission)
            if answer_set is None:
                answer_set = AnswerSet(submission=submission, team=submission.participant_team)
            elif prefilled_from:  # saved meanwhile: the team's own answers win over the prefill
                return answer_set
            else:
                _refuse_unless_draft(answer_set)
            answer_set.questionnaire = questionnaire
            answer_set.answers = answers
            answer_set.updated_by = actor
            answer_set.save()
            record = {
                "questionnaire": questionnaire.version,
                "answered": _answered(answers),
                "answers_sha256": answers_sha256(answers),
            }
            trail.append(
                submission,
                "answered",
                actor.username,
                {**record, "prefilled_from": prefilled_from} if prefilled_from else record,
            )
    except IntegrityError:  # two first saves at once: the other one won; the team saves again
        raise AuditRefusal("conflict", "The answers were saved at the same moment elsewhere; try again.", 409) from None
    return answer_set


def _answered(answers: dict[str, Any]) -> int:
    return sum(1 for value in answers.values() if value is not None and value != "" and value != [])


def submit_answers(actor, submission: Submission) -> AnswerSet:
    """Submit the draft for review: every required question answered; immutable afterwards."""
    require(may_answer, actor, submission, ANSWER_MESSAGE)
    questionnaire = _questionnaire_or_refuse(submission)
    start = prefill_for(actor, submission, answer_set_of(submission))
    if start.answers:  # nothing saved yet: the prefilled draft is what the team submits
        save_draft(actor, submission, start.answers, prefilled_from=start.kinds)
    with transaction.atomic():
        answer_set = _locked(submission)
        if answer_set is None:
            problems = _problems(questionnaire, {}, complete=True)
            raise AuditRefusal(
                "incomplete", "There are no answers to submit yet: answer the questionnaire first.", 400, problems
            )
        _refuse_unless_draft(answer_set)
        if answer_set.questionnaire_id != questionnaire.pk:
            raise AuditRefusal(
                "questionnaire_changed",
                f"The questionnaire changed to version {questionnaire.version} since the answers were saved;"
                " save them again against it, then submit.",
                409,
            )
        problems = _problems(questionnaire, answer_set.answers, complete=True)
        if problems:
            raise AuditRefusal("incomplete", f"The answers cannot be submitted yet: {problems[0]}", 400, problems)
        answer_set.state = AnswerSet.State.SUBMITTED
        answer_set.submitted_at = timezone.now()
        answer_set.updated_by = actor
        answer_set.save()
        trail.append(
            submission,
            "answers_submitted",
            actor.username,
            {"questionnaire": questionnaire.version, "answers_sha256": answers_sha256(answer_set.answers)},
        )
    return answer_set
