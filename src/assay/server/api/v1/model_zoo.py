"""Models: register one (a container image or a code bundle, with its card), read, edit the card, publish,
add versions, list its results and the phases it may go to, and submit a version to a phase without
uploading it again. Thin: the rules are ``assay.server.models_zoo.services``' (access: ``services.access``)."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import parsers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.api.throttling import ScopedRateThrottle
from assay.server.challenges.models import ChallengePhase
from assay.server.models_zoo.models import Model, ModelVersion
from assay.server.models_zoo.services import access, page, registry, submitting
from assay.server.models_zoo.services.card import FIELDS
from assay.server.submissions.services.result_access import ResultReader

from .base import ApiView, Pages, not_found
from .submissions import DescriptionIn, SubmissionOut, submission_data


class VersionOut(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["number", "label", "notes", "file_name", "file_sha256", "file_size", "image_digest", "created_at"]


class ModelOut(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name")
    is_published = serializers.BooleanField(read_only=True)
    versions = VersionOut(many=True, read_only=True)

    class Meta:
        model = Model
        fields = ["id", "name", "kind", "team", "team_name", "is_published", "published_at", "created_at",
                  *FIELDS, "versions"]  # fmt: skip


class CardIn(serializers.Serializer):
    """The card's fields (each optional; the service checks lengths, control characters and choices)."""

    summary = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    intended_use = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    output_significance = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    data_sources = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    licence = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    contact = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class VersionIn(serializers.Serializer):
    file = serializers.FileField(help_text="A docker save tarball (.tar, .tar.gz, .tgz) or a code bundle (.zip).")
    label = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    notes = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class RegisterIn(VersionIn):
    name = serializers.CharField(trim_whitespace=False)
    kind = serializers.ChoiceField(Model.Kind.values)
    team = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Your only team if left out."
    )
    card = serializers.CharField(required=False, allow_blank=True, default="", help_text="The card as a JSON object.")

    def validate_card(self, value: str) -> dict:
        if not value:
            return {}
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise serializers.ValidationError(f"not valid JSON: {exc.msg}") from None


class PublishIn(serializers.Serializer):
    published = serializers.BooleanField()


class SubmitModelIn(DescriptionIn):
    phase = serializers.IntegerField(help_text="The phase's id.")


class ResultOut(serializers.Serializer):
    """One submission made from the model, cut for the reader (``submissions``' ResultReader)."""

    submission = serializers.IntegerField(source="submission.pk")
    version = serializers.IntegerField(source="version_number")
    challenge = serializers.IntegerField(source="submission.phase.challenge_id")
    challenge_title = serializers.CharField(source="submission.phase.challenge.title")
    phase = serializers.IntegerField(source="submission.phase_id")
    phase_codename = serializers.CharField(source="submission.phase.codename")
    status = serializers.CharField(source="submission.status")
    is_public = serializers.BooleanField(source="submission.is_public")
    output = serializers.JSONField(allow_null=True)
    leaderboard_url = serializers.CharField()
    audit_url = serializers.CharField(help_text="The audit report (or audit page) if you may open it, else empty.")


class PhaseChoiceOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    codename = serializers.CharField()
    challenge = serializers.IntegerField(source="challenge_id")
    challenge_title = serializers.CharField(source="challenge.title")


def _model_data(model: Model) -> dict:
    return ModelOut(Model.objects.select_related("team").prefetch_related("versions").get(pk=model.pk)).data


class ModelListView(ApiView):
    """``GET`` the models you may read (your teams' and published ones); ``POST`` registers a model."""

    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    pagination_class = Pages
    throttle_scope = "submit"

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: ModelOut(many=True)}, summary="Models you may read")
    def get(self, request: Request) -> Response:
        qs = access.visible_models(request.user).prefetch_related("versions").order_by("-created_at", "-id")
        return self.paginate(request, qs, ModelOut)

    @extend_schema(request={"multipart/form-data": RegisterIn}, responses={201: ModelOut}, summary="Register a model")
    def post(self, request: Request) -> Response:
        data = RegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        team = registry.team_for(request.user, v["team"])
        model = registry.register(
            request.user, team=team, name=v["name"], kind=v["kind"], file=v["file"], file_name=v["file"].name,
            card=v["card"], label=v["label"], notes=v["notes"],
        )  # fmt: skip
        return Response(_model_data(model), status=201)


class ModelDetailView(ApiView):
    @extend_schema(responses={200: ModelOut}, summary="A model: its card and versions")
    def get(self, request: Request, model_id: int) -> Response:
        return Response(_model_data(access.readable_model(request.user, model_id)))

    @extend_schema(request=CardIn, responses={200: ModelOut}, summary="Edit the model card (its team)")
    def patch(self, request: Request, model_id: int) -> Response:
        model = access.managed_model(request.user, model_id)
        data = CardIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_model_data(registry.update_card(request.user, model, dict(data.validated_data))))


class PublishView(ApiView):
    @extend_schema(request=PublishIn, responses={200: ModelOut}, summary="Publish a model, or make it private again")
    def post(self, request: Request, model_id: int) -> Response:
        model = access.managed_model(request.user, model_id)
        data = PublishIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_model_data(registry.publish(request.user, model, data.validated_data["published"])))


class VersionListView(ApiView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    pagination_class = Pages
    throttle_scope = "submit"

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: VersionOut(many=True)}, summary="A model's versions, newest first")
    def get(self, request: Request, model_id: int) -> Response:
        model = access.readable_model(request.user, model_id)
        return self.paginate(request, model.versions.order_by("-number"), VersionOut)

    @extend_schema(request={"multipart/form-data": VersionIn}, responses={201: VersionOut}, summary="Add a version")
    def post(self, request: Request, model_id: int) -> Response:
        model = access.managed_model(request.user, model_id)
        data = VersionIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        version = registry.add_version(
            request.user, model, file=v["file"], file_name=v["file"].name, label=v["label"], notes=v["notes"]
        )
        return Response(VersionOut(version).data, status=201)


class ResultsView(ApiView):
    pagination_class = Pages

    @extend_schema(responses={200: ResultOut(many=True)}, summary="The model's results across benchmarks")
    def get(self, request: Request, model_id: int) -> Response:
        model = access.readable_model(request.user, model_id)
        return self.paginate(request, page.results(request.user, model), ResultOut)


class PhasesView(ApiView):
    pagination_class = Pages

    @extend_schema(responses={200: PhaseChoiceOut(many=True)}, summary="Phases the model may be submitted to")
    def get(self, request: Request, model_id: int) -> Response:
        model = access.managed_model(request.user, model_id)
        return self.paginate(request, submitting.phases_for(model), PhaseChoiceOut)


class SubmitView(ApiView):
    throttle_scope = "submit"
    throttle_classes = [ScopedRateThrottle]

    @extend_schema(
        request=SubmitModelIn, responses={201: SubmissionOut}, summary="Submit a version to a phase (no upload)"
    )
    def post(self, request: Request, model_id: int, number: int) -> Response:
        model = access.managed_model(request.user, model_id)
        version = model.versions.filter(number=number).first()
        if version is None:
            raise not_found("version")
        data = SubmitModelIn(data=request.data)
        data.is_valid(raise_exception=True)
        phase = ChallengePhase.objects.select_related("challenge").filter(pk=data.validated_data["phase"]).first()
        if phase is None:
            raise not_found("phase")
        sub = submitting.submit_model(request.user, version, phase, data.submission_fields())
        return Response(submission_data(request, sub, ResultReader(request.user)), status=201)
