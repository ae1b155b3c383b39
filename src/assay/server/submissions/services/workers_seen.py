"""Which workers serve a challenge and when they were last heard from, for its hosts.

A worker is known by its token: every claim, heartbeat and result authenticates with it and touches
``WorkerToken.last_used_at`` (at most once a minute, :func:`.tokens.authenticate_worker`), and a job a
worker holds names the token (``Submission.leased_by``) and the worker's own id (``lease_owner``). So a
host can tell "no worker has been seen for N minutes: submissions will wait" from "a worker is busy".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from assay.server.challenges.models import Challenge

from ..models import Submission, WorkerToken
from .queue import WAITING
from .tokens import PLATFORM_QUEUE, queue_name

#: A worker long-polls for at most a minute and its token is touched at most once a minute: a worker
#: not heard from for this long is taken to be gone.
SEEN_MINUTES = 10


@dataclass(frozen=True)
class Job:
    """A job a worker holds now (a submission of this challenge, or just a count of others')."""

    submission_id: int
    phase_name: str
    worker_id: str
    attempt: int


@dataclass
class SeenWorker:
    name: str
    last_seen_at: dt.datetime
    jobs: list[Job] = field(default_factory=list)
    other_jobs: int = 0  # jobs of other challenges on a shared (platform) queue: counted, not named


@dataclass
class QueueWorkers:
    """The workers of the queue that serves the challenge, seen within :data:`SEEN_MINUTES`."""

    queue_name: str
    platform: bool
    workers: list[SeenWorker]
    minutes: int
    waiting: int  # this challenge's submissions waiting in the queue

    @property
    def online(self) -> bool:
        return bool(self.workers)


def workers_for(challenge: Challenge, now: dt.datetime | None = None) -> QueueWorkers:
    """The workers seen lately on the queue serving ``challenge``. Callers check the reader is a host:
    platform workers' names and other challenges' jobs are not for participants."""
    now = now or timezone.now()
    queue = queue_name(challenge)
    since = now - dt.timedelta(minutes=SEEN_MINUTES)
    tokens = list(
        WorkerToken.objects.filter(queue_name=queue, revoked_at__isnull=True, last_used_at__gte=since).order_by(
            "-last_used_at", "pk"
        )
    )
    seen = {t.pk: SeenWorker(name=t.name, last_seen_at=t.last_used_at) for t in tokens}
    running = Submission.objects.filter(
        leased_by_id__in=list(seen), status=Submission.Status.RUNNING, lease_expires_at__gte=now
    ).select_related("phase")
    for sub in running.order_by("started_at", "pk"):
        worker = seen[sub.leased_by_id]
        if sub.phase.challenge_id == challenge.pk:
            worker.jobs.append(Job(sub.pk, sub.phase.name, sub.lease_owner, sub.attempt))
        else:
            worker.other_jobs += 1
    waiting = Submission.objects.filter(queue_name=queue, phase__challenge=challenge, status__in=WAITING).count()
    return QueueWorkers(queue, queue == PLATFORM_QUEUE, list(seen.values()), SEEN_MINUTES, waiting)
