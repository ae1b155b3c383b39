"""Model pages: your teams' and published models (and registering one), a model's page — card, versions,
results across benchmarks — and, for its team, publishing, adding a version and submitting one to a phase.
Thin: the rules are ``assay.server.models_zoo.services`` (access: ``services.access``, results: ``page``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from assay.server.challenges.models import ChallengePhase
from assay.server.models_zoo.models import Model
from assay.server.models_zoo.services import access, page, registry, submitting
from assay.server.models_zoo.services.access import ModelRefusal
from assay.server.models_zoo.services.card import FIELDS, OUTPUT_SIGNIFICANCE
from assay.server.refusals import Refusal
from assay.server.submissions.services.submit import SubmissionFields
from assay.server.teams.services import participant_teams_of

from .common import refusal


def _model_or_404(request: HttpRequest, model_id: int, manage: bool = False) -> Model:
    try:
        return (access.managed_model if manage else access.readable_model)(request.user, model_id)
    except ModelRefusal as exc:
        if exc.status == 404:
            raise Http404("no such model") from None
        raise


@login_required
@require_http_methods(["GET", "POST"])
def model_list(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        try:
            team_id = request.POST.get("team", "")
            team = registry.team_for(request.user, int(team_id) if team_id.isdigit() else None)
            card = {name: request.POST.get(name, "") for name in FIELDS}
            model = registry.register(
                request.user, team=team, name=request.POST.get("name", ""), kind=request.POST.get("kind", ""),
                file=request.FILES.get("file"), file_name=getattr(request.FILES.get("file"), "name", ""),
                card=card, label=request.POST.get("label", ""),
            )  # fmt: skip
            messages.success(request, f"Model {model.name} registered (version 1).")
            return redirect("web:model", model_id=model.pk)
        except Refusal as exc:
            refusal(request, exc)
            status = 400
    teams = participant_teams_of(request.user)
    context = {
        "models": access.visible_models(request.user).order_by("-created_at", "-id"),
        "teams": teams,
        "kinds": Model.Kind.choices,
        "significance": OUTPUT_SIGNIFICANCE,
        "posted": request.POST,
    }
    return render(request, "web/models/list.html", context, status=status)


@login_required
def model_page(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    member = access.is_member(request.user, model)
    context = {
        "model": model,
        "member": member,
        "versions": model.versions.order_by("-number"),
        "results": page.results(request.user, model),
        "phases": submitting.phases_for(model) if member else [],
        "card": [(name.replace("_", " ").capitalize(), getattr(model, name)) for name in FIELDS],
    }
    return render(request, "web/models/model.html", context)


@login_required
@require_POST
def model_publish(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id, manage=True)
    registry.publish(request.user, model, request.POST.get("published") == "yes")
    messages.success(request, "Published." if model.is_published else "Private to your team again.")
    return redirect("web:model", model_id=model.pk)


@login_required
@require_POST
def model_add_version(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id, manage=True)
    file = request.FILES.get("file")
    try:
        version = registry.add_version(
            request.user, model, file=file, file_name=getattr(file, "name", ""), label=request.POST.get("label", "")
        )
        messages.success(request, f"Version {version.number} added.")
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:model", model_id=model.pk)


@login_required
@require_POST
def model_submit(request: HttpRequest, model_id: int) -> HttpResponse:
    """Submit a version to a phase: the normal submit with the stored file (its refusals shown on the page)."""
    model = _model_or_404(request, model_id, manage=True)
    number, phase_id = request.POST.get("version", ""), request.POST.get("phase", "")
    version = model.versions.filter(number=int(number)).first() if number.isdigit() else None
    phase = (
        ChallengePhase.objects.select_related("challenge").filter(pk=int(phase_id)).first()
        if phase_id.isdigit()
        else None
    )
    if version is None or phase is None:
        messages.error(request, "Choose a version and a phase.")
        return redirect("web:model", model_id=model.pk)
    fields = SubmissionFields(is_public=request.POST.get("is_public") == "yes" or None)
    try:
        sub = submitting.submit_model(request.user, version, phase, fields)
        messages.success(
            request,
            f"Version {version.number} submitted to {phase.challenge.title} · {phase.name} (submission {sub.pk}).",
        )
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:model", model_id=model.pk)
