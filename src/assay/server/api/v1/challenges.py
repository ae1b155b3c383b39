"""Native challenge endpoints: list with filters, detail, create/update from a bundle, validate-only,
phases, dataset splits, phase-splits, and a team's participation (with the terms it accepted)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import (
    Challenge,
    Participation,
)
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.challenges.services.editing import edit_challenge
from assay.server.challenges.services.list_cache import list_body
from assay.server.challenges.services.participation import take_part
from assay.server.challenges.services.roles import participation_of
from assay.server.refusals import Refusal
from assay.server.teams.models import HostTeam, ParticipantTeam, active_membership

from .base import (
    ApiView,
    Pages,
    PublicReadView,
    hosted_challenge,
    not_found,
    uploaded_path,
    visible_challenge,
)


class ChallengeOut(serializers.ModelSerializer):
    host_team = serializers.CharField(source="host_team.name")
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Challenge
        fields = [
            "id", "slug", "title", "short_description", "host_team", "start_date", "end_date", "is_active",
            "published", "approved_by_admin", "remote_evaluation", "is_docker_based", "tags", "domain",
            "is_registration_open", "manual_participant_approval", "leaderboard_description", "forum_url",
            "github_repository", "created_at", "updated_at",
        ]  # fmt: skip


class ChallengeDetailOut(ChallengeOut):
    container_architecture = serializers.SerializerMethodField(
        help_text="Docker-based challenges: the architecture images must be built for (null otherwise)."
    )

    class Meta(ChallengeOut.Meta):
        fields = [
            *ChallengeOut.Meta.fields, "description", "evaluation_details", "terms_and_conditions",
            "submission_guidelines", "submission_time_limit", "max_team_members", "allow_resuming_submissions",
            "allow_host_cancel_submissions", "allow_cancel_running_submissions", "allow_participants_resubmissions",
            "is_static_dataset_code_upload", "max_docker_image_size", "container_architecture",
        ]  # fmt: skip

    def get_container_architecture(self, challenge: Challenge) -> str | None:
        from assay.server.submissions.services.images import container_architecture

        return container_architecture() if challenge.is_docker_based else None


class ProblemOut(serializers.Serializer):
    """One problem of a bundle (``assay.bundle.Problem``), with the file and line it is about."""

    code = serializers.CharField()
    message = serializers.CharField()
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    key = serializers.CharField(allow_null=True)
    severity = serializers.ChoiceField(["error", "warning"])


class ImportOut(serializers.Serializer):
    """What creating or updating a challenge from a bundle answers."""

    challenge = ChallengeOut()
    created = serializers.BooleanField()
    changes = serializers.ListField(child=serializers.CharField(), help_text="What the update changed.")
    warnings = ProblemOut(many=True)


class ValidationOut(serializers.Serializer):
    """A bundle checked as an import would check it; ``title`` and ``phases`` only when it is valid."""

    valid = serializers.BooleanField()
    title = serializers.CharField(required=False)
    phases = serializers.ListField(child=serializers.CharField(), required=False)
    problems = ProblemOut(many=True)


class ParticipationOut(serializers.Serializer):
    team = serializers.IntegerField()
    team_name = serializers.CharField()
    status = serializers.CharField(help_text=" | ".join(Participation.Status.values))
    terms_accepted_at = serializers.DateTimeField(allow_null=True)
    registered_at = serializers.DateTimeField()


class RegistrationOut(serializers.Serializer):
    """Your team's registration for a challenge (null when it has none); ``GET`` adds the terms."""

    challenge = serializers.IntegerField()
    terms_and_conditions = serializers.CharField(required=False, allow_blank=True)
    is_registration_open = serializers.BooleanField(required=False)
    participation = ParticipationOut(allow_null=True)


class BundleIn(serializers.Serializer):
    bundle = serializers.FileField(help_text="The bundle as a zip (assay host challenge create zips a folder).")


class CreateIn(BundleIn):
    host_team = serializers.IntegerField(help_text="Id of your host team that will own the challenge.")


class ParticipateIn(serializers.Serializer):
    team = serializers.IntegerField(help_text="Id of your participant team.")
    accept_terms = serializers.BooleanField(help_text="You accept the challenge's terms and conditions.")


def _problems(exc: BundleError) -> list[dict]:
    return [p.as_dict() for p in exc.problems]


class ChallengeListView(PublicReadView):
    parser_classes = [parsers.MultiPartParser]
    # what self.paginate answers: drf-spectacular documents the list response as this page
    pagination_class = Pages

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["all", "ongoing", "past", "future"], description="By dates."),
            OpenApiParameter("role", str, enum=["host", "participant"], description="Only yours, in this role."),
            OpenApiParameter("q", str, description="Words in the title or short description."),
            OpenApiParameter("tag", str),
            OpenApiParameter("domain", str),
        ],
        responses={200: ChallengeOut(many=True)},
        summary="Challenges you may see",
    )
    def get(self, request: Request) -> HttpResponse:
        if request.accepted_renderer.format != "json":  # the browsable API: not cached
            return self._page(request)
        # the links in the body carry the host and every query parameter, so the key does too
        query = (request.scheme, request.get_host(), sorted(request.query_params.lists()))
        role = request.query_params.get("role")
        body = list_body(request.user, role, query, lambda: JSONRenderer().render(self._page(request).data))
        return HttpResponse(body, content_type="application/json")

    def _page(self, request: Request) -> Response:
        from assay.server.challenges.services.listing import visible_challenges

        qs = visible_challenges(request.user).order_by("-start_date", "id")
        now = timezone.now()
        status = request.query_params.get("status", "all")
        if status == "ongoing":
            qs = qs.filter(start_date__lte=now, end_date__gte=now)
        elif status == "past":
            qs = qs.filter(end_date__lt=now)
        elif status == "future":
            qs = qs.filter(start_date__gt=now)
        elif status != "all":
            raise Refusal("invalid", "status is one of all, ongoing, past, future", 400)
        role = request.query_params.get("role")
        if role == "host":
            qs = qs.filter(host_team__members=request.user) if request.user.is_authenticated else qs.none()
        elif role == "participant":
            qs = (
                qs.filter(active_membership("participations__team__memberships__", user=request.user))
                if request.user.is_authenticated
                else qs.none()
            )
        elif role:
            raise Refusal("invalid", "role is host or participant", 400)
        if q := request.query_params.get("q", "").strip()[:200]:
            qs = qs.filter(Q(title__icontains=q) | Q(short_description__icontains=q))
        if tag := request.query_params.get("tag", "").strip()[:100]:
            qs = qs.filter(tags__icontains=tag)
        if domain := request.query_params.get("domain", "").strip()[:10]:
            qs = qs.filter(domain=domain.upper())
        return self.paginate(request, qs.distinct(), ChallengeOut)

    @extend_schema(
        request={"multipart/form-data": CreateIn}, responses={201: ImportOut}, summary="Create from a bundle"
    )
    def post(self, request: Request) -> Response:
        data = CreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        team = HostTeam.objects.filter(pk=data.validated_data["host_team"], members=request.user).first()
        if team is None:
            raise not_found("host team of yours")
        return _import(request, data.validated_data["bundle"], team, None)


def _import(request: Request, upload, team: HostTeam, challenge: Challenge | None) -> Response:
    with uploaded_path(upload) as path:
        try:
            with read_bundle(path, limits=settings.BUNDLE_LIMITS) as bundle:
                report = import_bundle(bundle, host_team=team, user=request.user, challenge=challenge)
        except BundleError as exc:
            raise Refusal("invalid_bundle", f"the bundle is invalid: {exc.summary()}", 400, _problems(exc)) from None
    return Response(
        {
            "challenge": ChallengeOut(report.challenge).data,
            "created": report.created,
            "changes": report.changes,
            "warnings": [p.as_dict() for p in report.warnings],
        },
        status=201 if report.created else 200,
    )


class ValidateBundleView(ApiView):
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(request={"multipart/form-data": BundleIn}, responses={200: ValidationOut})
    def post(self, request: Request) -> Response:
        """Validate a bundle exactly as an import would, writing nothing."""
        data = BundleIn(data=request.data)
        data.is_valid(raise_exception=True)
        with uploaded_path(data.validated_data["bundle"]) as path:
            try:
                with read_bundle(path, limits=settings.BUNDLE_LIMITS) as bundle:
                    return Response(
                        {
                            "valid": True,
                            "title": bundle.config.title,
                            "phases": [p.codename for p in bundle.config.challenge_phases],
                            "problems": [p.as_dict() for p in bundle.warnings],
                        }
                    )
            except BundleError as exc:
                return Response({"valid": False, "problems": _problems(exc)})


class ChallengeEditIn(serializers.Serializer):
    """What a host may change without a bundle; every key optional (challenges.services.editing checks them)."""

    title = serializers.CharField(required=False, max_length=100)
    short_description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    start_date = serializers.DateTimeField(required=False, help_text="UTC unless a zone is given.")
    end_date = serializers.DateTimeField(required=False, help_text="UTC unless a zone is given.")
    description = serializers.CharField(required=False, allow_blank=True, help_text="HTML (the overview).")
    evaluation_details = serializers.CharField(required=False, allow_blank=True, help_text="HTML.")
    terms_and_conditions = serializers.CharField(required=False, allow_blank=True, help_text="HTML.")
    submission_guidelines = serializers.CharField(required=False, allow_blank=True, help_text="HTML.")


def edit_values(data) -> dict:
    """The request's object as given (the service checks every value and refuses unknown keys)."""
    if not isinstance(data, dict):
        raise Refusal("invalid", "send a JSON object of the values to change", 400)
    return dict(data)


class ChallengeDetailView(PublicReadView):
    parser_classes = [parsers.JSONParser]

    @extend_schema(responses={200: ChallengeDetailOut})
    def get(self, request: Request, challenge_id: int) -> Response:
        return Response(ChallengeDetailOut(visible_challenge(request.user, challenge_id)).data)

    @extend_schema(
        request=ChallengeEditIn,
        responses={200: ChallengeDetailOut},
        summary="Edit the title, texts and dates (hosts)",
    )
    def patch(self, request: Request, challenge_id: int) -> Response:
        challenge = hosted_challenge(request.user, challenge_id)
        edit_challenge(request.user, challenge, edit_values(request.data))
        challenge.refresh_from_db()
        return Response(ChallengeDetailOut(challenge).data)


class ChallengeBundleView(ApiView):
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": BundleIn}, responses={200: ImportOut}, summary="Update from a bundle"
    )
    def put(self, request: Request, challenge_id: int) -> Response:
        challenge = hosted_challenge(request.user, challenge_id)
        data = BundleIn(data=request.data)
        data.is_valid(raise_exception=True)
        return _import(request, data.validated_data["bundle"], challenge.host_team, challenge)


class ParticipationView(ApiView):
    @extend_schema(responses={200: RegistrationOut}, summary="Your team's registration, and the terms")
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        p = participation_of(request.user, challenge)
        return Response(
            {
                "challenge": challenge.pk,
                "terms_and_conditions": challenge.terms_and_conditions,
                "is_registration_open": challenge.is_registration_open,
                "participation": _participation(p),
            }
        )

    @extend_schema(
        request=ParticipateIn, responses={200: RegistrationOut, 201: RegistrationOut}, summary="Register your team"
    )
    def post(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        data = ParticipateIn(data=request.data)
        data.is_valid(raise_exception=True)
        team = ParticipantTeam.objects.filter(pk=data.validated_data["team"], members=request.user).first()
        if team is None:
            raise not_found("participant team of yours")
        p, created = take_part(request.user, challenge, team, accept_terms=data.validated_data["accept_terms"])
        return Response({"challenge": challenge.pk, "participation": _participation(p)}, status=201 if created else 200)


def _participation(p: Participation | None) -> dict | None:
    if p is None:
        return None
    return {
        "team": p.team_id,
        "team_name": p.team.name,
        "status": p.status,
        "terms_accepted_at": p.terms_accepted_at,
        "registered_at": p.created_at,
    }
