"""Every endpoint evalai CLI 1.3.18 calls (reference/evalai.md §7.2), the remote-worker endpoints
(§5.2) and EvalAI-Starters' GitHub endpoints (§1.1) — each a thin adapter over Assay's services."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.utils import timezone
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from assay.bundle import BundleError, read_bundle
from assay.server.accounts.login_throttle import password_login
from assay.server.accounts.models import ApiToken
from assay.server.accounts.tokens import create_token, evalai_cli_token
from assay.server.api.throttling import ScopedRateThrottle
from assay.server.challenges.models import Challenge, ChallengePhase
from assay.server.challenges.services import participation as participation_rules
from assay.server.challenges.services.bundle_import import ImportRefused, import_bundle
from assay.server.challenges.services.listing import (
    phase_seen,
    phase_splits_seen,
    phases_seen,
    visible_challenges,
)
from assay.server.challenges.services.phase_rules import phase_with_challenge
from assay.server.challenges.services.read_versions import challenge_updated
from assay.server.challenges.services.roles import is_host, participation_of
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle, queue, tokens
from assay.server.submissions.services.access import can_view
from assay.server.submissions.services.page_rows import shared_relations
from assay.server.submissions.services.result_access import ResultReader
from assay.server.submissions.services.submit import SubmissionFields, gate, remaining, submit
from assay.server.teams import services as teams
from assay.server.uploads import services as uploads
from assay.server.uploads.models import Upload

from ..auth import IsUserOrWorker
from ..v1.base import uploaded_path
from ..v1.files import download_url, result_url, upload_part_url
from . import shapes
from .base import EvalAIReadView, EvalAIView, fail

# --- accounts -----------------------------------------------------------------------------------------


class LoginView(EvalAIView):
    """``POST /api/auth/login`` → ``{"token"}``: a one-day token the CLI swaps for a long one at once."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    def post(self, request: Request) -> Response:
        username = str(request.data.get("username", ""))[:150]
        password = str(request.data.get("password", ""))[:1000]
        user = password_login(request._request, username, password) if username else None  # 429 when locked
        if user is None or not user.is_active:
            raise fail("Unable to log in with provided credentials.", 400, "bad_credentials")
        _, token = create_token(user, "evalai login", days=1, sign_in=True)
        return Response({"token": token})


class AuthTokenView(EvalAIView):
    """``GET /api/accounts/user/get_auth_token`` → the user's long-lived evalai CLI token, the same one on
    every call (as EvalAI); the short login token is revoked."""

    def get(self, request: Request) -> Response:
        row, token = evalai_cli_token(request.user)
        used = request.auth
        if isinstance(used, ApiToken) and used.name == "evalai login":
            used.revoked_at = timezone.now()
            used.save(update_fields=["revoked_at"])
        return Response({"token": token, "expires_at": shapes.date(row.expires_at)})


# --- challenges ---------------------------------------------------------------------------------------


def _challenge(user, challenge_id: int) -> Challenge:
    c = visible_challenges(user).filter(pk=challenge_id).first()
    if c is None:
        raise fail("Challenge does not exist!", 404, "not_found")
    return c


class ChallengeListView(EvalAIReadView):
    """``/api/challenges/challenge/<time>/<approved>/<published>``.

    ``time`` is all|past|present|future, ``approved`` all|approved, ``published`` all|public."""

    def get(self, request: Request, time: str, approved: str, published: str) -> Response:
        qs = visible_challenges(request.user).order_by("-start_date", "id")
        now = timezone.now()
        if time == "past":
            qs = qs.filter(end_date__lt=now)
        elif time == "present":
            qs = qs.filter(start_date__lte=now, end_date__gte=now)
        elif time == "future":
            qs = qs.filter(start_date__gt=now)
        elif time != "all":
            raise fail("Wrong url pattern!", 400)
        if approved == "approved":
            qs = qs.filter(approved_by_admin=True)
        elif approved != "all":
            raise fail("Wrong url pattern!", 400)
        if published == "public":
            qs = qs.filter(published=True)
        elif published != "all":
            raise fail("Wrong url pattern!", 400)
        return self.paginate(request, qs, lambda c: shapes.challenge(request, c))


class ChallengeDetailView(EvalAIReadView):
    def get(self, request: Request, challenge_id: int) -> Response:
        return Response(shapes.challenge(request, _challenge(request.user, challenge_id)))


class HostTeamChallengesView(EvalAIView):
    def get(self, request: Request, team_id: int) -> Response:
        team = teams.host_teams_of(request.user).filter(pk=team_id).first()
        if team is None:
            raise fail("ChallengeHostTeam does not exist", 404, "not_found")
        qs = Challenge.objects.filter(host_team=team).select_related("host_team").order_by("-start_date", "id")
        return self.paginate(request, qs, lambda c: shapes.challenge(request, c))


class ParticipantTeamChallengesView(EvalAIView):
    def get(self, request: Request, team_id: int) -> Response:
        team = teams.participant_teams_of(request.user).filter(pk=team_id).first()
        if team is None:
            raise fail("ParticipantTeam does not exist", 404, "not_found")
        visible = visible_challenges(request.user).values("pk")
        qs = (
            Challenge.objects.filter(participations__team=team, pk__in=visible)
            .select_related("host_team")
            .order_by("-start_date", "id")
        )
        return self.paginate(request, qs, lambda c: shapes.challenge(request, c))


def _phases(user, challenge: Challenge):
    return phases_seen(challenge, is_host(user, challenge)).select_related("challenge").order_by("config_id")


def _phase(user, phase_id: int, challenge_id: int | None = None) -> ChallengePhase:
    phase = phase_with_challenge(phase_id)  # cached: every submit names its phase
    if phase is None or (challenge_id is not None and phase.challenge_id != challenge_id):
        raise fail("Challenge Phase does not exist", 404, "not_found")
    challenge = _challenge(user, phase.challenge_id)
    if not phase_seen(phase, is_host(user, challenge)):
        raise fail("Challenge Phase does not exist", 404, "not_found")
    return phase


class PhaseListView(EvalAIReadView):
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = _challenge(request.user, challenge_id)
        return self.paginate(request, _phases(request.user, challenge), lambda p: shapes.phase(request, p))


class PhaseListPlainView(EvalAIReadView):
    """``/api/challenges/<c>/phases/`` (remote-evaluation scripts): the same phases, unpaginated."""

    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = _challenge(request.user, challenge_id)
        return Response([shapes.phase(request, p) for p in _phases(request.user, challenge)])


class PhaseDetailView(EvalAIReadView):
    def get(self, request: Request, phase_id: int, challenge_id: int | None = None) -> Response:
        return Response(shapes.phase(request, _phase(request.user, phase_id, challenge_id)))


class PhaseBySlugView(EvalAIReadView):
    def get(self, request: Request, slug: str) -> Response:
        tail = slug.rsplit("-", 1)[-1]
        phase = _phase(request.user, int(tail)) if tail.isdigit() else None
        if phase is None or shapes.phase_slug(phase) != slug:
            raise fail("Challenge Phase does not exist", 404, "not_found")
        return Response(shapes.phase(request, phase))


class PhaseSplitListView(EvalAIReadView):
    """Non-hosts see the public phase-splits (EvalAI), by the leaderboards' own rule (reveal_at included)."""

    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = _challenge(request.user, challenge_id)
        rows = phase_splits_seen(challenge, is_host(request.user, challenge))
        return Response([shapes.phase_split(ps) for ps in rows])


class ChallengeByQueueView(EvalAIView):
    """``/api/challenges/challenge/queues/<queue>/``: a remote worker finds its challenge (hosts only)."""

    permission_classes = [IsUserOrWorker]

    def get(self, request: Request, queue_name: str) -> Response:
        challenge = _queue_challenge(request, queue_name)
        return Response(shapes.challenge(request, challenge))


# --- teams and participation -------------------------------------------------------------------------


class ParticipantTeamsView(EvalAIView):
    def get(self, request: Request) -> Response:
        qs = teams.participant_teams_of(request.user).order_by("pk")
        return self.paginate(request, qs, shapes.participant_team)

    def post(self, request: Request) -> Response:
        name = str(request.data.get("team_name", ""))
        try:
            team = teams.create_participant_team(request.user, name, str(request.data.get("team_url", "") or ""))
        except teams.TeamError as exc:
            if exc.code == "name_taken":
                msg = "participant team with this team name already exists."
                return Response({"team_name": [msg], "error": msg}, status=400)
            raise
        return Response(shapes.participant_team(team), status=201)


class HostTeamsView(EvalAIView):
    def get(self, request: Request) -> Response:
        return self.paginate(request, teams.host_teams_of(request.user).order_by("pk"), shapes.host_team_full)

    def post(self, request: Request) -> Response:
        name = str(request.data.get("team_name", ""))
        try:
            team = teams.create_host_team(name, request.user)
        except teams.TeamError as exc:
            if exc.code == "name_taken":
                msg = "challenge host team with this team name already exists."
                return Response({"team_name": [msg], "error": msg}, status=400)
            raise
        url = str(request.data.get("team_url", "") or "")[:200]
        if url:
            type(team).objects.filter(pk=team.pk).update(team_url=url)
            team.team_url = url
        return Response(shapes.host_team(team), status=201)


class ParticipateView(EvalAIView):
    """Registers a team, or accepts the terms for a team registered without them (the CLI asked the
    participant to accept them before calling this). Both are a 201, the only answer the CLI reports."""

    def post(self, request: Request, challenge_id: int, team_id: int) -> Response:
        challenge = _challenge(request.user, challenge_id)
        team = teams.participant_teams_of(request.user).filter(pk=team_id).first()
        if team is None:
            raise fail("ParticipantTeam does not exist", 404, "not_found")
        _, created = participation_rules.take_part(request.user, challenge, team, accept_terms=True)
        done = "is taking part in" if created else "accepted the terms and takes part in"
        return Response({"success": f"team {team.name} {done} {challenge.title}"}, status=201)


class RemainingView(EvalAIView):
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = _challenge(request.user, challenge_id)
        p = participation_of(request.user, challenge)
        if p is None:
            raise fail("You haven't participated in the challenge", 403, "not_participating")
        phases = []
        for phase in _phases(request.user, challenge):
            phases.append(
                {"id": phase.pk, "slug": shapes.phase_slug(phase), "name": phase.name,
                 "start_date": shapes.date(phase.start_date), "end_date": shapes.date(phase.end_date),
                 "limits": remaining(phase, p.team)}
            )  # fmt: skip
        return Response({"participant_team": p.team.name, "participant_team_id": p.team_id, "phases": phases})


# --- submissions --------------------------------------------------------------------------------------


def _fields(data) -> SubmissionFields:
    raw_public = data.get("is_public")
    is_public = None
    if raw_public not in (None, "", "None", "null"):
        is_public = str(raw_public).strip().lower() in ("true", "1", "yes")
    meta = data.get("submission_metadata") or None
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            raise fail("submission_metadata is not valid JSON", 400, "bad_meta_attribute") from None
    return SubmissionFields(
        is_public=is_public,
        method_name=str(data.get("method_name", "") or "")[:1000],
        method_description=str(data.get("method_description", "") or "")[:20000],
        project_url=_url(data.get("project_url")),
        publication_url=_url(data.get("publication_url")),
        meta=meta,
    )


def _url(value) -> str:
    value = str(value or "").strip()[:1000]
    if value and not value.lower().startswith(("http://", "https://")):
        raise fail(f"{value!r} is not an http(s) URL", 400, "invalid")
    return value


class PhaseSubmissionsView(EvalAIView):
    def get_throttles(self):
        if self.request.method == "POST":
            self.throttle_scope = "submit"
            return [ScopedRateThrottle()]
        return []

    def get(self, request: Request, challenge_id: int, phase_id: int) -> Response:
        phase = _phase(request.user, phase_id, challenge_id)
        p = participation_of(request.user, phase.challenge)
        if p is None:
            raise fail("You haven't participated in the challenge", 403, "not_participating")
        qs = Submission.objects.filter(phase=phase, participant_team=p.team, ignore_submission=False)
        team_name = request.query_params.get("participant_team__team_name")
        if team_name:
            qs = qs.filter(participant_team__name=team_name)
        qs = shared_relations(qs)
        reader = ResultReader(request.user)
        return self.paginate(
            request, qs.order_by("-submitted_at", "-id"), lambda s: shapes.submission(request, s, reader)
        )

    def post(self, request: Request, challenge_id: int, phase_id: int) -> Response:
        phase = _phase(request.user, phase_id, challenge_id)
        participation = gate(request.user, phase)  # who may submit, before what they sent is read
        upload = _file(request, "input_file", "a submission file is required (form field input_file)", "file_required")
        sub = submit(request.user, phase, upload, upload.name, _fields(request.data), participation=participation)
        return Response(shapes.submission(request, sub), status=201)


def _file(request: Request, field: str, message: str, code: str = "error") -> UploadedFile:
    """The file part ``field`` of a multipart body: a JSON body may give the field any value (a list, a
    number, text), and none of them is a file."""
    upload = request.data.get(field)
    if not isinstance(upload, UploadedFile):
        raise fail(message, 400, code)
    return upload


def _viewable(user, submission_id: int) -> Submission:
    sub = (
        Submission.objects.select_related("phase__challenge__host_team", "participant_team", "created_by")
        .filter(pk=submission_id)
        .first()
    )
    if sub is None or not can_view(user, sub):
        raise fail("Submission does not exist", 404, "not_found")
    return sub


class SubmissionView(EvalAIView):
    """``GET`` a submission (a host's remote worker too); ``DELETE`` hides it, as EvalAI's soft delete."""

    permission_classes = [IsUserOrWorker]

    def get(self, request: Request, submission_id: int) -> Response:
        token = _worker_token(request)
        if token is not None:
            sub = queue.readable_by_worker(token, submission_id)  # held, or offered now: as the native API
            if sub is None:
                raise fail("Submission does not exist", 404, "not_found")
            return Response(shapes.submission(request, sub))
        _need_user(request)
        return Response(shapes.submission(request, _viewable(request.user, submission_id)))

    def delete(self, request: Request, submission_id: int) -> Response:
        _need_user(request)
        lifecycle.hide(request.user, _viewable(request.user, submission_id))
        return Response(status=204)


class SubmissionVisibilityView(EvalAIView):
    """``PATCH /api/jobs/challenge/<c>/challenge_phase/<p>/submission/<s>`` {is_public, method fields}."""

    def patch(self, request: Request, challenge_id: int, phase_id: int, submission_id: int) -> Response:
        sub = _viewable(request.user, submission_id)
        if sub.phase_id != phase_id or sub.phase.challenge_id != challenge_id:
            raise fail("Submission does not exist", 404, "not_found")
        if "is_public" in request.data:
            sub = lifecycle.set_public(request.user, sub, str(request.data["is_public"]).lower() in ("true", "1"))
        if request.data.get("is_baseline") is not None:
            sub = lifecycle.mark(request.user, sub, baseline=str(request.data["is_baseline"]).lower() in ("true", "1"))
        return Response(shapes.submission(request, sub))


class SubmissionMetaView(EvalAIView):
    """``PATCH …/update_submission_meta/``: cancel, the team's method name and description, or a host's
    flag / baseline / verify marks."""

    def patch(self, request: Request, challenge_id: int, submission_id: int) -> Response:
        sub = _viewable(request.user, submission_id)
        if sub.phase.challenge_id != challenge_id:
            raise fail("Submission does not exist", 404, "not_found")
        data = request.data

        def flag(name):
            return None if data.get(name) is None else str(data[name]).lower() in ("true", "1")

        if str(data.get("status", "")).lower() == "cancelled":
            sub = lifecycle.cancel(request.user, sub)
        described = {key: data[key] for key in ("method_name", "method_description") if key in data}
        if described:
            sub = lifecycle.describe(request.user, sub, **described)
        marks = {
            "baseline": flag("is_baseline"),
            "flagged": flag("is_flagged"),
            "verified": flag("is_verified_by_host"),
        }
        if any(v is not None for v in marks.values()):
            sub = lifecycle.mark(request.user, sub, **marks)
        if flag("is_public") is not None:
            sub = lifecycle.set_public(request.user, sub, flag("is_public"))
        return Response(shapes.submission(request, sub))


class RerunView(EvalAIView):
    def post(self, request: Request, submission_id: int) -> Response:
        clone = lifecycle.rerun(request.user, _viewable(request.user, submission_id))
        return Response(
            {"success": "Submission result has been successfully rerun", **shapes.submission(request, clone)}
        )


class ResumeView(EvalAIView):
    def post(self, request: Request, submission_id: int) -> Response:
        sub = lifecycle.resume(request.user, _viewable(request.user, submission_id))
        return Response({"success": "Submission has been resumed", **shapes.submission(request, sub)})


FILE_FIELDS = ("input_file", "stdout_file", "stderr_file", "submission_result_file", "submission_metadata_file")


class SubmissionFileView(EvalAIView):
    """``/api/jobs/submission_files/?bucket=&key=`` → ``{"signed_url"}`` for a file you may read."""

    def get(self, request: Request) -> Response:
        key = str(request.query_params.get("key", ""))[:500]
        if not key or not request.query_params.get("bucket"):
            raise fail("bucket and key are required", 400)
        query = Q()
        for name in FILE_FIELDS:
            query |= Q(**{name: key})
        sub = Submission.objects.select_related("phase__challenge__host_team", "participant_team").filter(query).first()
        reader = ResultReader(request.user)  # the one rule, its roles asked once for every question below
        if sub is None or not reader.may_view(sub):
            raise fail("File does not exist", 404, "not_found")
        field = next(name for name in FILE_FIELDS if getattr(sub, name).name == key)
        if field in ("stdout_file", "stderr_file") and not reader.may_read_logs(sub):
            raise fail("File does not exist", 404, "not_found")
        if field == "submission_metadata_file" and not reader.may_read_metadata(sub):
            raise fail("File does not exist", 404, "not_found")
        if field in ("submission_result_file", "stdout_file", "stderr_file"):  # cut to what this reader may see
            return Response({"signed_url": result_url(request, reader, sub, field)})
        return Response({"signed_url": download_url(request, key)})


# --- the --large flow: the object store's presigned part URLs, or (local files) Assay's own ----------------


class PresignedSubmissionView(EvalAIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submit"

    def post(self, request: Request, phase_id: int) -> Response:
        phase = _phase(request.user, phase_id)
        participation = gate(request.user, phase)  # who may submit, before what they sent is judged
        try:
            chunks = int(request.data.get("num_file_chunks", 1))
        except (TypeError, ValueError):
            raise fail("num_file_chunks must be a number", 400) from None
        upload = uploads.begin(
            request.user,
            phase,
            str(request.data.get("file_name", "")),
            _fields(request.data),
            chunk_size=uploads.EVALAI_CHUNK,
            part_count=chunks,
            participation=participation,
        )
        # with an object store the parts go straight to it, as on EvalAI's S3; else to Assay's own part URLs
        direct = uploads.direct_part_urls(upload)
        part_urls = direct or [upload_part_url(request, str(upload.pk), n) for n in range(1, chunks + 1)]
        urls = [{"partNumber": n, "url": url} for n, url in enumerate(part_urls, 1)]
        return Response(
            {"presigned_urls": urls, "upload_id": str(upload.pk), "submission_pk": upload.submission_id}, 201
        )


def _upload_of(user, phase_id: int, submission_id: int) -> Upload:
    upload = Upload.objects.filter(submission_id=submission_id, phase_id=phase_id, user=user).first()
    if upload is None:
        raise fail("Submission does not exist", 404, "not_found")
    return upload


class FinishUploadView(EvalAIView):
    def post(self, request: Request, phase_id: int, submission_id: int) -> Response:
        upload = _upload_of(request.user, phase_id, submission_id)
        sub = uploads.finish(upload)
        return Response({"upload_id": str(upload.pk), "submission_pk": sub.pk, "status": sub.status})


class SendSubmissionMessageView(EvalAIView):
    """EvalAI queues the job here; Assay queued it when the upload finished. evalai CLI also calls this
    after a failed upload: then the submission fails with the reason instead of being evaluated broken."""

    def post(self, request: Request, phase_id: int, submission_id: int) -> Response:
        upload = _upload_of(request.user, phase_id, submission_id)
        if upload.status == Upload.Status.OPEN:
            uploads.abort(upload, "the upload did not complete: some parts never arrived")
        upload.refresh_from_db()
        if upload.status != Upload.Status.COMPLETE:
            raise fail(f"the upload failed: {upload.failure_reason}", 400, "upload_failed")
        return Response({"success": "The submission message has been sent", "submission_pk": submission_id})


class AnnotationUploadView(EvalAIView):
    def post(self, request: Request, phase_id: int) -> Response:
        raise fail(
            "Assay takes annotation files with the bundle: add it to the bundle and run"
            " `assay host challenge update CHALLENGE PATH` (or push to your GitHub challenge repository)",
            400,
            "not_supported",
        )


# --- leaderboard ----------------------------------------------------------------------------------------


class LeaderboardView(EvalAIReadView):
    all_entries = False

    def get(self, request: Request, phase_split_id: int) -> Response:
        from .leaderboard import leaderboard_response

        return leaderboard_response(self, request, phase_split_id, all_entries=self.all_entries)


class AllEntriesLeaderboardView(LeaderboardView):
    all_entries = True


# --- remote evaluation (host-run workers, §5.2) ---------------------------------------------------------


def _worker_token(request: Request):
    from assay.server.submissions.models import WorkerToken

    return request.auth if isinstance(request.auth, WorkerToken) else None


def _need_user(request: Request) -> None:
    """A user's route: a worker token authenticated, as no user (403, as DRF answers it on every other
    route of this face); no credentials at all, 401."""
    if _worker_token(request) is not None:
        raise fail("a worker token cannot do this: use a user's token", 403, "forbidden")
    if not getattr(request.user, "is_authenticated", False):
        raise fail("Authentication credentials were not provided.", 401, "not_authenticated")


def _queue_challenge(request: Request, queue_name: str) -> Challenge:
    """The remote challenge behind ``queue_name``, for its hosts (user token) or its worker token."""
    token = _worker_token(request)
    if token is not None:
        if token.queue_name != queue_name or token.challenge_id is None:
            raise fail("this worker token serves another queue", 403, "forbidden")
        return Challenge.objects.select_related("host_team").get(pk=token.challenge_id)
    _need_user(request)
    pk = tokens.challenge_id_of_queue(queue_name)
    challenge = Challenge.objects.select_related("host_team").filter(pk=pk).first() if pk is not None else None
    if challenge is None or not challenge.remote_evaluation or not is_host(request.user, challenge):
        raise fail("Challenge queue does not exist, or you are not one of its hosts", 404, "not_found")
    return challenge


class QueueMessageView(EvalAIView):
    """``GET /api/jobs/challenge/queues/<queue>/``: the oldest waiting submission as an SQS-like message.

    Like SQS, reading does not take the job: the worker takes it when it reports ``running`` (or its
    result), and a job someone else took already reads ``running``, which Starters' loop skips."""

    permission_classes = [IsUserOrWorker]

    def get(self, request: Request, queue_name: str) -> Response:
        challenge = _queue_challenge(request, queue_name)
        sub = queue.peek(tokens.queue_name(challenge))
        if sub is None:
            return Response({"body": None, "receipt_handle": None})
        body = {"challenge_pk": challenge.pk, "phase_pk": sub.phase_id, "submission_pk": sub.pk,
                "is_static_dataset_code_upload_submission": False}  # fmt: skip
        return Response({"body": body, "receipt_handle": f"{sub.pk}:{sub.attempt}"})


class QueueAckView(EvalAIView):
    """``POST /api/jobs/queues/<queue>/`` deletes an SQS message; Assay's queue needs no ack."""

    permission_classes = [IsUserOrWorker]

    def post(self, request: Request, queue_name: str) -> Response:
        _queue_challenge(request, queue_name)
        return Response({"success": "Message deleted successfully from the queue"})


class UpdateSubmissionView(EvalAIView):
    """``PATCH`` {submission, submission_status: running|queued} takes the job; ``PUT`` reports its end:
    {submission, submission_status, stdout, stderr, result (JSON, either EvalAI format), metadata}."""

    permission_classes = [IsUserOrWorker]
    partial_ok = False

    def _sub(self, request: Request, challenge_id: int):
        from .remote import queue_token

        challenge = Challenge.objects.select_related("host_team").filter(pk=challenge_id).first()
        if challenge is None or not challenge.remote_evaluation:
            raise fail("Challenge does not exist", 404, "not_found")
        _queue_challenge(request, tokens.queue_name(challenge))
        try:
            sid = int(request.data.get("submission"))
        except (TypeError, ValueError):
            raise fail("submission (an id) is required", 400) from None
        sub = Submission.objects.filter(pk=sid, phase__challenge=challenge).select_related("phase").first()
        if sub is None:
            raise fail("Submission does not exist", 404, "not_found")
        return challenge, sub, _worker_token(request) or queue_token(challenge)

    def patch(self, request: Request, challenge_id: int) -> Response:
        from .remote import take

        challenge, sub, token = self._sub(request, challenge_id)
        status = str(request.data.get("submission_status", "")).lower()
        if status not in ("running", "queued"):
            if self.partial_ok and status in ("partially_evaluated", "finished", "failed"):
                return self.put(request, challenge_id)
            raise fail("submission_status must be running or queued here", 400)
        sub = take(token, sub, str(request.data.get("job_name", ""))[:200], challenge)
        return Response(shapes.submission(request, sub))

    def put(self, request: Request, challenge_id: int) -> Response:
        from .remote import report

        challenge, sub, token = self._sub(request, challenge_id)
        sub = report(token, sub, challenge, request.data)
        return Response({"success": f"Submission {sub.pk} is {sub.status}", **shapes.submission(request, sub)})


class PartialUpdateView(UpdateSubmissionView):
    partial_ok = True


class StartedAtView(EvalAIView):
    permission_classes = [IsUserOrWorker]

    def patch(self, request: Request, submission_id: int) -> Response:
        from .remote import queue_token, take

        token = _worker_token(request)
        sub = Submission.objects.select_related("phase__challenge__host_team").filter(pk=submission_id).first()
        if sub is None or not sub.phase.challenge.remote_evaluation or (token and token.queue_name != sub.queue_name):
            raise fail("Submission does not exist", 404, "not_found")  # another queue's job: as a missing one
        challenge = sub.phase.challenge
        _queue_challenge(request, tokens.queue_name(challenge))
        sub = take(_worker_token(request) or queue_token(challenge), sub, "", challenge)
        return Response(shapes.submission(request, sub))


# --- EvalAI-Starters GitHub flow and the zip upload ------------------------------------------------------


def _bundle_text(exc: BundleError) -> str:
    return "\n".join(
        f"{p.file}:{p.line} [{p.key}] {p.message}" if p.line else f"{p.file} [{p.key}] {p.message}"
        for p in exc.problems
        if p.severity == "error"
    ) or "; ".join(p.message for p in exc.problems)


class GithubBundleView(EvalAIView):
    """``validate_challenge_config/``, ``create_or_update_github_challenge/`` and ``zip_upload/``."""

    mode = "create"

    def post(self, request: Request, team_id: int) -> Response:
        team = teams.host_teams_of(request.user).filter(pk=team_id).first()
        if team is None:
            raise fail("ChallengeHostTeam does not exist, or you are not in it", 404, "not_found")
        upload = _file(request, "zip_configuration", "zip_configuration (the bundle zip) is required")
        repo = str(request.data.get("GITHUB_REPOSITORY", "") or "")[:200]
        branch = str(request.data.get("GITHUB_BRANCH_NAME", request.data.get("GITHUB_BRANCH", "")) or "")[:200]
        with uploaded_path(upload) as path:
            try:
                with read_bundle(path, limits=settings.BUNDLE_LIMITS) as bundle:
                    if self.mode == "validate":
                        return Response({"Success": "The challenge config has been validated successfully"})
                    existing = None
                    if repo:
                        existing = Challenge.objects.filter(host_team=team, github_repository=repo).first()
                    report = import_bundle(bundle, host_team=team, user=request.user, challenge=existing)
            except BundleError as exc:
                return Response({"error": _bundle_text(exc)}, status=400)
            except ImportRefused as exc:
                # EvalAI's config endpoint answers a valid bundle it cannot apply with 400, not 409
                raise fail(exc.message, 400 if exc.status == 409 else exc.status, exc.code) from None
        if repo and not report.challenge.github_repository:
            Challenge.objects.filter(pk=report.challenge.pk).update(github_repository=repo, github_branch=branch)
            challenge_updated(report.challenge.pk)  # a queryset update sends no signal
        verb = "created" if report.created else "updated"
        return Response(
            {"Success": f"Challenge {report.challenge.title} has been {verb} successfully",
             "challenge_id": report.challenge.pk, "changes": report.changes},
            status=201 if report.created else 200,
        )  # fmt: skip


class ValidateConfigView(GithubBundleView):
    mode = "validate"
