"""Host pages: create or update challenges from bundles, settings, pause, submissions, participants,
exports, worker tokens and evaluation-script errors. Every page answers 404 to anyone but the hosts."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assay.bundle import BundleError
from assay.server.challenges.models import Challenge, ChallengePhaseSplit, Participation
from assay.server.challenges.services import hosting
from assay.server.challenges.services import participation as participation_rules
from assay.server.challenges.services.bundle_import import ImportRefused
from assay.server.challenges.services.hosting import HostingError
from assay.server.challenges.services.participation import ParticipationError
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services import hosting as submission_hosting
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.my_submissions import any_in_progress
from assay.server.submissions.services.tokens import create_worker_token, revoke_worker_token
from assay.server.submissions.services.workers_seen import workers_for
from assay.server.teams.services import TeamError, create_host_team, host_teams_of

from .. import wording
from ..forms import BundleUploadForm, ChallengeSettingsForm, PhaseSettingsForm, PhaseSplitSettingsForm, TeamForm
from .common import challenge_context, confirmation, hosted_or_404, phase_or_404, refusal, safe_next, safe_target


def _host_context(request: HttpRequest, challenge: Challenge, tab: str) -> dict[str, Any]:
    context = challenge_context(request, challenge, "host")
    context["host_tab"] = tab
    return context


# --- dashboard and new challenges --------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                team = create_host_team(form.cleaned_data["name"], request.user)
                messages.success(request, f"Host team {team.name} created.")
            except TeamError as exc:
                refusal(request, exc)
        else:
            messages.error(request, "Give the host team a name of at most 100 characters.")
        return redirect("web:host-dashboard")
    teams = host_teams_of(request.user)
    challenges = Challenge.objects.filter(host_team__in=teams).select_related("host_team").order_by("-start_date")
    if request.user.is_staff:
        challenges = Challenge.objects.select_related("host_team").order_by("-start_date")
    context = {"host_teams": teams, "challenges": challenges, "team_form": TeamForm()}
    return render(request, "web/host/dashboard.html", context)


def _bundle_result(request: HttpRequest, report) -> None:
    if report.changes:
        shown = "; ".join(report.changes[:50]) + ("; …" if len(report.changes) > 50 else "")
        messages.info(request, f"What the bundle changed (ids as in challenge_config.yaml): {shown}.")
    for warning in report.warnings[:50]:
        messages.warning(request, str(warning))


@login_required
@require_http_methods(["GET", "POST"])
def new_challenge(request: HttpRequest) -> HttpResponse:
    teams = host_teams_of(request.user)
    if request.user.is_staff and not teams.exists():
        from assay.server.teams.models import HostTeam

        teams = HostTeam.objects.order_by("name")
    form = BundleUploadForm(request.POST or None, request.FILES or None, host_teams=teams)
    context: dict[str, Any] = {"form": form, "has_teams": teams.exists()}
    if request.method == "POST" and form.is_valid():
        outcome = _import(request, form.cleaned_data["bundle"], host_team=form.cleaned_data["host_team"])
        if isinstance(outcome, HttpResponse):
            return outcome
        context.update(outcome)
        return render(request, "web/host/new_challenge.html", context, status=400)
    return render(request, "web/host/new_challenge.html", context, status=400 if form.errors else 200)


def _import(request: HttpRequest, upload, **where) -> HttpResponse | dict[str, Any]:
    """Import a bundle; a redirect on success, else what the page shows (problems with file and line)."""
    try:
        report = hosting.upload_bundle(request.user, upload, **where)
    except BundleError as exc:
        return {"problems": hosting.describe_problems(exc.problems), "upload_name": upload.name}
    except ImportRefused as exc:
        return {"refused": exc.message, "upload_name": upload.name}
    except HostingError as exc:
        if exc.status == 403:
            raise Http404("no such host team") from None
        return {"refused": exc.message, "upload_name": upload.name}
    _bundle_result(request, report)
    verb = "created" if report.created else "updated"
    messages.success(request, f"Challenge {report.challenge.title} {verb} from {upload.name}.")
    if not report.challenge.approved_by_admin:
        messages.warning(
            request,
            f"{report.challenge.title} waits for an administrator's approval: until then only its hosts see it "
            "and its submissions are not evaluated. Nothing to do but wait; you can change its settings meanwhile.",
        )
    return redirect("web:host-challenge", pk=report.challenge.pk)


# --- one challenge: settings -------------------------------------------------------------------------


def _settings_context(request: HttpRequest, challenge: Challenge, forms_override: dict | None = None) -> dict:
    context = _host_context(request, challenge, "settings")
    forms_override = forms_override or {}
    context["challenge_form"] = forms_override.get("challenge") or ChallengeSettingsForm.for_challenge(challenge)
    phases = []
    for phase in challenge.phases.all():
        splits = [
            (ps, forms_override.get(f"split-{ps.pk}") or PhaseSplitSettingsForm.for_split(ps))
            for ps in phase.phase_splits.select_related("dataset_split", "leaderboard")
        ]
        phases.append((phase, forms_override.get(f"phase-{phase.pk}") or PhaseSettingsForm.for_phase(phase), splits))
    context["phases"] = phases
    context["bundle_form"] = BundleUploadForm()
    context["invitations"] = challenge.invitations.all() if challenge.invite_only else None
    context["workers_seen"] = workers_for(challenge)
    return context


@login_required
@require_GET
def challenge_settings(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    return render(request, "web/host/settings.html", _settings_context(request, challenge))


@login_required
@require_POST
def save_challenge_settings(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    form = ChallengeSettingsForm.for_challenge(challenge, request.POST)
    if form.is_valid():
        try:
            changed = hosting.update_challenge(request.user, challenge, form.cleaned_data)
            messages.success(request, wording.saved_changes(f"The settings of {challenge.title}", form, changed))
            return redirect("web:host-challenge", pk=challenge.pk)
        except HostingError as exc:
            form.add_error(None, exc.message)
    messages.error(request, "The challenge settings were not saved: see the errors below.")
    context = _settings_context(request, challenge, {"challenge": form})
    return render(request, "web/host/settings.html", context, status=400)


@login_required
@require_POST
def save_phase_settings(request: HttpRequest, pk: int, phase_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    phase = phase_or_404(challenge, phase_id)
    form = PhaseSettingsForm.for_phase(phase, request.POST)
    if form.is_valid():
        try:
            changed = hosting.update_phase(request.user, phase, form.cleaned_data)
            messages.success(request, wording.saved_changes(f"Phase {phase.name}", form, changed))
            return redirect("web:host-challenge", pk=challenge.pk)
        except HostingError as exc:
            form.add_error(None, exc.message)
    messages.error(request, f"Phase {phase.name} was not saved: see the errors below.")
    context = _settings_context(request, challenge, {f"phase-{phase.pk}": form})
    return render(request, "web/host/settings.html", context, status=400)


@login_required
@require_POST
def save_split_settings(request: HttpRequest, pk: int, split_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    splits = ChallengePhaseSplit.objects.select_related("phase", "dataset_split")
    ps = get_object_or_404(splits, pk=split_id, phase__challenge=challenge)
    form = PhaseSplitSettingsForm.for_split(ps, request.POST)
    if form.is_valid():
        try:
            changed = hosting.update_phase_split(request.user, ps, form.cleaned_data)
            messages.success(
                request,
                wording.saved_changes(f"The leaderboard {ps.phase.name} · {ps.dataset_split.name}", form, changed),
            )
            return redirect("web:host-challenge", pk=challenge.pk)
        except HostingError as exc:
            form.add_error(None, exc.message)
    context = _settings_context(request, challenge, {f"split-{ps.pk}": form})
    return render(request, "web/host/settings.html", context, status=400)


@login_required
@require_POST
def pause(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    phase_id = request.POST.get("phase", "")
    phase = phase_or_404(challenge, phase_id) if phase_id else None
    paused = request.POST.get("paused") == "1"
    hosting.set_paused(request.user, challenge, paused, phase)
    where = f"phase {phase.name}" if phase else "the challenge"
    messages.success(request, f"Submissions to {where} {'paused' if paused else 'resumed'}.")
    return safe_next(request, reverse("web:host-challenge", args=[challenge.pk]))


@login_required
@require_POST
def update_bundle(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    form = BundleUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a bundle file to upload.")
        return redirect("web:host-challenge", pk=challenge.pk)
    outcome = _import(request, form.cleaned_data["bundle"], challenge=challenge)
    if isinstance(outcome, HttpResponse):
        return outcome
    context = _settings_context(request, challenge)
    context.update(outcome)
    return render(request, "web/host/settings.html", context, status=400)


@login_required
@require_POST
def invitations(request: HttpRequest, pk: int) -> HttpResponse:
    """Invite-only challenges: add addresses (any separator) or remove one."""
    challenge = hosted_or_404(request, pk)
    try:
        if request.POST.get("remove"):
            participation_rules.uninvite(request.user, challenge, request.POST["remove"])
            messages.success(request, "Invitation removed.")
        else:
            import re

            emails = [e for e in re.split(r"[\s,;]+", request.POST.get("emails", "")[:200_000]) if e]
            added = participation_rules.invite_emails(request.user, challenge, emails)
            messages.success(request, f"{len(added)} address(es) invited.")
    except ParticipationError as exc:
        refusal(request, exc)
    return safe_next(request, reverse("web:host-participants", args=[challenge.pk]))


# --- submissions ---------------------------------------------------------------------------------------


@login_required
@require_GET
def submissions(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    context = _host_context(request, challenge, "submissions")
    filters = {k: request.GET.get(k, "")[:100] for k in ("phase", "status", "team", "flag")}
    try:  # a bad filter: 400 saying which, as on "my submissions"
        subs, problem = submission_hosting.host_submissions(challenge, filters), ""
    except SubmissionError as exc:
        subs, problem = Submission.objects.none(), exc.message
    page = Paginator(subs, 50).get_page(request.GET.get("page"))
    context.update(
        filters=filters,
        problem=problem,
        page=page,
        phases=challenge.phases.all(),
        statuses=Submission.Status.choices,
        query=request.GET.urlencode(),
        polling=any_in_progress(page),
    )
    return render(request, "web/host/submissions.html", context, status=400 if problem else 200)


@login_required
@require_POST
def submission_action(request: HttpRequest, pk: int, submission_id: int, action: str) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    sub = get_object_or_404(Submission.objects.select_related("phase__challenge", "participant_team"),
                            pk=submission_id, phase__challenge=challenge)  # fmt: skip
    back = safe_target(request, reverse("web:host-submissions", args=[challenge.pk]))
    if action in ("rerun", "rerun_copy"):
        copy = action == "rerun_copy"
        ask = confirmation(
            request,
            question=f"Re-run {wording.submission_name(sub, host=True, mid_sentence=True)}"
            + (" as a new submission?" if copy else "?"),
            consequence=(
                "A copy is queued as the team's next submission and this one is cancelled; the copy's result "
                "replaces this one's on the leaderboard."
                if copy
                else "The same submission is evaluated again with the current evaluation script: its result, logs "
                "and leaderboard entry are replaced when the new evaluation ends, and the earlier evaluation is "
                "kept in its history. The team is told on its submissions page that you re-ran it."
            ),
            action="Yes, re-run it as a new submission" if copy else "Yes, re-run it",
            back=back,
        )
        if ask is not None:
            return ask
    try:
        result = submission_hosting.host_action(request.user, sub, action)
        messages.success(request, wording.submission_done(action, sub, result, host=True))
    except (HostingError, SubmissionError) as exc:
        too_late = wording.cancel_too_late(sub, host=True) if action == "cancel" else None
        if too_late:
            messages.warning(request, too_late)
        else:
            refusal(request, exc)
    return redirect(back)


@login_required
@require_POST
def bulk_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    phase_id = request.POST.get("phase", "")
    phase = phase_or_404(challenge, phase_id) if phase_id else None
    where = f"phase {phase.name}" if phase else challenge.title
    back = safe_target(request, reverse("web:host-submissions", args=[challenge.pk]))
    ask = confirmation(
        request,
        question=f"Re-run every finished and failed submission of {where}?",
        consequence="Each one is evaluated again with the current evaluation script, and the leaderboard is "
        "rebuilt from the new results. This takes as long as evaluating them all once more.",
        action="Yes, re-run them all",
        back=back,
    )
    if ask is not None:
        return ask
    count = submission_hosting.bulk_rerun(request.user, challenge, phase)
    if count:
        messages.success(request, f"{count} submission(s) of {where} are queued for evaluation again.")
    else:
        messages.info(request, f"Nothing to re-run: {where} has no finished or failed submission.")
    return redirect(back)


# --- participants ------------------------------------------------------------------------------------


@login_required
@require_GET
def participants(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    context = _host_context(request, challenge, "participants")
    context["participations"] = participation_rules.participations(challenge)
    context["invitations"] = challenge.invitations.all() if challenge.invite_only else None
    return render(request, "web/host/participants.html", context)


@login_required
@require_POST
def participant_action(request: HttpRequest, pk: int, participation_id: int, action: str) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    participation = get_object_or_404(Participation.objects.select_related("team", "challenge"),
                                      pk=participation_id, challenge=challenge)  # fmt: skip
    statuses = {"approve": Participation.Status.APPROVED, "disapprove": Participation.Status.DISAPPROVED}
    team = participation.team.name
    done = {
        "approve": f"Team {team} is approved: its members can submit now.",
        "disapprove": f"Team {team} is not approved: its members cannot submit until you approve it.",
        "remove": f"Team {team} is removed from {challenge.title}; it may register again while registration is open.",
    }
    if action not in done:
        raise Http404("no such action")
    if action == "remove":
        ask = confirmation(
            request,
            question=f"Remove team {team} from {challenge.title}?",
            consequence="Its registration (and its acceptance of the terms) is deleted and its members can no "
            "longer submit. A team that has submitted cannot be removed: disapprove it instead.",
            action="Yes, remove the team",
            back=reverse("web:host-participants", args=[challenge.pk]),
        )
        if ask is not None:
            return ask
    try:
        if action in statuses:
            participation_rules.set_status(request.user, participation, statuses[action])
        else:
            participation_rules.remove(request.user, participation)
        messages.success(request, done[action])
    except ParticipationError as exc:
        refusal(request, exc)
    return redirect("web:host-participants", pk=challenge.pk)


# --- exports, workers, errors ------------------------------------------------------------------------


@login_required
@require_GET
def export(request: HttpRequest, pk: int, kind: str) -> StreamingHttpResponse:
    challenge = hosted_or_404(request, pk)
    if kind == "submissions":
        phase_id = request.GET.get("phase", "")
        phase = phase_or_404(challenge, phase_id) if phase_id else None
        rows = submission_hosting.submissions_csv(request.user, challenge, phase)
    elif kind == "participants":
        rows = hosting.participants_csv(request.user, challenge)
    else:
        raise Http404("no such export")
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="challenge-{challenge.pk}-{kind}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def workers(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    context = _host_context(request, challenge, "workers")
    if request.method == "POST":
        try:
            if request.POST.get("revoke", "").isdigit():
                row = get_object_or_404(WorkerToken, pk=int(request.POST["revoke"]), challenge=challenge)
                revoke_worker_token(request.user, row)
                messages.success(request, f"Token {row.name} revoked.")
            else:
                name = request.POST.get("name", "").strip()[:100] or "worker"
                row, token = create_worker_token(request.user, name, challenge)
                context["new_token"] = token
                context["new_token_row"] = row
        except SubmissionError as exc:
            refusal(request, exc)
    context["tokens"] = challenge.worker_tokens.order_by("-created_at")
    context["server_url"] = request.build_absolute_uri("/").rstrip("/")
    context["phases"] = challenge.phases.all()
    context["workers_seen"] = workers_for(challenge)
    return render(request, "web/host/workers.html", context)


@login_required
@require_GET
def errors(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    context = _host_context(request, challenge, "errors")
    context["failures"] = submission_hosting.script_errors(challenge)
    return render(request, "web/host/errors.html", context)
