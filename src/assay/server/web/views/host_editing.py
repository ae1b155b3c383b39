"""The host's "Texts & phases" page: the challenge's title, texts and dates, and each phase's name, description,
dates, limits, visibility defaults and file types, edited without a bundle (challenges.services.editing
holds the rules). Every page answers 404 to anyone but the hosts."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assay.server.challenges.models import Challenge, ChallengePhaseSplit
from assay.server.challenges.services import editing
from assay.server.refusals import Refusal

from .. import wording
from ..forms import ChallengeTextsForm, PhaseEditForm
from .common import challenge_context, confirmation, hosted_or_404, phase_or_404, refusal


def _context(request: HttpRequest, challenge: Challenge, overrides: dict | None = None) -> dict:
    overrides = overrides or {}
    context = challenge_context(request, challenge, "host")
    context["host_tab"] = "edit"
    context["texts_form"] = overrides.get("texts") or ChallengeTextsForm.for_challenge(challenge)
    context["phases"] = [
        (
            phase,
            overrides.get(phase.pk) or PhaseEditForm.for_phase(phase),
            phase.phase_splits.select_related("dataset_split", "leaderboard"),
        )
        for phase in challenge.phases.all()
    ]
    return context


def _refused_on_form(form: forms.Form, exc: Refusal) -> None:
    """Each of the service's problems ("key: message") under its field where the form has it."""
    for problem in exc.problems or [exc.message]:
        key, _, message = str(problem).partition(": ")
        if message and key in form.fields:
            form.add_error(key, message)
        else:
            form.add_error(None, str(problem))


@login_required
@require_GET
def edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    return render(request, "web/host/edit.html", _context(request, challenge))


@login_required
@require_POST
def save_texts(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    form = ChallengeTextsForm.for_challenge(challenge, request.POST)
    if form.is_valid():
        try:
            changed = editing.edit_challenge(request.user, challenge, form.cleaned_data)
            messages.success(request, wording.saved_changes(f"The texts and dates of {challenge.title}", form, changed))
            return redirect("web:host-edit", pk=challenge.pk)
        except editing.EditRefused as exc:
            _refused_on_form(form, exc)
    messages.error(request, "The texts and dates were not saved: see the errors below.")
    challenge.refresh_from_db()
    return render(request, "web/host/edit.html", _context(request, challenge, {"texts": form}), status=400)


@login_required
@require_POST
def save_phase(request: HttpRequest, pk: int, phase_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    phase = phase_or_404(challenge, phase_id)
    form = PhaseEditForm.for_phase(phase, request.POST)
    if form.is_valid():
        try:
            changed = editing.edit_phase(request.user, phase, form.cleaned_data)
            messages.success(request, wording.saved_changes(f"Phase {form.cleaned_data['name']}", form, changed))
            return redirect(reverse("web:host-edit", args=[challenge.pk]) + f"#phase-{phase.pk}")
        except editing.EditRefused as exc:
            _refused_on_form(form, exc)
    messages.error(request, f"Phase {phase.name} was not saved: see the errors below.")
    return render(request, "web/host/edit.html", _context(request, challenge, {phase.pk: form}), status=400)


@login_required
@require_POST
def remove_split(request: HttpRequest, pk: int, split_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    splits = ChallengePhaseSplit.objects.select_related("phase__challenge", "dataset_split")
    ps = get_object_or_404(splits, pk=split_id, phase__challenge=challenge)
    back = reverse("web:host-edit", args=[challenge.pk])
    asked = confirmation(
        request,
        question=f"Remove the leaderboard {ps.dataset_split.name} from phase {ps.phase.name}?",
        consequence="Participants no longer see it; a leaderboard that has results cannot be removed.",
        action="Remove the leaderboard",
        back=back,
    )
    if asked is not None:
        return asked
    try:
        editing.remove_phase_split(request.user, ps)
        messages.success(request, f"The leaderboard {ps.dataset_split.name} of phase {ps.phase.name} was removed.")
    except Refusal as exc:
        refusal(request, exc)
    return redirect(back)
