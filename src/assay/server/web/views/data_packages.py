"""Data package pages: the packages a user may see (and, for hosts, creating one), a package's page — data card,
access policy, versions with the files the reader may see, the reader's access request — and, for its host
team, the requests to decide, the access log, publishing a version and editing the card.

Thin: every rule is ``assay.server.data_packages.services`` (who sees and downloads what: ``services.access``);
a refusal a view lets escape becomes its page (403/404) through ``errors.RefusalPages``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.participation import visible_to
from assay.server.clientaddr import client_address
from assay.server.data_packages.models import AccessRequest, DataPackage
from assay.server.data_packages.services import access, access_requests, downloads, publishing
from assay.server.data_packages.services.access import DataPackageRefusal
from assay.server.data_packages.services.card import FIELDS
from assay.server.refusals import Refusal
from assay.server.teams.models import HostTeam

from .common import refusal

#: How many rows of the access log the page shows (the API and the CLI page through all of them).
LOG_ROWS = 200
DECISIONS = ("approve", "deny", "revoke")


def _card_labels() -> list[tuple[str, str]]:
    return [(name, DataPackage._meta.get_field(name).verbose_name.capitalize()) for name in FIELDS]


def _package(request: HttpRequest, slug: str, manage: bool = False) -> DataPackage | HttpResponse:
    """The package through the access rule; anonymous visitors refused one are sent to sign in first
    (a missing slug alike, so the redirect tells nothing)."""
    try:
        return (access.managed_package if manage else access.readable_package)(request.user, slug)
    except DataPackageRefusal as exc:
        if exc.status == 404 and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise


def _pinning_phases(user, package: DataPackage) -> list[ChallengePhase]:
    """The phases that pin a version of ``package``, of the challenges ``user`` may see (the challenges' own rule)."""
    phases = ChallengePhase.objects.filter(data_package_version__package=package).select_related(
        "challenge__host_team", "data_package_version"
    )
    return [p for p in phases.order_by("challenge_id", "pk") if visible_to(user, p.challenge)]


def _host_teams(user) -> list[HostTeam]:
    if not user.is_authenticated:
        return []
    return list(HostTeam.objects.filter(memberships__user=user).distinct().order_by("name"))


@require_http_methods(["GET", "POST"])
def package_list(request: HttpRequest) -> HttpResponse:
    """Every package the user may see; a host team's member may create one here."""
    status = 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            team_id = request.POST.get("host_team", "")
            package = publishing.create_package(
                request.user,
                int(team_id) if team_id.isdigit() else None,  # None: the user's only host team
                request.POST.get("slug", ""),
                request.POST.get("title", ""),
                request.POST.get("access", ""),
                {name: request.POST.get(name, "") for name in FIELDS},
            )
            messages.success(request, f"Data package {package.slug} created: publish its first version below.")
            return redirect("web:data-package", slug=package.slug)
        except Refusal as exc:
            refusal(request, exc)
            status = exc.status  # the form again, with why
    context = {
        "packages": access.visible_packages(request.user).order_by("slug"),
        "host_teams": _host_teams(request.user),
        "policies": DataPackage.Access.choices,
        "card_fields": [(name, label, request.POST.get(name, "")) for name, label in _card_labels()],
        "posted": request.POST,
    }
    return render(request, "web/data/list.html", context, status=status)


@require_GET
def package_page(request: HttpRequest, slug: str) -> HttpResponse:
    found = _package(request, slug)
    if isinstance(found, HttpResponse):
        return found
    package, user = found, request.user
    owner = access.is_owner(user, package)
    versions = [
        (version, [(f, access.may_download(user, f)) for f in publishing.files_seen(user, version)])
        for version in publishing.versions_seen(user, package)
    ]
    requests = access_requests.requests_seen(user, package)
    mine = None if owner else requests.first()
    S = AccessRequest.Status
    context = {
        "package": package,
        "owner": owner,
        "has_access": access.has_access(user, package),
        "on_request": package.access == DataPackage.Access.ON_REQUEST,
        "versions": versions,
        "card": [(label, value) for name, label in _card_labels() if (value := getattr(package, name))],  # filled
        "card_fields": [(name, label, getattr(package, name)) for name, label in _card_labels()],
        "my_request": mine,
        "may_ask": (
            user.is_authenticated
            and not owner
            and package.access == DataPackage.Access.ON_REQUEST
            and (mine is None or mine.status in (S.DENIED, S.REVOKED))
        ),
        "pending": [r for r in requests if r.status == S.PENDING] if owner else [],
        "decided": [r for r in requests if r.status != S.PENDING] if owner else [],
        "log": downloads.access_log(user, package)[:LOG_ROWS] if owner else [],
        "log_rows": LOG_ROWS,
        "phases": _pinning_phases(user, package),
        "policies": DataPackage.Access.choices,
    }
    return render(request, "web/data/package.html", context)


@login_required
@require_POST
def package_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """The owners change the title, the access policy and the card (the slug never changes: bundles name it)."""
    package = access.managed_package(request.user, slug)
    fields = {name: request.POST.get(name, "") for name in ("title", "access", *FIELDS)}
    try:
        publishing.update_package(request.user, package, fields)
        messages.success(request, "The data card and policy are saved.")
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:data-package", slug=package.slug)


@login_required
@require_POST
def package_publish(request: HttpRequest, slug: str) -> HttpResponse:
    """The owners publish the next version from a .zip of inputs/, labels/ and metadata/."""
    package = access.managed_package(request.user, slug)
    archive = request.FILES.get("archive")
    try:
        version = publishing.publish_version(request.user, package, archive, request.POST.get("notes", ""))
        messages.success(request, f"Version {version.number} published ({version.files.count()} files).")
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:data-package", slug=package.slug)


@login_required
@require_POST
def request_access(request: HttpRequest, slug: str) -> HttpResponse:
    package = access.readable_package(request.user, slug)
    try:
        access_requests.request_access(request.user, package, request.POST.get("reason", ""))
        messages.success(request, "Access requested: the data owner decides, and this page shows the answer.")
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:data-package", slug=package.slug)


@login_required
@require_POST
def decide_request(request: HttpRequest, slug: str, request_id: int, action: str) -> HttpResponse:
    """The owners approve, deny or revoke a request (the note goes back to the requester)."""
    package = access.managed_package(request.user, slug)
    note = request.POST.get("note", "")
    try:
        if action == "revoke":
            req = access_requests.revoke(request.user, package, request_id, note)
        elif action in ("approve", "deny"):
            req = access_requests.decide(request.user, package, request_id, action == "approve", note)
        else:
            raise DataPackageRefusal("invalid", f"the action is one of {', '.join(DECISIONS)}", 400)
        messages.success(request, f"{req.user.get_username()}'s request is {req.get_status_display().lower()}.")
    except Refusal as exc:
        refusal(request, exc)
    return redirect("web:data-package", slug=package.slug)


@require_GET
def download_file(request: HttpRequest, slug: str, number: int, path: str) -> HttpResponse:
    """One file of a version, streamed (or a redirect to the object store); every download is logged."""
    found = _package(request, slug)
    if isinstance(found, HttpResponse):
        return found
    file = access.readable_file(request.user, found, number, path)
    given = downloads.download(request.user, file, via="web", client_address=client_address(request))
    if given.url is not None:
        return redirect(given.url)
    response = FileResponse(given.stream, as_attachment=True, filename=given.filename, content_type=given.content_type)
    response["Content-Length"] = str(given.size)
    return response
