"""Audits: a challenge's auditors, a submission's questionnaire answers, reviews, release and retraction, and
the audit's overview. Thin over ``assay.server.audits.services``: who may do what is
:mod:`~assay.server.audits.services.access`'s, and it is asked before a body is read (a refused caller gets
the same answer whatever it sends); the states and inputs are the workflow services'.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.audits.models import AnswerSet, Review
from assay.server.audits.services import access, answers, auditors, release, reviews, trail
from assay.server.audits.services.manifest import manifest_of
from assay.server.audits.services.overview import overview, release_document
from assay.server.audits.services.prefill import Start
from assay.server.refusals import Refusal
from assay.server.submissions.models import Submission

from .base import ApiView, Pages, checked_body, not_found, visible_challenge

# --- serializers (what the views answer and take, for the OpenAPI schema) ---------------------------------


class AuditorOut(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    added_by = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField()


class AuditorIn(serializers.Serializer):
    user = serializers.CharField(help_text="Username or verified e-mail address of the person to name auditor.")


class QuestionnaireRefOut(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="The questionnaire's id (e.g. fg-ai4h-v1).")
    version = serializers.CharField()


class QuestionnaireOut(QuestionnaireRefOut):
    questionnaire_schema = serializers.JSONField(
        help_text="The questionnaire (sections, questions: id, text, help, type, options, required, ...)."
    )


class AnswersOut(serializers.Serializer):
    submission = serializers.IntegerField()
    state = serializers.CharField(help_text="not_started | draft | submitted | under_review | approved | rejected")
    questionnaire = QuestionnaireOut(allow_null=True, help_text="What the answers answer (null: none yet).")
    answers = serializers.JSONField(help_text="{question id: value}; before the team saved any, its prefilled draft")
    prefilled_from = serializers.ListField(
        child=serializers.CharField(),
        help_text="Where the prefilled draft comes from (the team only, until it saves: e.g. the model card).",
    )
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)


class AnswersIn(serializers.Serializer):
    answers = serializers.JSONField(help_text="{question id: value}; replaces the draft (required ones may wait).")


class ReviewOut(serializers.Serializer):
    round = serializers.IntegerField(help_text="1, or 2 for the second reviewer.")
    reviewer = serializers.CharField()
    ratings = serializers.JSONField(help_text="{question id: {rating: 1-5, comment}}")
    decision = serializers.CharField(allow_null=True, help_text="approve | reject; null while open.")
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class ReviewStartIn(serializers.Serializer):
    second_review_required = serializers.BooleanField(
        required=False, default=False, help_text="Round 1 only: a different auditor's round 2 decides."
    )


class RatingsIn(serializers.Serializer):
    ratings = serializers.JSONField(help_text="{question id: {rating: 1-5, comment}}, added to the round's.")
    comment = serializers.CharField(required=False, allow_blank=True, help_text="Replaces the overall comment.")


class DecisionIn(serializers.Serializer):
    decision = serializers.ChoiceField(["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, help_text="Required to reject.")


class ReleaseOut(serializers.Serializer):
    state = serializers.CharField(help_text="released | retracted")
    released_at = serializers.DateTimeField()
    released_by = serializers.CharField()
    retracted_at = serializers.DateTimeField(allow_null=True)
    retraction_reason = serializers.CharField(allow_blank=True, help_text="Shown to every reader once retracted.")


class RetractIn(serializers.Serializer):
    reason = serializers.CharField(
        allow_blank=True, help_text="Why the results are withdrawn (required); readers are shown it."
    )


class AuditReviewOut(serializers.Serializer):
    round = serializers.IntegerField()
    reviewer = serializers.CharField()
    decision = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class AuditMayOut(serializers.Serializer):
    answer = serializers.BooleanField()
    review = serializers.BooleanField()
    release = serializers.BooleanField()
    read_cases = serializers.BooleanField()
    read_results = serializers.BooleanField(help_text="The summary, report, manifest and trail.")


class AuditOut(serializers.Serializer):
    submission = serializers.IntegerField()
    phase = serializers.IntegerField()
    challenge = serializers.IntegerField()
    state = serializers.CharField(help_text="not_started | draft | submitted | under_review | approved | rejected")
    questionnaire = QuestionnaireRefOut(allow_null=True)
    second_review_required = serializers.BooleanField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    reviews = AuditReviewOut(many=True)
    release = ReleaseOut(allow_null=True)
    summary = serializers.JSONField(allow_null=True, help_text="The audit figures, when you may read them.")
    summary_computed_at = serializers.DateTimeField(allow_null=True)
    may = AuditMayOut(help_text="What you may do with this audit.")


# --- helpers ----------------------------------------------------------------------------------------------


def audit_submission(submission_id: int) -> Submission:
    """The submission (its audit's visibility is the services' question: a hidden one is 404 there too)."""
    sub = (
        Submission.objects.select_related("phase__challenge__host_team", "participant_team")
        .filter(pk=submission_id)
        .first()
    )
    if sub is None:
        raise not_found("submission")
    return sub


def auditor_data(row) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "username": row.user.get_username(),
        "added_by": row.added_by.get_username() if row.added_by_id else None,
        "added_at": row.added_at,
    }


def answers_data(sub: Submission, answer_set: AnswerSet | None, start: Start | None = None) -> dict[str, Any]:
    """``start``: the reader's prefilled draft (``answers.prefill_for``) while nothing is saved."""
    questionnaire = answers.questionnaire_of(sub, answer_set)
    start = start or Start()
    return {
        "submission": sub.pk,
        "state": answer_set.state if answer_set else "not_started",
        "questionnaire": {
            "id": questionnaire.schema.get("id"),
            "version": questionnaire.version,
            "questionnaire_schema": questionnaire.schema,
        }
        if questionnaire
        else None,
        "answers": answer_set.answers if answer_set else start.answers,
        "prefilled_from": [] if answer_set else start.sources,
        "updated_by": answer_set.updated_by.get_username() if answer_set and answer_set.updated_by_id else None,
        "updated_at": answer_set.updated_at if answer_set else None,
        "submitted_at": answer_set.submitted_at if answer_set else None,
    }


def review_data(review: Review) -> dict[str, Any]:
    return {
        "round": review.round,
        "reviewer": review.reviewer.get_username(),
        "ratings": review.ratings,
        "decision": review.decision or None,
        "comment": review.comment,
        "created_at": review.created_at,
        "decided_at": review.decided_at,
    }


# --- auditors ---------------------------------------------------------------------------------------------


class ChallengeAuditorsView(ApiView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: AuditorOut(many=True)}, summary="A challenge's auditors (its hosts and auditors)")
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        return self.paginate(request, auditors.list_auditors(request.user, challenge), auditor_data)

    @extend_schema(request=AuditorIn, responses={201: AuditorOut}, summary="Name an auditor (hosts)")
    def post(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        if not access.may_manage_auditors(request.user, challenge):
            raise Refusal("forbidden", "Only the challenge's hosts name and remove its auditors.", 403)
        row = auditors.add_auditor(request.user, challenge, checked_body(request, AuditorIn)["user"])
        return Response(auditor_data(row), status=201)


class ChallengeAuditorDetailView(ApiView):
    @extend_schema(request=None, responses={204: None}, summary="Remove an auditor (hosts; their reviews stay)")
    def delete(self, request: Request, challenge_id: int, user_id: int) -> Response:
        auditors.remove_auditor(request.user, visible_challenge(request.user, challenge_id), user_id)
        return Response(status=204)


# --- a submission's audit ---------------------------------------------------------------------------------


class SubmissionAuditView(ApiView):
    @extend_schema(responses={200: AuditOut}, summary="A submission's audit: state, reviews, release, summary")
    def get(self, request: Request, submission_id: int) -> Response:
        return Response(AuditOut(overview(request.user, audit_submission(submission_id))).data)


class AnswersView(ApiView):
    @extend_schema(responses={200: AnswersOut}, summary="The team's questionnaire answers and their questionnaire")
    def get(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require_visible(request.user, sub)
        answer_set = answers.answer_set_of(sub)
        start = answers.prefill_for(request.user, sub, answer_set)
        return Response(AnswersOut(answers_data(sub, answer_set, start)).data)

    @extend_schema(request=AnswersIn, responses={200: AnswersOut}, summary="Save the draft answers (the team)")
    def put(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require(access.may_answer, request.user, sub, answers.ANSWER_MESSAGE)
        saved = answers.save_draft(request.user, sub, checked_body(request, AnswersIn)["answers"])
        return Response(AnswersOut(answers_data(sub, saved)).data)


class AnswersSubmitView(ApiView):
    @extend_schema(request=None, responses={200: AnswersOut}, summary="Submit the answers for review (the team)")
    def post(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        return Response(AnswersOut(answers_data(sub, answers.submit_answers(request.user, sub))).data)


class ReviewsView(ApiView):
    pagination_class = Pages

    @extend_schema(responses={200: ReviewOut(many=True)}, summary="The review rounds, ratings and decisions")
    def get(self, request: Request, submission_id: int) -> Response:
        found = reviews.reviews_of(request.user, audit_submission(submission_id))
        return self.paginate(request, found, review_data)

    @extend_schema(request=ReviewStartIn, responses={201: ReviewOut}, summary="Start the next review round (auditors)")
    def post(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require(access.may_review, request.user, sub, reviews.REVIEW_MESSAGE)
        wanted = checked_body(request, ReviewStartIn)["second_review_required"]
        return Response(review_data(reviews.start_review(request.user, sub, second_review_required=wanted)), 201)


class ReviewDetailView(ApiView):
    @extend_schema(request=RatingsIn, responses={200: ReviewOut}, summary="Rate questions in your open round")
    def patch(self, request: Request, submission_id: int, review_round: int) -> Response:
        sub = audit_submission(submission_id)
        reviews.require_own_open_review(request.user, sub, review_round)
        given = checked_body(request, RatingsIn)
        review = reviews.rate(request.user, sub, review_round, given["ratings"], given.get("comment"))
        return Response(review_data(review))


class ReviewDecideView(ApiView):
    @extend_schema(request=DecisionIn, responses={200: ReviewOut}, summary="Approve or reject in your open round")
    def post(self, request: Request, submission_id: int, review_round: int) -> Response:
        sub = audit_submission(submission_id)
        reviews.require_own_open_review(request.user, sub, review_round)
        given = checked_body(request, DecisionIn)
        review = reviews.decide(request.user, sub, review_round, given["decision"], given.get("comment"))
        return Response(review_data(review))


class ReleaseView(ApiView):
    @extend_schema(request=None, responses={201: ReleaseOut}, summary="Release an approved audit (hosts)")
    def post(self, request: Request, submission_id: int) -> Response:
        row = release.release(request.user, audit_submission(submission_id))
        return Response(ReleaseOut(release_document(row)).data, status=201)


class RetractView(ApiView):
    @extend_schema(request=RetractIn, responses={200: ReleaseOut}, summary="Retract a release, saying why (hosts)")
    def post(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require(access.may_release, request.user, sub, release.RELEASE_MESSAGE)
        row = release.retract(request.user, sub, checked_body(request, RetractIn)["reason"])
        return Response(ReleaseOut(release_document(row)).data)


# --- the evidence ------------------------------------------------------------------------------------------


class ManifestView(ApiView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The audit's reproducibility manifest (signed when the operator has a key), for assay audit verify",
    )
    def get(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require_results(request.user, sub)
        return Response(manifest_of(sub))


class TrailView(ApiView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The audit's evidence trail (hash-chained records), for assay audit verify --trail",
    )
    def get(self, request: Request, submission_id: int) -> Response:
        sub = audit_submission(submission_id)
        access.require_results(request.user, sub)
        return Response(trail.document(sub))
