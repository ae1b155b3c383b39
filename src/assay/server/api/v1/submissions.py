"""Submissions: submit (a file to a phase), read, your team's list, logs and result, lifecycle actions,
visibility, host marks, and a host's list and CSV export of a challenge's submissions. Thin: the rules are
the services'. Every answer that is a submission is :class:`SubmissionOut` (plus ``result_url``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from assay.evaluation.contract import describe_result
from assay.server.api.throttling import ScopedRateThrottle
from assay.server.challenges.services.phase_rules import phase_with_challenge
from assay.server.challenges.services.roles import participation_of
from assay.server.prepared import Prepared
from assay.server.refusals import Refusal
from assay.server.spreadsheet import safe_text
from assay.server.submissions.models import Submission
from assay.server.submissions.services import cases, lifecycle, queue, scored_against
from assay.server.submissions.services.access import can_view
from assay.server.submissions.services.attempts import evaluation_number
from assay.server.submissions.services.my_submissions import mine_filter, user_submissions
from assay.server.submissions.services.page_rows import shared_relations
from assay.server.submissions.services.result_access import ResultReader
from assay.server.submissions.services.submit import SubmissionFields, gate, submit
from assay.server.teams.services import ActiveMembersOf

from .base import ApiView, FieldsOnce, Pages, hosted_challenge, not_found
from .files import result_url
from .phases import visible_phase


class SubmissionOut(FieldsOnce, serializers.ModelSerializer):
    """A submission for one reader: pass ``context={"reader": ResultReader(user)}`` (without one, the
    output is cut as for a stranger: hidden splits never leak through a forgotten context)."""

    phase_codename = serializers.CharField(source="phase.codename")
    participant_team_name = serializers.CharField(source="participant_team.name")
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    execution_time = serializers.FloatField(read_only=True, allow_null=True)  # null until it ran
    output = serializers.SerializerMethodField(help_text="The evaluation's result, only the splits you may see.")

    result_url = serializers.SerializerMethodField(help_text="A signed URL of the result document, if you may read it.")

    def get_result_url(self, sub: Submission) -> str | None:
        request = self.context.get("request")
        return result_url(request, self._reader(), sub) if request is not None else None

    def _reader(self) -> ResultReader:
        return self.context.get("reader") or ResultReader(AnonymousUser())

    def get_output(self, sub: Submission) -> dict | None:
        return self._reader().output(sub)

    waiting_for = serializers.SerializerMethodField(
        help_text="Why a waiting submission is not evaluated yet (its challenge awaits an administrator's"
        " approval), else null."
    )

    def get_waiting_for(self, sub: Submission) -> str | None:
        return queue.waiting_for(sub)

    class Meta:
        model = Submission
        fields = [
            "id", "phase", "phase_codename", "participant_team", "participant_team_name", "created_by",
            "submission_number",
            "status", "waiting_for", "failure_reason", "is_public", "is_baseline", "is_flagged", "is_verified_by_host",
            "method_name", "method_description", "project_url", "publication_url", "submission_metadata",
            "input_file_name", "input_file_sha256", "input_file_size", "image_digest", "output", "attempt",
            "submitted_at", "started_at", "completed_at", "execution_time", "result_url",
            "files_removed_at", "files_removed_policy",
        ]  # fmt: skip


class ScoredPackageOut(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()


class ScoredAgainstOut(serializers.Serializer):
    recorded = serializers.BooleanField(
        help_text="False: evaluated before Assay recorded it; the phase's current data is shown instead."
    )
    annotation_sha256 = serializers.CharField(allow_null=True, help_text="The annotation file its worker was given.")
    data_package = ScoredPackageOut(
        allow_null=True, help_text="The pinned package version; null without one, or if you may not see the package."
    )


class SubmissionDetailOut(SubmissionOut):
    scored_against = serializers.SerializerMethodField(
        help_text="What the evaluation was scored against (null before a worker was handed it)."
    )

    @extend_schema_field(ScoredAgainstOut(allow_null=True))
    def get_scored_against(self, sub: Submission) -> dict | None:
        reader = self._reader()
        return scored_against.as_told(reader.user, sub, host=reader.hosts(sub))

    class Meta(SubmissionOut.Meta):
        fields = [*SubmissionOut.Meta.fields, "scored_against"]


class DescriptionIn(FieldsOnce, serializers.Serializer):
    """What a participant says about a submission, however its file arrives (one POST, or an upload)."""

    is_public = serializers.BooleanField(required=False, allow_null=True, default=None)
    method_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=lifecycle.METHOD_NAME_MAX
    )
    method_description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=lifecycle.METHOD_DESCRIPTION_MAX
    )
    project_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=1000)
    publication_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=1000)
    submission_metadata = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text="{name: value}"
    )

    def submission_fields(self) -> SubmissionFields:
        v = self.validated_data
        return SubmissionFields(
            is_public=v["is_public"],
            method_name=v["method_name"],
            method_description=v["method_description"],
            project_url=v["project_url"],
            publication_url=v["publication_url"],
            meta=v["submission_metadata"],
        )


class SubmitIn(DescriptionIn):
    input_file = serializers.FileField()
    submission_metadata = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Meta attributes as JSON ({name: value} or a list).",
    )

    def validate_submission_metadata(self, value: str):
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise serializers.ValidationError(f"not valid JSON: {exc.msg}") from None


def viewable_submission(user, submission_id: int) -> Submission:
    sub = (
        Submission.objects.select_related("phase__challenge__host_team", "participant_team", "created_by")
        .filter(pk=submission_id)
        .first()
    )
    if sub is None or not can_view(user, sub):
        raise not_found("submission")
    return sub


def submission_data(
    request: Request, sub: Submission, reader: ResultReader | None = None, when: Callable | None = None
) -> dict:
    """The submission as ``request.user`` may see it (hidden splits cut, the result URL theirs): what
    :class:`SubmissionOut` answers, field for field and in its order, built without DRF's per-field
    machinery (binding 33 field copies and walking them took about half a millisecond of every submit;
    this, a twentieth of it). ``tests/api/test_submission_data.py`` holds the two to the same output. ``when``: how
    a date is written (a page's :func:`_rows` gives DRF's field with the time zone read once)."""
    reader = reader or ResultReader(request.user)
    when = when or _when
    return {
        "id": sub.pk,
        "phase": sub.phase_id,
        "phase_codename": sub.phase.codename,
        "participant_team": sub.participant_team_id,
        "participant_team_name": sub.participant_team.name,
        "created_by": sub.created_by.username,
        "submission_number": sub.submission_number,
        "status": str(sub.status),
        "waiting_for": queue.waiting_for(sub),
        "failure_reason": sub.failure_reason,
        "is_public": sub.is_public,
        "is_baseline": sub.is_baseline,
        "is_flagged": sub.is_flagged,
        "is_verified_by_host": sub.is_verified_by_host,
        "method_name": sub.method_name,
        "method_description": sub.method_description,
        "project_url": sub.project_url,
        "publication_url": sub.publication_url,
        "submission_metadata": sub.submission_metadata,
        "input_file_name": sub.input_file_name,
        "input_file_sha256": sub.input_file_sha256,
        "input_file_size": sub.input_file_size,
        "image_digest": sub.image_digest,
        "output": reader.output(sub),
        "attempt": sub.attempt,
        "submitted_at": when(sub.submitted_at),
        "started_at": when(sub.started_at),
        "completed_at": when(sub.completed_at),
        "execution_time": sub.execution_time,
        "result_url": result_url(request, reader, sub),
        "files_removed_at": when(sub.files_removed_at),
        "files_removed_policy": sub.files_removed_policy,
    }


def _rows(request: Request, reader: ResultReader) -> Callable[[Submission], dict]:
    """A page's rows, each as :func:`submission_data` (one reader for the page: its roles asked once; the
    current time zone read once for the page's dates, where DRF's field asks for it per date)."""
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    when = _when if zone is None else serializers.DateTimeField(default_timezone=zone).to_representation
    return lambda sub: submission_data(request, sub, reader, when)


_DATETIME = serializers.DateTimeField()  # DRF's rendering of a time (ISO 8601, UTC as "Z"), shared


def _when(value) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class PhaseSubmissionsView(ApiView):
    """``POST`` submits a file; ``GET`` lists your team's submissions to the phase."""

    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    throttle_scope = "submit"
    # what self.paginate answers: drf-spectacular documents the list response as this page
    pagination_class = Pages

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: SubmissionOut(many=True)}, summary="Your team's submissions to a phase")
    def get(self, request: Request, phase_id: int) -> Response:
        phase = visible_phase(request.user, phase_id)
        participation = participation_of(request.user, phase.challenge)
        qs = Submission.objects.none()
        if participation is not None:
            qs = Submission.objects.filter(phase=phase, participant_team=participation.team, ignore_submission=False)
        qs = shared_relations(qs).order_by("-submitted_at", "-id")
        return self.paginate(request, qs, _rows(request, ResultReader(request.user)))

    @extend_schema(request={"multipart/form-data": SubmitIn}, responses={201: SubmissionOut})
    def post(self, request: Request, phase_id: int) -> Response:
        phase = phase_with_challenge(phase_id)  # cached: every submit names its phase
        if phase is None:
            raise Http404("no such phase")
        participation = gate(request.user, phase)  # who may submit, before what they sent is read
        data = SubmitIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["input_file"]
        sub = submit(request.user, phase, upload, upload.name, data.submission_fields(), participation=participation)
        return Response(submission_data(request, sub), status=201)


class MySubmissionsView(ApiView):
    """``GET`` every submission of your teams, in every challenge (the web's "My submissions")."""

    pagination_class = Pages

    @extend_schema(
        parameters=[
            OpenApiParameter("challenge", int, description="Only this challenge's submissions (its id)."),
            OpenApiParameter("phase", int, description="Only this phase's submissions (its id)."),
            OpenApiParameter(
                "status", str, enum=list(Submission.Status.values), description="Only submissions in this status."
            ),
        ],
        responses={200: SubmissionOut(many=True)},
        summary="Your teams' submissions in every challenge, newest first; a malformed filter is a 400 naming it",
    )
    def get(self, request: Request) -> Response:
        qs = user_submissions(request.user, mine_filter(request.query_params))
        return self.paginate(request, qs, _rows(request, ResultReader(request.user)))


class MethodIn(serializers.Serializer):
    """The method's new name and description (either or both); the lengths are ``lifecycle.describe``'s."""

    method_name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    method_description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class SubmissionDetailView(ApiView):
    """Read one submission (with its logs where the reader may see them); rename its method (its team);
    visibility and hiding: :class:`SubmissionView`."""

    @extend_schema(responses={200: SubmissionDetailOut})
    def get(self, request: Request, submission_id: int) -> Response:
        found = _detail_query().instances(submission=submission_id)
        reader = ResultReader(request.user)  # who the reader is, asked once for the rights and the output
        sub = found[0] if found else None
        if sub is None or not reader.may_view(sub):
            raise not_found("submission")
        data = SubmissionDetailOut(sub, context={"reader": reader, "request": request}).data
        if reader.may_read_logs(sub):
            data["stdout"] = _read(sub.stdout_file)
            data["stderr"] = _read(sub.stderr_file)
        return Response(data)

    @extend_schema(request=MethodIn, responses={200: SubmissionOut}, summary="Rename the method (the team)")
    def patch(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = MethodIn(data=request.data)
        data.is_valid(raise_exception=True)
        done = lifecycle.describe(request.user, sub, **data.validated_data)
        return Response(submission_data(request, done))


# One submission with what its page shows, compiled once per database (assay.server.prepared): a client
# waiting for a result asks it every few hundred milliseconds, and the ORM took longer to build it than to run it.
_DETAIL: dict[str, Prepared] = {}
_SUBMISSION = -101  # a stand-in: no row has a negative id


def _detail_query() -> Prepared:
    if connection.alias not in _DETAIL:
        qs = Submission.objects.select_related(
            "phase__challenge__host_team",
            "participant_team",
            "created_by",
            "scored_package_version__package",
            "phase__data_package_version__package",
        ).filter(pk=_SUBMISSION)
        _DETAIL[connection.alias] = Prepared(qs, submission=_SUBMISSION)
    return _DETAIL[connection.alias]


def _read(field) -> str | None:
    if not field:
        return None
    with field.open("rb") as fh:
        return fh.read().decode("utf-8", "replace")


class VisibilityIn(serializers.Serializer):
    is_public = serializers.BooleanField()


class MarksIn(serializers.Serializer):
    is_baseline = serializers.BooleanField(required=False)
    is_flagged = serializers.BooleanField(required=False)
    is_verified_by_host = serializers.BooleanField(required=False)


class SubmissionView(ApiView):
    """Change (visibility) or hide one submission; reading it is :class:`submission_views.SubmissionDetailView`."""

    @extend_schema(request=VisibilityIn, responses={200: SubmissionOut}, summary="Show on or hide from the leaderboard")
    def patch(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = VisibilityIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            submission_data(request, lifecycle.set_public(request.user, sub, data.validated_data["is_public"]))
        )

    @extend_schema(responses={204: None}, summary="Hide (soft-delete) a submission")
    def delete(self, request: Request, submission_id: int) -> Response:
        lifecycle.hide(request.user, viewable_submission(request.user, submission_id))
        return Response(status=204)


class SubmissionActionView(ApiView):
    action_name = ""

    @extend_schema(request=None, responses={200: SubmissionOut})
    def post(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        done = getattr(lifecycle, self.action_name)(request.user, sub)
        return Response(submission_data(request, done))


class CancelView(SubmissionActionView):
    action_name = "cancel"


class RerunIn(serializers.Serializer):
    as_new_submission = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Hosts: queue a copy as the team's next submission (the old one cancelled) instead of evaluating "
        "the same submission again. A participant's re-run is always a copy.",
    )


class RerunOut(SubmissionOut):
    """The re-run submission, and how it was re-run."""

    rerun_in_place = serializers.BooleanField(
        read_only=True,
        help_text="True: the same submission is evaluated again (a host's re-run; the earlier evaluation, its "
        "result and logs are kept). False: a copy was queued as the new submission `id`, the old one cancelled.",
    )
    evaluation = serializers.IntegerField(
        read_only=True, help_text="Which evaluation of this submission is queued (1: its first)."
    )

    class Meta(SubmissionOut.Meta):
        fields = [*SubmissionOut.Meta.fields, "rerun_in_place", "evaluation"]


class RerunView(ApiView):
    @extend_schema(
        request=RerunIn,
        responses={200: RerunOut},
        summary="Evaluate again: a host's re-run keeps the submission (a new attempt), unless as_new_submission",
    )
    def post(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = RerunIn(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        done = lifecycle.rerun(request.user, sub, as_new=data.validated_data["as_new_submission"])
        done.rerun_in_place = done.pk == sub.pk
        done.evaluation = evaluation_number(done)
        context = {"reader": ResultReader(request.user), "request": request}
        return Response(RerunOut(done, context=context).data)


class ResumeView(SubmissionActionView):
    action_name = "resume"


class MarksView(ApiView):
    @extend_schema(request=MarksIn, responses={200: SubmissionOut}, summary="Host marks: baseline, flagged, verified")
    def patch(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = MarksIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        done = lifecycle.mark(
            request.user,
            sub,
            baseline=v.get("is_baseline"),
            flagged=v.get("is_flagged"),
            verified=v.get("is_verified_by_host"),
        )
        return Response(submission_data(request, done))


class SubmissionFileView(ApiView):
    """stdout, stderr (``disable_logs`` hides them from participants) and the result file, as text."""

    field = ""

    @extend_schema(
        responses={(200, "text/plain"): OpenApiTypes.STR, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request, submission_id: int):
        sub = viewable_submission(request.user, submission_id)
        body = ResultReader(request.user).document(sub, self.field)  # cut to what this reader may see
        return HttpResponse(body, content_type="text/plain; charset=utf-8")


class StdoutView(SubmissionFileView):
    field = "stdout_file"


class StderrView(SubmissionFileView):
    field = "stderr_file"


class ResultView(SubmissionFileView):
    field = "submission_result_file"


class _FormatIsOurs(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` to the view (DRF would look for a renderer named so)."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class CasesView(ApiView):
    """A submission's per-case rows joined with the phase's hidden case metadata: the challenge's hosts,
    its auditors and staff (``cases.require_case_reader``); its own team is refused (403), others 404."""

    pagination_class = Pages
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: every row as a CSV file"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,  # {count, columns, next, previous, results: [row]}
            (200, "text/csv"): OpenApiTypes.STR,
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
        },
        summary="Per-case rows of a submission (hosts, auditors)",
    )
    def get(self, request: Request, submission_id: int):
        sub = (
            Submission.objects.select_related("phase__challenge__host_team", "participant_team")
            .filter(pk=submission_id)
            .first()
        )
        if sub is None:
            raise not_found("submission")
        cases.require_case_reader(request.user, sub)
        rows = cases.case_rows(sub)
        if rows is None:
            raise Refusal("not_found", "this submission's evaluation returned no per-case rows", 404)
        columns = cases.case_columns(sub)
        wanted = request.query_params.get("format", "json")
        if wanted == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
            writer.writerow({c: safe_text(c) for c in columns})
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
            response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="submission-{sub.pk}-cases.csv"'
            return response
        if wanted != "json":
            raise Refusal("invalid", "format is json or csv", 400)
        answer = self.paginate(request, rows, lambda row: row)
        answer.data = {"count": answer.data["count"], "columns": columns, **answer.data}
        return answer


def _cell(value: object) -> object:
    """A case value as a CSV cell: numbers as they are (a negative one is no formula), text made safe."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return safe_text(value)


EXPORT_COLUMNS = [
    "id", "phase", "team", "members", "created_by", "status", "submission_number", "submitted_at", "started_at",
    "completed_at", "execution_time", "is_public", "is_baseline", "is_flagged", "is_verified_by_host",
    "method_name", "method_description", "project_url", "publication_url", "input_file_name", "input_file_sha256",
    "failure_reason", "result",
]  # fmt: skip


def _row(sub: Submission, reader: ResultReader, members_of: ActiveMembersOf) -> dict:
    return {
        "id": sub.pk,
        "phase": sub.phase.codename,
        "team": sub.participant_team.name,
        "members": ", ".join(m.get_username() for m in members_of(sub.participant_team)),
        "created_by": sub.created_by.username,
        "status": sub.status,
        "submission_number": sub.submission_number,
        "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else "",
        "started_at": sub.started_at.isoformat() if sub.started_at else "",
        "completed_at": sub.completed_at.isoformat() if sub.completed_at else "",
        "execution_time": sub.execution_time if sub.execution_time is not None else "",
        "is_public": sub.is_public,
        "is_baseline": sub.is_baseline,
        "is_flagged": sub.is_flagged,
        "is_verified_by_host": sub.is_verified_by_host,
        "method_name": sub.method_name,
        "method_description": sub.method_description,
        "project_url": sub.project_url,
        "publication_url": sub.publication_url,
        "input_file_name": sub.input_file_name,
        "input_file_sha256": sub.input_file_sha256,
        "failure_reason": sub.failure_reason,
        "result": reader.result(sub) if isinstance(sub.output, dict) else "",
    }


class ChallengeSubmissionsView(ApiView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(
        parameters=[
            OpenApiParameter("phase", int),
            OpenApiParameter("status", str, enum=[s.value for s in Submission.Status]),
            OpenApiParameter("export", str, enum=["csv"], description="csv: download a CSV file"),
            OpenApiParameter("page", int),  # named here: the CSV answer hides the page from drf-spectacular
            OpenApiParameter("page_size", int),
        ],
        responses={200: SubmissionOut(many=True), (200, "text/csv"): OpenApiTypes.STR},
        summary="Every submission of a challenge (hosts)",
    )
    def get(self, request: Request, challenge_id: int):
        challenge = hosted_challenge(request.user, challenge_id)
        qs = shared_relations(Submission.objects.filter(phase__challenge=challenge))
        phase = request.query_params.get("phase")
        if phase:
            if not phase.isdigit():
                raise Refusal("invalid", "phase is a phase id", 400)
            qs = qs.filter(phase_id=int(phase))
        status = request.query_params.get("status")
        if status:
            if status not in Submission.Status.values:
                raise Refusal("invalid", f"status is one of {Submission.Status.values}", 400)
            qs = qs.filter(status=status)
        qs = qs.order_by("submitted_at", "id")
        reader = ResultReader(request.user)  # hosts: every split; the one rule all the same
        if request.query_params.get("export") == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            members_of = ActiveMembersOf()
            for sub in qs.iterator(chunk_size=500):
                row = _row(sub, reader, members_of)
                row["result"] = describe_result(row["result"])  # readable, undefined metrics as "—"
                writer.writerow({k: safe_text(v) for k, v in row.items()})
            response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="challenge-{challenge.pk}-submissions.csv"'
            return response
        return self.paginate(request, qs, _rows(request, reader))
