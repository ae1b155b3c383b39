"""Data packages: a host team's datasets as versioned, hashed, access-controlled packages — list and create,
read and edit the card and policy, publish a version from a zip, list a version's files, download one,
request access and decide requests, read the access log. Thin: the rules are
``assay.server.data_packages.services``' (who may do what: ``services.access``).

Reading is open to anonymous visitors where the package is public; everything else needs a signed-in user.
A package, version or file the caller may not see answers 404 as a missing one would; labels and metadata
files are such files for everyone but the owning host team (never listed, never downloaded, 404).
"""

from __future__ import annotations

from django.db.models import Max
from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.api.throttling import ScopedRateThrottle
from assay.server.clientaddr import client_address
from assay.server.data_packages.models import (
    AccessRequest,
    DataPackage,
    DataPackageFile,
    DataPackageVersion,
    DownloadRecord,
)
from assay.server.data_packages.services import access, access_requests, downloads, publishing
from assay.server.data_packages.services.card import FIELDS

from .base import ApiView, Pages, PublicReadView, checked_body, not_found


class Text(serializers.CharField):
    """A string as sent: a number or a boolean is refused, not turned into text (DRF's CharField would)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


ACCESS_CHOICES = [(value, label) for value, label in DataPackage.Access.choices]


class PackageOut(serializers.ModelSerializer):
    """A package's card and policy, and what the reader may do with it."""

    host_team_name = serializers.CharField(source="host_team.name")
    latest_version = serializers.IntegerField(allow_null=True, help_text="The newest version's number.")
    is_owner = serializers.SerializerMethodField(help_text="You are in the owning host team.")
    has_access = serializers.SerializerMethodField(help_text="You may download the inputs.")
    request_status = serializers.SerializerMethodField(help_text="Your access request's status, if you made one.")

    class Meta:
        model = DataPackage
        fields = ["slug", "title", "access", "host_team", "host_team_name", "created_at", *FIELDS,
                  "latest_version", "is_owner", "has_access", "request_status"]  # fmt: skip

    def get_is_owner(self, package: DataPackage) -> bool:
        return self.context["reader"].is_owner(package)

    def get_has_access(self, package: DataPackage) -> bool:
        return self.context["reader"].has_access(package)

    def get_request_status(self, package: DataPackage) -> str | None:
        return self.context["reader"].request_status(package)


class PackageIn(serializers.Serializer):
    slug = serializers.CharField(max_length=100, help_text="How bundles and URLs name it: a-z, 0-9 and '-'.")
    title = serializers.CharField(max_length=publishing.TITLE_MAX)
    access = serializers.ChoiceField(ACCESS_CHOICES, default=DataPackage.Access.ON_REQUEST)
    host_team = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Your only host team if left out."
    )
    card = serializers.DictField(
        child=Text(allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
        help_text=f"The data card's fields: {', '.join(FIELDS)}.",
    )


class PackagePatch(serializers.Serializer):
    """Any of these; the card's fields may also be given at the top level. Unknown fields are refused."""

    title = serializers.CharField(required=False, max_length=publishing.TITLE_MAX)
    access = serializers.ChoiceField(ACCESS_CHOICES, required=False)
    card = serializers.DictField(child=Text(allow_blank=True, trim_whitespace=False), required=False)


class PackageVersionOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = DataPackageVersion
        fields = ["number", "notes", "created_by", "created_at"]


class PackageFileOut(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DataPackageFile
        fields = ["path", "role", "sha256", "size", "download_url"]

    def get_download_url(self, file: DataPackageFile) -> str:
        request, version = self.context["request"], self.context["version"]
        return request.build_absolute_uri(
            f"/api/v1/data-packages/{version.package.slug}/versions/{version.number}/files/{file.path}"
        )


class PackageVersionDetailOut(PackageVersionOut):
    files = serializers.SerializerMethodField(help_text="The files you may see: the owners all, others the inputs.")

    class Meta(PackageVersionOut.Meta):
        fields = [*PackageVersionOut.Meta.fields, "files"]

    @extend_schema_field(PackageFileOut(many=True))
    def get_files(self, version: DataPackageVersion) -> list:
        files = publishing.files_seen(self.context["request"].user, version)
        return PackageFileOut(files, many=True, context={**self.context, "version": version}).data


class PackageVersionIn(serializers.Serializer):
    archive = serializers.FileField(help_text="A .zip whose top-level folders inputs/, labels/, metadata/ give roles.")
    notes = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class AccessRequestOut(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = AccessRequest
        fields = ["id", "user", "reason", "status", "created_at", "decided_by", "decided_at", "decision_note"]


class AccessRequestIn(serializers.Serializer):
    reason = Text(trim_whitespace=False, help_text="What you will use the data for.")


class AccessDecisionIn(serializers.Serializer):
    approve = serializers.BooleanField(help_text="false denies a pending request and revokes an approved one.")
    note = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class PackageDownloadOut(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", allow_null=True, default=None)
    version = serializers.IntegerField(source="file.version.number")
    path = serializers.CharField(source="file.path")
    role = serializers.CharField(source="file.role")

    class Meta:
        model = DownloadRecord
        fields = ["id", "at", "user", "version", "path", "role", "via", "client_address"]


def _with_latest(qs):
    return qs.annotate(latest_version=Max("versions__number"))


def _package_data(user, package: DataPackage) -> dict:
    package = _with_latest(DataPackage.objects.select_related("host_team")).get(pk=package.pk)
    return PackageOut(package, context={"reader": access.reader(user)}).data


class PackageListView(PublicReadView):
    """``GET`` the packages whose cards you may read; ``POST`` creates one (a member of its host team)."""

    pagination_class = Pages

    @extend_schema(responses={200: PackageOut(many=True)}, summary="Data packages you may read")
    def get(self, request: Request) -> Response:
        qs = _with_latest(access.visible_packages(request.user)).order_by("slug")
        return self.paginate(request, qs, PackageOut, context={"reader": access.reader(request.user)})

    @extend_schema(request=PackageIn, responses={201: PackageOut}, summary="Create a data package (no version yet)")
    def post(self, request: Request) -> Response:
        access.require_host(request.user)
        v = checked_body(request, PackageIn)
        package = publishing.create_package(
            request.user, v["host_team"], v["slug"], v["title"], v["access"], dict(v["card"])
        )
        return Response(_package_data(request.user, package), status=201)


class PackageDetailView(PublicReadView):
    @extend_schema(responses={200: PackageOut}, summary="A data package: its card, policy and your access")
    def get(self, request: Request, slug: str) -> Response:
        return Response(_package_data(request.user, access.readable_package(request.user, slug)))

    @extend_schema(request=PackagePatch, responses={200: PackageOut}, summary="Edit the card, title or policy")
    def patch(self, request: Request, slug: str) -> Response:
        package = access.managed_package(request.user, slug)
        checked_body(request, PackagePatch)  # types; the service refuses unknown fields and checks lengths
        package = publishing.update_package(request.user, package, dict(request.data))
        return Response(_package_data(request.user, package))


class VersionListView(PublicReadView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    pagination_class = Pages
    throttle_scope = "submit"

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: PackageVersionOut(many=True)}, summary="A package's versions, newest first")
    def get(self, request: Request, slug: str) -> Response:
        package = access.readable_package(request.user, slug)
        qs = publishing.versions_seen(request.user, package).select_related("created_by")
        return self.paginate(request, qs, PackageVersionOut)

    @extend_schema(
        request={"multipart/form-data": PackageVersionIn},
        responses={201: PackageVersionDetailOut},
        summary="Publish a version",
    )
    def post(self, request: Request, slug: str) -> Response:
        package = access.managed_package(request.user, slug)
        data = PackageVersionIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = publishing.publish_version(
            request.user, package, data.validated_data["archive"], data.validated_data["notes"]
        )
        return Response(PackageVersionDetailOut(version, context={"request": request}).data, status=201)


class VersionDetailView(PublicReadView):
    @extend_schema(responses={200: PackageVersionDetailOut}, summary="A version and the files you may see")
    def get(self, request: Request, slug: str, number: int) -> Response:
        package = access.readable_package(request.user, slug)
        version = publishing.versions_seen(request.user, package).filter(number=number).first()
        if version is None:
            raise not_found("version of this package")
        return Response(PackageVersionDetailOut(version, context={"request": request}).data)


class FileView(PublicReadView):
    """One file, for whoever may read it; every download is written to the package's access log."""

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="the file, streamed"),
            302: OpenApiResponse(description="with an object store: to a short-lived presigned URL of the file"),
        },
        summary="Download a file (logged)",
    )
    def get(self, request: Request, slug: str, number: int, path: str):
        package = access.readable_package(request.user, slug)
        file = access.readable_file(request.user, package, number, path)
        got = downloads.download(request.user, file, via=_via(request), client_address=client_address(request))
        if got.url is not None:
            return HttpResponseRedirect(got.url)
        response = FileResponse(got.stream, as_attachment=True, filename=got.filename, content_type=got.content_type)
        response["Content-Length"] = str(got.size)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


def _via(request: Request) -> str:
    """``cli`` when the assay CLI asks (its User-Agent), else ``api``."""
    return "cli" if request.headers.get("User-Agent", "").startswith("assay-cli") else "api"


class AccessRequestListView(PublicReadView):
    pagination_class = Pages

    @extend_schema(
        responses={200: AccessRequestOut(many=True)}, summary="Access requests: the owners all, others their own"
    )
    def get(self, request: Request, slug: str) -> Response:
        package = access.readable_package(request.user, slug)
        qs = access_requests.requests_seen(request.user, package)
        return self.paginate(request, qs, AccessRequestOut)

    @extend_schema(request=AccessRequestIn, responses={201: AccessRequestOut}, summary="Request access")
    def post(self, request: Request, slug: str) -> Response:
        package = access.readable_package(request.user, slug)
        v = checked_body(request, AccessRequestIn)
        req = access_requests.request_access(request.user, package, v["reason"])
        return Response(AccessRequestOut(req).data, status=201)


class AccessRequestDecisionView(ApiView):
    @extend_schema(
        request=AccessDecisionIn,
        responses={200: AccessRequestOut},
        summary="Approve or refuse a request",
        operation_id="data_packages_access_requests_decide",
    )
    def post(self, request: Request, slug: str, request_id: int) -> Response:
        package = access.managed_package(request.user, slug)
        v = checked_body(request, AccessDecisionIn)
        req = access_requests.decide(request.user, package, request_id, v["approve"], v["note"])
        return Response(AccessRequestOut(req).data)


class DownloadLogView(ApiView):
    pagination_class = Pages

    @extend_schema(responses={200: PackageDownloadOut(many=True)}, summary="The access log (the owners)")
    def get(self, request: Request, slug: str) -> Response:
        package = access.managed_package(request.user, slug)
        return self.paginate(request, downloads.access_log(request.user, package), PackageDownloadOut)
