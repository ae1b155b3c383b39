"""The S3 backend of ``ASSAY_STORAGE_URL=s3://…`` (django-storages), and its start-up check.

Objects are private (no ACL is ever set; every read outside the server is a presigned URL that the
server hands out only after its own rule allowed the read), never overwritten (a name in use gets a
fresh one, as local storage does — :class:`assay.server.storage.ContentWriter`'s undo relies on it),
and read through a temporary file that spills to disk past a few MiB, so a large file never sits in
the server's memory. Presigned URLs are signed for ``public_endpoint_url`` when workers and browsers
reach the store at another address than the server does (a compose network, a proxy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core import checks
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

MEMORY_BYTES = 4 * 1024 * 1024  # a file read past this spills from memory to a temporary file
PART_BYTES = 8 * 1024 * 1024  # multipart upload and download part size


class PrivateS3Storage(S3Storage):
    """django-storages' S3 backend with Assay's rules: private, never overwriting, bounded memory."""

    default_acl = None
    file_overwrite = False
    querystring_auth = True
    max_memory_size = MEMORY_BYTES
    signature_version = "s3v4"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        # Bounded waits (a store that is down must not hang a request for minutes), and checksums only
        # where S3 requires them: MinIO, Ceph and older S3-compatible stores refuse boto3's newer defaults.
        self.client_config = Config(
            s3={"addressing_style": self.addressing_style or "auto"},
            signature_version=self.signature_version,
            connect_timeout=10,
            read_timeout=120,
            retries={"max_attempts": 3, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Multipart transfers of 8 MiB parts, four requests at a time, at most two parts read ahead into
        # memory (boto3's default of ten held ~90 MiB of a 96 MiB upload; this holds ~28 MiB, whatever the
        # file's size: tests/server/test_storage_s3.py measures it).
        self.transfer_config = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4
        )
        self.transfer_config.max_in_memory_upload_chunks = 2  # s3transfer's knob, not a TransferConfig argument
        self._signer = None

    def get_default_settings(self) -> dict[str, Any]:
        return {**super().get_default_settings(), "public_endpoint_url": ""}

    def _signing_client(self):
        """The client that signs URLs: the server's own, or one aimed at the public endpoint (signing
        needs no connection, so it works even when the server cannot reach that address)."""
        if not self.public_endpoint_url:
            return self.connection.meta.client
        if self._signer is None:
            self._signer = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
        return self._signer

    def presigned(
        self,
        name: str,
        *,
        method: str = "get_object",
        expire: int | None = None,
        filename: str = "",
        content_type: str = "",
        attachment: bool = True,
    ) -> str:
        """A URL that lets its holder GET (or, with ``method="put_object"``, PUT) this one object until it expires."""
        params: dict[str, Any] = {"Bucket": self.bucket_name, "Key": self._normalize_name(name)}
        if method == "get_object":
            if filename:
                kind = "attachment" if attachment else "inline"
                params["ResponseContentDisposition"] = f'{kind}; filename="{filename}"'
            if content_type:
                params["ResponseContentType"] = content_type
        return self._signing_client().generate_presigned_url(
            method, Params=params, ExpiresIn=expire or self.querystring_expire
        )

    def download_to(self, name: str, out: IO[bytes]) -> None:
        """Stream the object into the open file ``out`` (the in-process worker's download: no temporary copy)."""
        self.bucket.Object(self._normalize_name(clean_name(name))).download_fileobj(out, Config=self.transfer_config)

    # --- multipart uploads whose parts a client PUTs straight to the store (uploads.direct) -----------------

    def _key(self, name: str) -> str:
        return self._normalize_name(clean_name(name))

    def start_multipart(self, name: str) -> str:
        """Open a multipart upload of ``name``; its id."""
        client = self.connection.meta.client
        return client.create_multipart_upload(
            Bucket=self.bucket_name, Key=self._key(name), ContentType="application/octet-stream"
        )["UploadId"]

    def part_url(self, name: str, upload_id: str, number: int, expire: int) -> str:
        """A presigned URL to which a client PUTs part ``number`` (1-based) of that upload."""
        params = {"Bucket": self.bucket_name, "Key": self._key(name), "UploadId": upload_id, "PartNumber": number}
        return self._signing_client().generate_presigned_url("upload_part", Params=params, ExpiresIn=expire)

    def multipart_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        """What the store received: ``[{"PartNumber", "Size", "ETag"}, …]`` in part order."""
        pages = self.connection.meta.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket_name, Key=self._key(name), UploadId=upload_id
        )
        try:
            parts = [p for page in pages for p in page.get("Parts", ())]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                raise FileNotFoundError(f"no multipart upload {upload_id} of {name}") from None
            raise
        return sorted(({k: p[k] for k in ("PartNumber", "Size", "ETag")} for p in parts), key=lambda p: p["PartNumber"])

    def complete_multipart(self, name: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.connection.meta.client.complete_multipart_upload(
            Bucket=self.bucket_name,
            Key=self._key(name),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
        )

    def abort_multipart(self, name: str, upload_id: str) -> None:
        try:
            self.connection.meta.client.abort_multipart_upload(
                Bucket=self.bucket_name, Key=self._key(name), UploadId=upload_id
            )
        except ClientError:
            pass  # already completed or aborted: nothing is left to free

    def chunks(self, name: str, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes in chunks of ``size``, streamed (never whole in memory)."""
        body = self.bucket.Object(self._key(name)).get()["Body"]
        try:
            yield from body.iter_chunks(size)
        finally:
            body.close()

    def copy_new(self, source: str, name: str) -> str:
        """Copy the object ``source`` to ``name`` (or a fresh name beside it, as save() picks) inside the store."""
        name = self.get_available_name(name)
        self.bucket.Object(self._key(name)).copy(
            {"Bucket": self.bucket_name, "Key": self._key(source)}, Config=self.transfer_config
        )
        return name

    def url(self, name: str, parameters: dict | None = None, expire: int | None = None, http_method=None) -> str:
        return self.presigned(name, expire=expire, attachment=False)


def check_bucket(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """At start-up: the configured bucket exists and these credentials may use it (a clear error, not a 500 later)."""
    from django.core.files.storage import storages

    storage = storages["default"]
    if not isinstance(storage, PrivateS3Storage):
        return []
    where = f"bucket {storage.bucket_name!r}" + (f" at {storage.endpoint_url}" if storage.endpoint_url else "")
    # one try with a short wait: a start-up check must answer in seconds, not retry for a minute
    quick = storage.client_config.merge(Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
    client = storage._create_session().client(
        "s3", region_name=storage.region_name, endpoint_url=storage.endpoint_url, config=quick, verify=storage.verify
    )
    try:
        client.head_bucket(Bucket=storage.bucket_name)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return [
                checks.Error(
                    f"ASSAY_STORAGE_URL: the {where} does not exist",
                    hint="create it (e.g. `aws s3 mb` / `mc mb`), or correct ASSAY_STORAGE_URL",
                    id="assay.storage.E001",
                )
            ]
        return [
            checks.Error(
                f"ASSAY_STORAGE_URL: the store refused access to the {where} (HTTP {status})",
                hint="check ASSAY_S3_ACCESS_KEY/ASSAY_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
                " and the bucket's policy",
                id="assay.storage.E002",
            )
        ]
    except BotoCoreError as exc:
        return [
            checks.Error(
                f"ASSAY_STORAGE_URL: cannot reach the {where}: {exc}",
                hint="check ASSAY_S3_ENDPOINT_URL, ASSAY_S3_REGION and the credentials",
                id="assay.storage.E003",
            )
        ]
    return []
