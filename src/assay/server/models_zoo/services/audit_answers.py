"""Audit answers per model: a submission made from a model starts its questionnaire draft from the model.

Registered in ``ModelsZooConfig.ready`` as a prefiller of ``audits.services.prefill`` (audits sits below this
app and cannot ask a model itself). For a submission made from a model version, the draft starts from:

1. the model card (``card.questionnaire_prefill``: intended use, output significance, data sources);
2. the answers the same team last submitted for a submission of the same model to the same questionnaire
   version — same id, version and questions, i.e. equal ``audits.Questionnaire.sha256`` — in any phase of any
   challenge, so the team answers once per model, not once per benchmark (these win over the card);
3. ``model_version``: always this submission's version and digest (an earlier answer named another one).

Only the model's own team's answers are read, and the prefill is shown to that team only; the team edits
the draft as it likes before submitting it.
"""

from __future__ import annotations

from assay.server.audits.models import AnswerSet, Questionnaire
from assay.server.audits.services.prefill import Prefill
from assay.server.submissions.models import Submission

from ..models import ModelSubmission
from .card import questionnaire_prefill

VERSION_QUESTION = "model_version"


def prefill_from_model(submission: Submission, questionnaire: Questionnaire) -> list[Prefill]:
    """The prefiller (``audits.services.prefill.PREFILLERS``): nothing for a submission not made from a model."""
    source = (
        ModelSubmission.objects.select_related("version__model")
        .filter(submission=submission, version__model__team_id=submission.participant_team_id)
        .first()
    )
    if source is None:
        return []
    version, model = source.version, source.version.model
    card = questionnaire_prefill(version)
    pinned = card.pop(VERSION_QUESTION, None)
    from_card = f"the model card of {model.name} v{version.number}"
    offered = [Prefill("model_card", from_card, card)]
    earlier = (
        AnswerSet.objects.filter(
            submission__model_source__version__model=model,
            team_id=submission.participant_team_id,
            submitted_at__isnull=False,
            questionnaire__sha256=questionnaire.sha256,
        )
        .exclude(submission=submission)
        .select_related("submission__phase__challenge")
        .order_by("-submitted_at", "-id")
        .first()
    )
    if earlier is not None:
        phase = earlier.submission.phase
        offered.append(
            Prefill(
                "model_answers",
                f"your answers submitted {earlier.submitted_at:%Y-%m-%d} for submission {earlier.submission_id}"
                f" of {model.name} ({phase.challenge.title} · {phase.name})",
                {key: value for key, value in earlier.answers.items() if key != VERSION_QUESTION},
            )
        )
    if pinned:
        offered.append(Prefill("model_card", from_card, {VERSION_QUESTION: pinned}))
    return offered
