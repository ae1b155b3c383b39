"""Parts that go straight to the object store: EvalAI's ``--large`` flow when ``ASSAY_STORAGE_URL=s3://…``.

As EvalAI does on S3, the server opens a multipart upload in the store and hands out a presigned URL per
part; the client PUTs the parts there, never through the server. At finish the server asks the store what
arrived (the parts' numbers and sizes are checked as the proxied flow checks them), joins the parts there,
reads the joined object back once in 1 MiB chunks for its SHA-256 (checked against a declared one, and the
name it is stored under), and copies it inside the store to its content-addressed name.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import ExitStack
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage

from assay.server.submissions.services.errors import SubmissionError

from .models import Upload


def available() -> bool:
    """Does the storage take parts straight from clients (an S3-compatible store)?"""
    return hasattr(default_storage, "start_multipart")


def _joined(upload: Upload) -> str:
    return f"uploads/{upload.pk}/joined"


def start(upload: Upload, lifetime_seconds: int) -> list[str]:
    """Open the store's multipart upload; the presigned URL of each part, in order."""
    upload_id = default_storage.start_multipart(_joined(upload))
    Upload.objects.filter(pk=upload.pk).update(store_upload_id=upload_id)
    upload.store_upload_id = upload_id
    name = _joined(upload)
    return [default_storage.part_url(name, upload_id, n, lifetime_seconds) for n in range(1, upload.part_count + 1)]


def received(upload: Upload) -> list[dict]:
    """The parts the store holds, checked: all of them, each but the last exactly ``chunk_size``, the declared size."""
    try:
        parts = default_storage.multipart_parts(_joined(upload), upload.store_upload_id)
    except FileNotFoundError:
        raise SubmissionError(
            "upload_closed", "the store no longer holds this upload's parts; start a new one", 409
        ) from None
    numbers = [p["PartNumber"] for p in parts]
    if numbers != list(range(1, upload.part_count + 1)):
        gaps = sorted(set(range(1, upload.part_count + 1)) - set(numbers))[:10]
        raise SubmissionError("parts_missing", f"parts {gaps} have not arrived; send them, then finish again", 409)
    for part in parts[:-1]:
        if part["Size"] != upload.chunk_size:
            n = part["PartNumber"]
            raise SubmissionError("bad_part", f"part {n} is shorter than chunk_size; only the last part may be", 409)
    total = sum(p["Size"] for p in parts)
    if upload.size is not None and total != upload.size:
        raise SubmissionError(
            "size_mismatch", f"received {total} bytes of the declared {upload.size}; send the rest", 409
        )
    if total > settings.SUBMISSION_MAX_BYTES:
        limit = settings.SUBMISSION_MAX_BYTES
        raise SubmissionError("file_too_large", f"the file is {total} bytes; the limit is {limit}", 413)
    return parts


def join(upload: Upload, parts: list[dict], keep: bool) -> tuple[str, int, IO[bytes] | None]:
    """Join the parts in the store and read them back once: (sha256, size, a local copy when ``keep``,
    for a docker phase's image check; the caller closes it)."""
    name = _joined(upload)
    default_storage.complete_multipart(name, upload.store_upload_id, parts)
    digest, size = hashlib.sha256(), 0
    with ExitStack() as stack:
        copy = stack.enter_context(tempfile.TemporaryFile()) if keep else None
        for chunk in default_storage.chunks(name):
            digest.update(chunk)
            size += len(chunk)
            if copy is not None:
                copy.write(chunk)
        if copy is not None:
            stack.pop_all()  # the caller's now
            copy.seek(0)
    return digest.hexdigest(), size, copy


def store(upload: Upload, folder: str, filename: str) -> str:
    """Copy the joined object to ``folder/filename`` inside the store (no bytes through the server)."""
    return default_storage.copy_new(_joined(upload), f"{folder}/{filename}")


def discard(upload: Upload) -> None:
    """Free what the store holds for this upload: the open multipart upload, or the joined object."""
    if not upload.store_upload_id or not available():
        return
    default_storage.abort_multipart(_joined(upload), upload.store_upload_id)
    default_storage.delete(_joined(upload))
