"""Resumable chunked uploads that become submissions.

``begin`` runs every submit-time check and reserves the submission as ``submitting`` (so it counts
against the limits at once, as in EvalAI's presigned flow, and the client gets its id);
``put_part`` stores one part with its checksum (idempotent: a part sent twice replaces itself);
``finish`` joins the parts, checks the whole file's SHA-256 and size, and queues the submission.
An upload that is abandoned fails its submission with the reason, never leaves it stuck.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterable

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from assay.server.challenges.models import ChallengePhase, Participation
from assay.server.storage import ContentWriter, safe_file_name
from assay.server.submissions.models import Submission
from assay.server.submissions.services import images
from assay.server.submissions.services import submit as submit_rules
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.meta import normalise_meta

from . import direct
from .models import Upload

S = Submission.Status
DEFAULT_CHUNK = 8 * 1024 * 1024
EVALAI_CHUNK = 20 * 1024 * 1024  # what evalai CLI sends (evalai/utils/common.py)
MAX_CHUNK = 64 * 1024 * 1024
MAX_PARTS = 10000
LIFETIME = dt.timedelta(hours=24)


def _refuse(code: str, message: str, status: int = 400) -> SubmissionError:
    return SubmissionError(code, message, status)


def begin(
    user,
    phase: ChallengePhase,
    file_name: str,
    fields: submit_rules.SubmissionFields,
    *,
    size: int | None = None,
    sha256: str = "",
    chunk_size: int = DEFAULT_CHUNK,
    part_count: int | None = None,
    participation: Participation | None = None,
) -> Upload:
    """Check everything submit() checks, then reserve a ``submitting`` submission and open the upload.
    ``participation``: what ``gate`` answered, when the caller asked it already (as for submit())."""
    expire_stale()
    participation = participation or submit_rules.gate(user, phase)  # who may submit, before what they send
    file_name = submit_rules.clean_file_name(phase, file_name, size)
    if not 1024 <= chunk_size <= MAX_CHUNK:
        raise _refuse("bad_chunk_size", f"chunk_size must be between 1 KiB and {MAX_CHUNK} bytes")
    sha256 = (sha256 or "").lower()
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise _refuse("bad_checksum", "sha256 must be 64 hexadecimal characters")
    if part_count is None:
        part_count = max(1, -(-(size or 0) // chunk_size))
    if not 1 <= part_count <= MAX_PARTS:
        raise _refuse("too_many_parts", f"an upload has between 1 and {MAX_PARTS} parts")
    meta = normalise_meta(phase.submission_meta_attributes, fields.meta)
    with transaction.atomic():
        sub = submit_rules.create(user, phase, participation, fields, meta, file_name=file_name, status=S.SUBMITTING)
        return Upload.objects.create(
            user=user,
            phase=phase,
            submission=sub,
            file_name=file_name,
            size=size,
            sha256=sha256,
            chunk_size=chunk_size,
            part_count=part_count,
            expires_at=timezone.now() + LIFETIME,
        )


def direct_part_urls(upload: Upload) -> list[str] | None:
    """With an object store, the store's presigned URL of each part (the client PUTs them there, not through
    the server: :mod:`.direct`); None with local storage, whose parts come through the server."""
    if not direct.available():
        return None
    return direct.start(upload, int(LIFETIME.total_seconds()))


def _part_name(upload: Upload, number: int) -> str:
    return f"uploads/{upload.pk}/part-{number:05d}"


def _open(upload: Upload) -> None:
    if upload.status != Upload.Status.OPEN:
        raise _refuse("upload_closed", f"this upload is {upload.status}; start a new one", 409)
    if upload.expires_at <= timezone.now():
        abort(upload, "the upload expired before it was finished")
        raise _refuse("upload_expired", "this upload expired; start a new one", 410)


def put_part(upload: Upload, number: int, chunks: Iterable[bytes], checksum: str = "") -> dict:
    """Store part ``number`` (1-based) from a stream of bytes; refuse it if its SHA-256 differs from ``checksum``."""
    _open(upload)
    if not 1 <= number <= upload.part_count:
        raise _refuse("bad_part", f"part numbers run from 1 to {upload.part_count}")
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as tmp:
        for chunk in chunks:
            size += len(chunk)
            if size > upload.chunk_size:
                raise _refuse("part_too_large", f"a part holds at most {upload.chunk_size} bytes", 413)
            sha.update(chunk)
            md5.update(chunk)
            tmp.write(chunk)
        if checksum and checksum.lower() != sha.hexdigest():
            raise _refuse("checksum_mismatch", f"part {number} arrived damaged (its SHA-256 differs); send it again")
        if upload.size is not None and upload.received_bytes - _part_size(upload, number) + size > upload.size:
            raise _refuse("too_much_data", f"the parts add up to more than the declared {upload.size} bytes", 413)
        tmp.seek(0)
        name = _part_name(upload, number)
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(
            name, File(tmp, name=name.rsplit("/", 1)[-1])
        )  # streamed: a part never sits whole in memory
    info = {"size": size, "sha256": sha.hexdigest(), "md5": md5.hexdigest()}
    with transaction.atomic():
        row = Upload.objects.select_for_update().get(pk=upload.pk)
        row.parts = {**row.parts, str(number): info}
        row.save(update_fields=["parts"])
    upload.parts = row.parts
    return {"part": number, **info}


def _part_size(upload: Upload, number: int) -> int:
    return int(upload.parts.get(str(number), {}).get("size", 0))


def missing_parts(upload: Upload) -> list[int]:
    return [n for n in range(1, upload.part_count + 1) if str(n) not in upload.parts]


def finish(upload: Upload) -> Submission:
    """Join the parts, check size and checksum, and queue the submission. Idempotent once complete."""
    if upload.status == Upload.Status.COMPLETE and upload.submission is not None:
        return upload.submission
    _open(upload)
    if upload.store_upload_id:
        return _finish_direct(upload)
    received = sorted(int(n) for n in upload.parts)
    if not received or received != list(range(1, len(received) + 1)):
        gaps = missing_parts(upload)[:10]
        raise _refuse("parts_missing", f"parts {gaps} have not arrived; send them, then finish again", 409)
    for n in received[:-1]:
        if _part_size(upload, n) != upload.chunk_size:
            raise _refuse("bad_part", f"part {n} is shorter than chunk_size; only the last part may be", 409)
    total = upload.received_bytes
    if upload.size is not None and total != upload.size:
        raise _refuse("size_mismatch", f"received {total} bytes of the declared {upload.size}; send the rest", 409)
    if total > settings.SUBMISSION_MAX_BYTES:
        raise _refuse("file_too_large", f"the file is {total} bytes; the limit is {settings.SUBMISSION_MAX_BYTES}", 413)
    writer = ContentWriter()
    with tempfile.TemporaryFile() as joined:
        digest = hashlib.sha256()
        joined_size = 0
        for n in received:
            with default_storage.open(_part_name(upload, n), "rb") as part:
                while block := part.read(1024 * 1024):
                    digest.update(block)
                    joined.write(block)
                    joined_size += len(block)
        if upload.sha256 and digest.hexdigest() != upload.sha256:
            abort(upload, "the file's SHA-256 differs from the one declared at the start")
            raise _refuse("checksum_mismatch", "the joined file's SHA-256 differs from the declared one; upload again")
        image_digest = _image_digest(upload, joined)
        try:
            stored, sha, size = writer.save_seekable(
                "submissions", upload.file_name, joined, known=(digest.hexdigest(), joined_size)
            )
            sub = _queue(upload, stored, sha, size, image_digest)
        except BaseException:
            writer.rollback()
            raise
    upload.status = Upload.Status.COMPLETE
    _delete_parts(upload)
    return sub


def _finish_direct(upload: Upload) -> Submission:
    """finish() of an upload whose parts went straight to the object store: the same checks, made there."""
    parts = direct.received(upload)
    sha, size, copy = direct.join(upload, parts, keep=upload.submission.phase.challenge.is_docker_based)
    writer = ContentWriter()
    try:
        if upload.sha256 and sha != upload.sha256:
            abort(upload, "the file's SHA-256 differs from the one declared at the start")
            raise _refuse("checksum_mismatch", "the joined file's SHA-256 differs from the declared one; upload again")
        image_digest = _image_digest(upload, copy) if copy is not None else ""
        try:
            stored = direct.store(upload, f"submissions/{sha}", safe_file_name(upload.file_name))
            writer.created.append(stored)
            sub = _queue(upload, stored, sha, size, image_digest)
        except BaseException:
            writer.rollback()
            raise
    finally:
        if copy is not None:
            copy.close()
    upload.status = Upload.Status.COMPLETE
    _delete_parts(upload)
    return sub


def _queue(upload: Upload, stored: str, sha: str, size: int, image_digest: str) -> Submission:
    """The reserved submission gets its file and joins the queue; the upload is complete."""
    with transaction.atomic():
        sub = Submission.objects.select_for_update().get(pk=upload.submission_id)
        if sub.status != S.SUBMITTING:
            raise _refuse("bad_state", f"the submission is {sub.status}, no longer waiting for its file", 409)
        sub.input_file = stored
        sub.input_file_sha256 = sha
        sub.input_file_size = size
        sub.image_digest = image_digest
        sub.status = S.SUBMITTED
        sub.save(update_fields=["input_file", "input_file_sha256", "input_file_size", "image_digest", "status"])
        Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.COMPLETE)
    return sub


def _image_digest(upload: Upload, joined) -> str:
    """A docker-based phase's image is checked once whole; a refused one fails its reserved submission."""
    phase = upload.submission.phase
    if not phase.challenge.is_docker_based:
        return ""
    try:
        return images.check_submission(phase, joined, upload.file_name, team_id=upload.submission.participant_team_id)
    except SubmissionError as exc:
        abort(upload, exc.message)
        raise


def abort(upload: Upload, reason: str = "the upload was abandoned") -> None:
    """Close the upload and fail its reserved submission with ``reason`` (failed ones do not count)."""
    with transaction.atomic():
        Upload.objects.filter(pk=upload.pk, status=Upload.Status.OPEN).update(
            status=Upload.Status.ABORTED, failure_reason=reason[:2000]
        )
        Submission.objects.filter(pk=upload.submission_id, status=S.SUBMITTING).update(
            status=S.FAILED, failure_reason=reason[:2000], completed_at=timezone.now()
        )
    upload.status = Upload.Status.ABORTED
    _delete_parts(upload)


def _delete_parts(upload: Upload) -> None:
    direct.discard(upload)  # what the object store holds of a direct upload
    for n in upload.parts:
        try:
            default_storage.delete(_part_name(upload, int(n)))
        except OSError:
            pass


def expire_stale(limit: int = 50) -> int:
    """Abort uploads past their expiry (called as new ones begin; cheap, bounded)."""
    stale = list(Upload.objects.filter(status=Upload.Status.OPEN, expires_at__lte=timezone.now())[:limit])
    for upload in stale:
        abort(upload, "the upload expired before it was finished")
    return len(stale)
