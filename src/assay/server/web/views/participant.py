"""Participant pages: participate, submit (plain or resumable chunked upload), my submissions, files."""

from __future__ import annotations

import io
import mimetypes
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assay.server.challenges.models import Challenge, ChallengePhase, Participation
from assay.server.challenges.services import participation as participation_rules
from assay.server.challenges.services.listing import phases_seen
from assay.server.challenges.services.participation import ParticipationError
from assay.server.challenges.services.roles import is_host, participation_of
from assay.server.refusals import Refusal
from assay.server.storage import presigned_get, safe_file_name
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle, log_text, retention
from assay.server.submissions.services.access import can_view
from assay.server.submissions.services.attempts import note_reruns
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.my_submissions import (
    FILTER_PARAMETERS,
    MineFilter,
    any_in_progress,
    mine_choices,
    mine_filter,
    queue_positions,
    quotas,
    team_submissions,
    user_submissions,
)
from assay.server.submissions.services.result_access import ResultReader
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.teams.models import ParticipantTeam
from assay.server.teams.services import TeamError, create_participant_team, participant_teams_of

from .. import wording
from .common import challenge_context, challenge_or_404, confirmation, phase_or_404, refusal, safe_next, safe_target
from .errors import refusal_json

# --- participate -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def participate(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    context = challenge_context(request, challenge, "participate")
    if request.method == "POST":
        team = _chosen_team(request)
        if team is not None:
            try:
                participation, _ = participation_rules.take_part(
                    request.user, challenge, team, accept_terms=request.POST.get("accept_terms") == "on"
                )
            except ParticipationError as exc:
                refusal(request, exc)
            else:
                if participation.status == Participation.Status.PENDING:
                    messages.info(
                        request,
                        f"Team {team.name} is registered and waits for the hosts' approval; "
                        "you can submit once they approve it.",
                    )
                else:
                    messages.success(
                        request, f"Team {team.name} takes part in {challenge.title}: choose a phase below and submit."
                    )
                return redirect("web:submit", pk=challenge.pk)
        return redirect("web:participate", pk=challenge.pk)
    teams = list(participant_teams_of(request.user))
    context["teams"] = [(t, participation_rules.registration_problems(challenge, t, request.user)) for t in teams]
    return render(request, "web/challenge/participate.html", context)


def _chosen_team(request: HttpRequest) -> ParticipantTeam | None:
    """The team picked in the form, or a new one created from the form's name."""
    new_name = request.POST.get("new_team_name", "").strip()
    if new_name:
        try:
            return create_participant_team(request.user, new_name)
        except TeamError as exc:
            refusal(request, exc)
            return None
    team_id = request.POST.get("team", "")
    team = ParticipantTeam.objects.filter(pk=int(team_id)).first() if team_id.isdigit() else None
    if team is None:
        messages.error(request, "Choose one of your teams, or give a name for a new one.")
    return team


@login_required
@require_POST
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    participation = participation_of(request.user, challenge)
    if participation is None:
        raise Http404("not participating")
    ask = confirmation(
        request,
        question=f"Leave {challenge.title} with team {participation.team.name}?",
        consequence="Your team can no longer submit to this challenge. Its submissions stay in the records; "
        "to take part again, register again (if registration is still open).",
        action="Yes, leave the challenge",
        back=reverse("web:participate", args=[challenge.pk]),
    )
    if ask is not None:
        return ask
    try:
        participation_rules.withdraw(request.user, participation)
        messages.success(
            request,
            f"Team {participation.team.name} has left {challenge.title} and can no longer submit; "
            "register again here to come back.",
        )
    except ParticipationError as exc:
        refusal(request, exc)
    return redirect("web:participate", pk=challenge.pk)


@login_required
@require_POST
def accept_terms(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    participation = participation_of(request.user, challenge)
    if participation is None:
        raise Http404("not participating")
    if request.POST.get("accept_terms") != "on":
        messages.error(request, "Tick the box to accept the terms and conditions.")
    else:
        participation_rules.accept_terms(request.user, participation)
        messages.success(request, "Terms accepted.")
    return safe_next(request, reverse("web:submit", args=[challenge.pk]))


# --- submit ------------------------------------------------------------------------------------------


def _open_phases(request: HttpRequest, challenge: Challenge) -> list[ChallengePhase]:
    host = is_host(request.user, challenge)
    return [p for p in challenge.phases.all() if host or (p.is_public and p.is_active)]


def _method_fields(phase: ChallengePhase) -> list[str]:
    """The built-in method fields the phase shows (EvalAI's default_submission_meta_attributes)."""
    names = ["method_name", "method_description", "project_url", "publication_url"]
    defaults = phase.default_submission_meta_attributes
    if not defaults:
        return names
    visible = {d.get("name") for d in defaults if isinstance(d, dict) and d.get("is_visible")}
    return [n for n in names if n in visible]


def _fields_from(data, phase: ChallengePhase) -> SubmissionFields:
    """Form values to submit()'s fields; meta attributes come as ``meta__<name>``."""
    meta: dict[str, Any] = {}
    for definition in phase.submission_meta_attributes or []:
        name = definition.get("name")
        if not isinstance(name, str):
            continue
        key = f"meta__{name}"
        if definition.get("type") == "checkbox":
            values = data.getlist(key)
            if values:
                meta[name] = values
        elif data.get(key, "") != "":
            meta[name] = data.get(key)
    is_public: bool | None = None
    if phase.leaderboard_public and data.get("visibility_choice") == "1":
        is_public = data.get("is_public") == "on"
    return SubmissionFields(
        is_public=is_public,
        method_name=data.get("method_name", "")[:1000],
        method_description=data.get("method_description", "")[:20000],
        project_url=_url(data.get("project_url", "")),
        publication_url=_url(data.get("publication_url", "")),
        meta=meta or None,
    )


def _url(value: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    value = (value or "").strip()[:1000]
    if not value:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise SubmissionError("bad_url", f"{value[:80]!r} is not an http(s) address", 400) from None
    return value


@login_required
@require_http_methods(["GET", "POST"])
def submit_page(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    context = challenge_context(request, challenge, "submit")
    participation = context["participation"]
    phases = _open_phases(request, challenge)
    if request.method == "POST":
        phase = phase_or_404(challenge, request.POST.get("phase"))
        if phase not in phases:
            raise Http404("no such phase")
        upload = request.FILES.get("input_file")
        try:
            fields = _fields_from(request.POST, phase)
            sub = submit(request.user, phase, upload, getattr(upload, "name", ""), fields)
        except SubmissionError as exc:
            refusal(request, exc)
            return redirect(f"{reverse('web:submit', args=[challenge.pk])}?phase={phase.pk}")
        messages.success(request, wording.submission_queued(sub), extra_tags="submission-received")
        return redirect(f"{reverse('web:my-submissions', args=[challenge.pk])}?phase={phase.pk}")
    selected = None
    wanted = request.GET.get("phase", "")
    for p in phases:
        if str(p.pk) == wanted:
            selected = p
    if selected is None and phases:
        selected = phases[0]
    context.update(phases=phases, phase=selected)
    if selected is not None:
        context["method_fields"] = _method_fields(selected)
        context["meta_attributes"] = [d for d in selected.submission_meta_attributes or [] if isinstance(d, dict)]
        if participation is not None:
            context["quota"] = dict(quotas(challenge, participation, [selected]))[selected]
    template = "web/challenge/_submit_form.html" if request.htmx and request.GET.get("fragment") else None
    return render(request, template or "web/challenge/submit.html", context)


# --- resumable uploads (JSON for the submit page's script; the rules are in assay.server.uploads) ---


def _own_upload(request: HttpRequest, upload_id):
    from assay.server.uploads.models import Upload

    upload = Upload.objects.select_related("submission").filter(pk=upload_id, user=request.user).first()
    if upload is None:
        raise Http404("no such upload")
    return upload


def _upload_state(upload) -> dict[str, Any]:
    from assay.server.uploads.services import missing_parts

    return {
        "upload": str(upload.pk),
        "status": upload.status,
        "chunk_size": upload.chunk_size,
        "part_count": upload.part_count,
        "missing": missing_parts(upload),
        "received_bytes": upload.received_bytes,
        "submission": upload.submission_id,
    }


UPLOAD_CHUNK = 4 * 1024 * 1024


@login_required
@require_POST
def upload_begin(request: HttpRequest, pk: int) -> JsonResponse:
    from assay.server.uploads.services import begin

    challenge = challenge_or_404(request, pk)
    phase = phase_or_404(challenge, request.POST.get("phase"))
    if phase not in _open_phases(request, challenge):
        raise Http404("no such phase")
    size_text = request.POST.get("size", "")
    if not size_text.isdigit():
        return refusal_json(Refusal("bad_size", "size must be a whole number of bytes", 400))
    size = int(size_text)
    try:
        fields = _fields_from(request.POST, phase)
        upload = begin(
            request.user,
            phase,
            request.POST.get("file_name", "")[:255],
            fields,
            size=size,
            sha256=request.POST.get("sha256", ""),
            chunk_size=UPLOAD_CHUNK,
            part_count=max(1, -(-size // UPLOAD_CHUNK)),
        )
    except SubmissionError as exc:
        return refusal_json(exc)
    return JsonResponse(_upload_state(upload), status=201)


@login_required
@require_GET
def upload_status(request: HttpRequest, upload_id) -> JsonResponse:
    return JsonResponse(_upload_state(_own_upload(request, upload_id)))


@login_required
@require_http_methods(["PUT", "POST"])
def upload_part(request: HttpRequest, upload_id, number: int) -> JsonResponse:
    from assay.server.uploads.services import put_part

    upload = _own_upload(request, upload_id)

    def chunks():
        while block := request.read(256 * 1024):
            yield block

    try:
        info = put_part(upload, number, chunks(), request.headers.get("X-Checksum-Sha256", ""))
    except SubmissionError as exc:
        return refusal_json(exc)
    return JsonResponse(info)


@login_required
@require_POST
def upload_finish(request: HttpRequest, upload_id) -> JsonResponse:
    from assay.server.uploads.services import finish

    upload = _own_upload(request, upload_id)
    try:
        sub = finish(upload)
    except SubmissionError as exc:
        return refusal_json(exc)
    url = f"{reverse('web:my-submissions', args=[sub.phase.challenge_id])}?phase={sub.phase_id}"
    messages.success(request, wording.submission_queued(sub), extra_tags="submission-received")
    return JsonResponse({"submission": sub.pk, "status": sub.status, "redirect": url})


# --- my submissions ----------------------------------------------------------------------------------


def _submissions_context(request: HttpRequest, challenge: Challenge) -> dict[str, Any]:
    context = challenge_context(request, challenge, "submissions")
    participation = context["participation"]
    phases = list(phases_seen(challenge, context["is_host"]))
    wanted = request.GET.get("phase", "")
    phase = next((p for p in phases if str(p.pk) == wanted), None)
    rows = []
    if participation is not None:
        subs = list(team_submissions(participation, phase)[:200])
        note_reruns(subs)  # "re-run by the hosts on …"
        reader = ResultReader(request.user)  # hidden splits are cut here, never in the template
        positions = queue_positions(subs)  # the page's waiting ones in one statement
        rows = [
            (s, positions[s.pk], reader.may_read_logs(s), reader.result(s), reader.may_read_result(s)) for s in subs
        ]
        context["quotas"] = quotas(challenge, participation, [phase] if phase else phases)
    context.update(phases=phases, phase=phase, rows=rows, polling=any_in_progress(row[0] for row in rows))
    return context


#: Rows per page of the cross-challenge list.
ALL_MINE_PAGE = 25


@login_required
@require_GET
def all_my_submissions(request: HttpRequest) -> HttpResponse:
    """Every submission of the user's teams across challenges, newest first, narrowed by challenge, phase
    and status (a bad filter: 400, saying which); results through the one reader, so a split hidden from
    participants stays hidden here too."""
    try:
        filters, problem = mine_filter(request.GET), ""
    except SubmissionError as exc:
        filters, problem = MineFilter(), exc.message
    subs = user_submissions(request.user, filters) if not problem else Submission.objects.none()
    page = Paginator(subs, ALL_MINE_PAGE).get_page(request.GET.get("page"))
    note_reruns(page.object_list)
    reader = ResultReader(request.user)
    rows = [(s, reader.result(s)) for s in page.object_list]
    challenges, phases = mine_choices(request.user)
    context = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "problem": problem,
        "challenges": challenges,
        "phases": phases,
        "statuses": Submission.Status.choices,
        "filtered": any(request.GET.get(name) for name in FILTER_PARAMETERS),
        "query": "&".join(f"{n}={v}" for n in FILTER_PARAMETERS if (v := getattr(filters, n)) is not None),
    }
    return render(request, "web/my_submissions.html", context, status=400 if problem else 200)


@login_required
@require_GET
def my_submissions(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    return render(request, "web/challenge/submissions.html", _submissions_context(request, challenge))


@login_required
@require_GET
def my_submission_rows(request: HttpRequest, pk: int) -> HttpResponse:
    """The htmx fragment the page polls while anything is in progress (live status without reloading)."""
    challenge = challenge_or_404(request, pk)
    return render(request, "web/challenge/_submission_rows.html", _submissions_context(request, challenge))


PARTICIPANT_ACTIONS = {
    "cancel": lambda user, sub: lifecycle.cancel(user, sub),
    "hide": lambda user, sub: lifecycle.hide(user, sub),
    "public": lambda user, sub: lifecycle.set_public(user, sub, True),
    "private": lambda user, sub: lifecycle.set_public(user, sub, False),
    "rerun": lambda user, sub: lifecycle.rerun(user, sub),
    "resume": lambda user, sub: lifecycle.resume(user, sub),
}
DESCRIBE = "describe"  # the one action that reads the form: the method's new name and description


@login_required
@require_POST
def submission_action(request: HttpRequest, submission_id: int, action: str) -> HttpResponse:
    sub = get_object_or_404(Submission.objects.select_related("phase__challenge__host_team"), pk=submission_id)
    if (action not in PARTICIPANT_ACTIONS and action != DESCRIBE) or not can_view(request.user, sub):
        raise Http404("no such submission")
    back = safe_target(request, f"{reverse('web:my-submissions', args=[sub.phase.challenge_id])}?phase={sub.phase_id}")
    if action == "rerun":
        ask = confirmation(
            request,
            question=f"Re-run {wording.submission_name(sub, host=False, mid_sentence=True)}?",
            consequence="It is evaluated again, and the new result replaces the old one on the leaderboard. "
            "A re-run counts against your team's submission limits.",
            action="Yes, re-run it",
            back=back,
        )
        if ask is not None:
            return ask
    try:
        if action == DESCRIBE:
            result = lifecycle.describe(
                request.user,
                sub,
                method_name=request.POST.get("method_name"),
                method_description=request.POST.get("method_description"),
            )
        else:
            result = PARTICIPANT_ACTIONS[action](request.user, sub)
        messages.success(request, wording.submission_done(action, sub, result, host=False))
    except SubmissionError as exc:
        too_late = wording.cancel_too_late(sub, host=False) if action == "cancel" else None
        if too_late:
            messages.warning(request, too_late)
        else:
            refusal(request, exc)
    return redirect(back)


FILE_FIELDS = {
    "input": ("input_file", False),
    "stdout": ("stdout_file", True),
    "stderr": ("stderr_file", True),
    "result": ("submission_result_file", False),
    "metadata": ("submission_metadata_file", False),
}


@login_required
@require_GET
def submission_file(request: HttpRequest, submission_id: int, kind: str) -> HttpResponse:
    """A submission's file for its team and hosts. Logs are plain text (never rendered as HTML)."""
    sub = get_object_or_404(Submission.objects.select_related("phase__challenge__host_team"), pk=submission_id)
    reader = ResultReader(request.user)  # the one rule, its roles asked once for every question below
    if kind not in FILE_FIELDS or not reader.may_view(sub):
        raise Http404("no such file")
    field, is_log = FILE_FIELDS[kind]
    name = getattr(sub, field).name
    if is_log:  # the log rule answers as on every face: 403 when the phase hides logs from the team, 410, 404
        if name and reader.may_read_logs(sub) and not default_storage.exists(name):
            raise Http404("no such file")  # named, but gone from storage
        handle = io.BytesIO(reader.log_document(sub, field) or log_text.empty_log(kind).encode())
    else:
        if kind == "metadata" and not reader.may_read_metadata(sub):
            raise Http404("no such file")  # the evaluation's notes to the hosts
        retention.require_kept(sub, field)  # 410 saying when and why, not a 404
        if not name or not default_storage.exists(name):
            raise Http404("no such file")
        if kind == "result":
            handle = io.BytesIO(reader.result_document(sub))  # cut to the splits this reader may see
        else:
            filename = safe_file_name(sub.input_file_name or name.rsplit("/", 1)[-1]) if kind == "input" else ""
            url = presigned_get(name, filename or f"submission-{sub.pk}-{kind}.json", "application/octet-stream")
            if url is not None:  # an object store serves the bytes (a download, never rendered); the rule allowed it
                return redirect(url)
            handle = default_storage.open(name, "rb")
    if kind == "input":
        filename = sub.input_file_name or name.rsplit("/", 1)[-1]
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    else:
        content_type = "application/json" if kind in ("result", "metadata") else "text/plain; charset=utf-8"
        filename = f"submission-{sub.pk}-{kind}{'.json' if kind in ('result', 'metadata') else '.txt'}"
        response = FileResponse(handle, filename=filename, content_type=content_type)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response
