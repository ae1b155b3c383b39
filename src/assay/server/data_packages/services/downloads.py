"""Downloading a package's file, and the access log every download writes.

The rule is :func:`access.may_download`, asked here again whatever the face asked before; only then is a
:class:`~assay.server.data_packages.models.DownloadRecord` written, and only then is the file handed out:
with an object store, a short-lived presigned URL (the client fetches from the store); with local storage,
an open file the face streams (``FileResponse``; never read into memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from assay.server.storage import presigned_get, safe_file_name

from ..models import DataPackage, DataPackageFile, DownloadRecord
from .access import DataPackageRefusal, is_owner, may_download, require_owner

VIAS = ("api", "web", "cli")
CONTENT_TYPE = "application/octet-stream"


@dataclass
class Download:
    """Either ``url`` (redirect the client there) or ``stream`` (an open binary file: stream it, then it closes)."""

    file: DataPackageFile
    filename: str
    size: int
    content_type: str = CONTENT_TYPE
    url: str | None = None
    stream: IO[bytes] | None = None


def download(user, file: DataPackageFile, *, via: str, client_address: str) -> Download:
    """Hand ``file`` to ``user`` (one ``access.readable_file`` returned) and record it in the access log."""
    if via not in VIAS:
        raise ValueError(f"via is one of {VIAS}, not {via!r}")
    if not may_download(user, file):
        if file.role != DataPackageFile.Role.INPUTS and not is_owner(user, file.version.package):
            raise DataPackageRefusal("not_found", "no such file in this version of the package", 404)
        raise DataPackageRefusal("forbidden", "you have no access to this package's files", 403)
    name = file.file.name
    if not name or not default_storage.exists(name):
        raise DataPackageRefusal("gone", "the stored file is missing; tell the package's host team", 410)
    filename = safe_file_name(file.path)
    DownloadRecord.objects.create(
        file=file,
        user=user if getattr(user, "is_authenticated", False) else None,
        client_address=(client_address or "")[:64],
        via=via,
    )
    url = presigned_get(name, filename, CONTENT_TYPE)
    if url is not None:  # the object store serves the bytes; the rule above allowed the read
        return Download(file, filename, file.size, url=url)
    return Download(file, filename, file.size, stream=default_storage.open(name, "rb"))


def access_log(user, package: DataPackage) -> QuerySet[DownloadRecord]:
    """Every download of the package's files, newest first (the owners only)."""
    require_owner(user, package, "read its access log")
    return DownloadRecord.objects.filter(file__version__package=package).select_related("file__version", "user")
