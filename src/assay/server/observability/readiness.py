"""What ``/readyz`` checks before a load balancer or the compose stack sends traffic: the database answers a
trivial query, the file storage writes, reads back and deletes a tiny probe (local folder or object store
alike, through ``default_storage``), and a worker of the platform queue was heard from lately (or, when this
process runs the in-process worker of ``assay demo``, that worker is alive: a dead one fails this check,
while ``/healthz``, the liveness probe, stays 200). ``ASSAY_READY_WORKER_MINUTES`` sets "lately"
(10 by default, as the hosts' workers page; 0 leaves workers out). A probe that workers themselves wait on
(compose's ``depends_on``, a Kubernetes Service the workers reach the server through) asks
``/readyz?skip=workers``: otherwise a new stack waits for workers that wait for it.

The reasons are short and name no host or path (the probe answers anyone); the exception goes to the log.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.utils import timezone

from assay.server import inprocess_worker
from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import PLATFORM_QUEUE

log = logging.getLogger("assay.server")
PROBE = b"assay readiness probe\n"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("readyz: the database did not answer: %s", exc)
        return Check("database", False, f"the database did not answer ({type(exc).__name__})")
    return Check("database", True, connection.vendor)


def storage() -> Check:
    name = ""
    try:
        name = default_storage.save(f"readyz/{uuid.uuid4().hex}.probe", ContentFile(PROBE))
        with default_storage.open(name, "rb") as fh:
            back = fh.read()
        if back != PROBE:
            return Check("storage", False, "the file storage gave back other bytes than were written")
    except Exception as exc:  # noqa: BLE001 - any backend's failure (OSError, an S3 client error) means not ready
        log.warning("readyz: the file storage failed the probe: %s", exc, exc_info=True)
        return Check("storage", False, f"the file storage failed a write and read ({type(exc).__name__})")
    finally:
        if name:
            try:
                default_storage.delete(name)
            except Exception as exc:  # noqa: BLE001 - a probe left behind is harmless; say so
                log.warning("readyz: the storage probe %s could not be deleted: %s", name, exc)
    return Check("storage", True, default_storage.__class__.__name__)


def workers(now: dt.datetime | None = None) -> Check:
    minutes = settings.READY_WORKER_MINUTES
    if minutes <= 0:
        return Check("workers", True, "not checked (ASSAY_READY_WORKER_MINUTES=0)")
    problem = inprocess_worker.health()
    if problem is not None:  # this process runs its own worker and it is down: no other worker stands in for it
        log.warning("readyz: %s", problem)
        stopped = problem.startswith("the in-process worker stopped")
        return Check(
            "workers",
            False,
            "the in-process worker stopped (its token was refused) and is not restarted"
            if stopped
            else "the in-process worker is not running; it is being restarted",
        )
    if inprocess_worker.serving():
        return Check("workers", True, inprocess_worker.where())
    since = (now or timezone.now()) - dt.timedelta(minutes=minutes)
    try:
        seen = WorkerToken.objects.filter(
            queue_name=PLATFORM_QUEUE, revoked_at__isnull=True, last_used_at__gte=since
        ).count()
    except DatabaseError:
        return Check("workers", False, "unknown: the database did not answer")
    if not seen:
        return Check("workers", False, f"no worker of the platform queue was seen in the last {minutes} minutes")
    return Check("workers", True, f"{seen} seen in the last {minutes} minutes")


CHECKS = {"database": database, "storage": storage, "workers": workers}


def checks(skip: frozenset[str] = frozenset()) -> list[Check]:
    """Every check but those in ``skip`` (names of :data:`CHECKS`)."""
    return [check() for name, check in CHECKS.items() if name not in skip]
