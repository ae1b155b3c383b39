"""Phases, dataset splits and phase-splits of a challenge, as each reader may know of them, and what a
team may still submit to a phase."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.challenges.models import ChallengePhase, ChallengePhaseSplit, DatasetSplit
from assay.server.challenges.services.editing import edit_phase
from assay.server.challenges.services.listing import phase_seen, phase_splits_seen, phases_seen
from assay.server.challenges.services.package_pins import pinned_package
from assay.server.challenges.services.roles import is_host, participation_of
from assay.server.refusals import Refusal
from assay.server.submissions.services.submit import remaining

from .base import ApiView, Pages, PublicReadView, hosted_challenge, not_found, visible_challenge


class PinnedPackageOut(serializers.Serializer):
    name = serializers.CharField(help_text="The package's name (slug).")
    version = serializers.IntegerField(help_text="The pinned version's number.")


class PhaseOut(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)
    data_package = serializers.SerializerMethodField(
        help_text="The data package version the phase's annotations (and inputs, case metadata) come from, when"
        " the reader may see the package: {name, version}; null otherwise."
    )

    @extend_schema_field(PinnedPackageOut(allow_null=True))
    def get_data_package(self, phase: ChallengePhase) -> dict | None:
        request = self.context.get("request")
        return pinned_package(getattr(request, "user", None), phase)

    class Meta:
        model = ChallengePhase
        fields = [
            "id", "challenge", "config_id", "name", "codename", "description", "start_date", "end_date", "is_active",
            "is_public", "leaderboard_public", "is_submission_public", "is_submission_paused",
            "max_submissions_per_day", "max_submissions_per_month", "max_submissions",
            "max_concurrent_submissions_allowed", "allowed_submission_file_types",
            "is_restricted_to_select_one_submission", "is_partial_submission_evaluation_enabled",
            "submission_meta_attributes", "default_submission_meta_attributes", "disable_logs",
            "submission_artifact_retention_policy", "data_package",
        ]  # fmt: skip


class SplitOut(serializers.ModelSerializer):
    class Meta:
        model = DatasetSplit
        fields = ["id", "challenge", "config_id", "name", "codename"]


class PhaseSplitOut(serializers.ModelSerializer):
    phase_codename = serializers.CharField(source="phase.codename")
    dataset_split_codename = serializers.CharField(source="dataset_split.codename")
    labels = serializers.ListField(source="leaderboard.labels", child=serializers.CharField())
    default_order_by = serializers.CharField(source="leaderboard.schema.default_order_by", default=None)

    class Meta:
        model = ChallengePhaseSplit
        fields = [
            "id", "phase", "phase_codename", "dataset_split", "dataset_split_codename", "leaderboard", "labels",
            "default_order_by", "visibility", "leaderboard_decimal_precision", "is_leaderboard_order_descending",
            "show_execution_time", "show_leaderboard_by_latest_submission", "show_scores_on_leaderboard",
        ]  # fmt: skip


class PhaseListView(PublicReadView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: PhaseOut(many=True)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        phases = phases_seen(challenge, is_host(request.user, challenge))
        return self.paginate(request, phases, PhaseOut, {"request": request})


def visible_phase(user, phase_id: int) -> ChallengePhase:
    phase = ChallengePhase.objects.select_related("challenge__host_team").filter(pk=phase_id).first()
    if phase is None:
        raise not_found("phase")
    challenge = visible_challenge(user, phase.challenge_id)
    if not phase_seen(phase, is_host(user, challenge)):
        raise not_found("phase")
    return phase


class PhaseEditIn(serializers.Serializer):
    """What a host may change of a phase without a bundle; every key optional (checked as the bundle's Phase)."""

    name = serializers.CharField(required=False, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, help_text="HTML.")
    start_date = serializers.DateTimeField(required=False, help_text="UTC unless a zone is given.")
    end_date = serializers.DateTimeField(required=False, help_text="UTC unless a zone is given.")
    max_submissions_per_day = serializers.IntegerField(required=False, min_value=0)
    max_submissions_per_month = serializers.IntegerField(
        required=False, min_value=0, allow_null=True, help_text="null: max_submissions, as in a bundle."
    )
    max_submissions = serializers.IntegerField(required=False, min_value=0)
    is_public = serializers.BooleanField(required=False)
    leaderboard_public = serializers.BooleanField(required=False)
    is_submission_public = serializers.BooleanField(required=False)
    allowed_submission_file_types = serializers.CharField(required=False, help_text="As .json, .zip")


class PhaseDetailView(PublicReadView):
    @extend_schema(responses={200: PhaseOut})
    def get(self, request: Request, phase_id: int) -> Response:
        return Response(PhaseOut(visible_phase(request.user, phase_id), context={"request": request}).data)

    @extend_schema(request=PhaseEditIn, responses={200: PhaseOut}, summary="Edit a phase (hosts)")
    def patch(self, request: Request, phase_id: int) -> Response:
        phase = visible_phase(request.user, phase_id)
        hosted_challenge(request.user, phase.challenge_id)  # 403 for those who see it, as every host route
        if not isinstance(request.data, dict):
            raise Refusal("invalid", "send a JSON object of the values to change", 400)
        edit_phase(request.user, phase, dict(request.data))
        phase.refresh_from_db()
        return Response(PhaseOut(phase, context={"request": request}).data)


class RemainingOut(serializers.Serializer):
    """What :func:`~assay.server.submissions.services.submit.remaining` answers (EvalAI's numbers)."""

    remaining_submissions_count = serializers.IntegerField()
    remaining_submissions_this_month_count = serializers.IntegerField()
    remaining_submissions_today_count = serializers.IntegerField()


class RemainingView(ApiView):
    @extend_schema(responses={200: RemainingOut}, summary="What your team may still submit")
    def get(self, request: Request, phase_id: int) -> Response:
        phase = visible_phase(request.user, phase_id)
        participation = participation_of(request.user, phase.challenge)
        if participation is None:
            raise Refusal("not_participating", "your team has not registered for this challenge", 403)
        return Response(remaining(phase, participation.team))


class SplitListView(PublicReadView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: SplitOut(many=True)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        return self.paginate(request, challenge.dataset_splits.all(), SplitOut)


class PhaseSplitListView(PublicReadView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: PhaseSplitOut(many=True)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        return self.paginate(request, phase_splits_seen(challenge, is_host(request.user, challenge)), PhaseSplitOut)
