"""Where the server's files live, read from the environment: a local folder (default) or an S3 bucket.

Pure functions of ``os.environ`` (no Django import), so ``settings.py`` can call them and tests can
feed them any environment. A malformed value raises ``ValueError`` naming the variable: a server that
would quietly write its submissions to the wrong place should not start. Whether the bucket exists and
the credentials open it is asked at start-up by the system check in :mod:`assay.server.s3_storage`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "assay.server.s3_storage.PrivateS3Storage"
ADDRESSING_STYLES = ("auto", "path", "virtual")
# S3's bucket naming rules (3-63 characters: lower-case letters, digits, dots and hyphens)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._-]+$")


def default_storage_settings(env: Mapping[str, str]) -> dict[str, object]:
    """Django's ``STORAGES["default"]`` entry: the local folder, or ``ASSAY_STORAGE_URL=s3://bucket[/prefix]``.

    The S3 options: ``ASSAY_S3_ENDPOINT_URL`` (MinIO, Ceph, moto; unset: AWS), ``ASSAY_S3_REGION``,
    ``ASSAY_S3_ADDRESSING_STYLE`` (auto, path or virtual), ``ASSAY_S3_PUBLIC_ENDPOINT_URL`` (where
    workers and browsers reach the store, when that differs from where the server does),
    ``ASSAY_S3_URL_SECONDS`` (how long a presigned URL lasts), credentials from ``ASSAY_S3_ACCESS_KEY`` /
    ``ASSAY_S3_SECRET_KEY`` or else boto3's own chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    an instance role …).
    """
    url = env.get("ASSAY_STORAGE_URL", "").strip()
    if not url or url.startswith("file:"):
        if url and url not in ("file:", "file://"):
            raise ValueError("ASSAY_STORAGE_URL: a local folder is set with ASSAY_MEDIA_ROOT; use s3://bucket[/prefix]")
        return {"BACKEND": LOCAL_BACKEND}
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(
            f"ASSAY_STORAGE_URL: {url!r} is not an s3://bucket[/prefix] URL (leave it empty for local files)"
        )
    if parts.username or parts.password or parts.port or parts.query or parts.fragment:
        raise ValueError(
            "ASSAY_STORAGE_URL: only s3://bucket[/prefix]; credentials go in ASSAY_S3_ACCESS_KEY/ASSAY_S3_SECRET_KEY"
            " (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the endpoint in ASSAY_S3_ENDPOINT_URL"
        )
    bucket = parts.hostname or ""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"ASSAY_STORAGE_URL: {bucket!r} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')")
    prefix = parts.path.strip("/")
    if prefix and not all(_PREFIX_PART.match(p) and p not in (".", "..") for p in prefix.split("/")):
        raise ValueError(f"ASSAY_STORAGE_URL: the prefix {prefix!r} may hold only A-Z a-z 0-9 . _ - and '/'")
    options: dict[str, object] = {"bucket_name": bucket, "location": prefix}
    for key, option in (
        ("ASSAY_S3_ENDPOINT_URL", "endpoint_url"),
        ("ASSAY_S3_PUBLIC_ENDPOINT_URL", "public_endpoint_url"),
    ):
        endpoint = env.get(key, "").strip()
        if endpoint:
            where = urlsplit(endpoint)
            if where.scheme not in ("http", "https") or not where.hostname or where.query or where.fragment:
                raise ValueError(f"{key}: {endpoint!r} is not an http(s):// URL")
            options[option] = endpoint.rstrip("/")
    region = env.get("ASSAY_S3_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip()
    if region:
        options["region_name"] = region
    style = env.get("ASSAY_S3_ADDRESSING_STYLE", "").strip().lower()
    if style:
        if style not in ADDRESSING_STYLES:
            raise ValueError(f"ASSAY_S3_ADDRESSING_STYLE: {style!r} is not one of {', '.join(ADDRESSING_STYLES)}")
        options["addressing_style"] = style
    access, secret = env.get("ASSAY_S3_ACCESS_KEY", "").strip(), env.get("ASSAY_S3_SECRET_KEY", "").strip()
    if bool(access) != bool(secret):
        raise ValueError("ASSAY_S3_ACCESS_KEY and ASSAY_S3_SECRET_KEY are set together (or neither: boto3's chain)")
    if access:
        options["access_key"], options["secret_key"] = access, secret
    seconds = env.get("ASSAY_S3_URL_SECONDS", "").strip()
    if seconds:
        if not seconds.isdigit() or not 60 <= int(seconds) <= 7 * 24 * 3600:
            raise ValueError("ASSAY_S3_URL_SECONDS: a whole number of seconds from 60 to 604800 (S3's limit)")
        options["querystring_expire"] = int(seconds)
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}
