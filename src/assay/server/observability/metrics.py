"""The Prometheus metrics: what happens is counted where it happens (:mod:`.receivers`, :mod:`.middleware`),
what *is* (queue depth, workers last seen) is read from the database when scraped (:class:`QueueCollector`).

Under a multi-process server (gunicorn) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder writable by
every process, before they start: prometheus_client then keeps each process's counters and histograms
in files there and :func:`exposition` sums them, so a scrape sees the whole server whichever process
answers it. Without it each process counts alone (``assay serve``, ``assay demo``: one process).
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from django.db import DatabaseError
from django.db.models import Count, Max, Q
from django.utils import timezone
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services.queue import WAITING
from assay.server.submissions.services.tokens import PLATFORM_QUEUE
from assay.server.submissions.services.workers_seen import SEEN_MINUTES

log = logging.getLogger("assay.server")
disable_created_metrics()  # no "_created" twin of every series: Prometheus does not need it, it doubles the text

#: Seconds from a few ms (a page) to a day (a queue nobody serves): the buckets the three histograms share
#: in part. Evaluations and waits run long; requests include the workers' 20 s long-polls.
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
EVALUATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

CLAIM_WAIT = Histogram(
    "assay_claim_wait_seconds",
    "From submitted (or re-run) to a worker's first claim of the job.",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
EVALUATION = Histogram(
    "assay_evaluation_seconds",
    "From a worker's claim to its reported outcome.",
    ["queue", "outcome"],
    buckets=EVALUATION_BUCKETS,
)
FAILURES = Counter(
    "assay_submission_failures",
    "Failed evaluations by reason: the worker's error kind (timeout, memory, crash, script_error, bad_output,"
    " setup), bad_output (the server refused the result), lost (every lease ran out) or unspecified.",
    ["queue", "reason"],
)
HTTP_LATENCY = Histogram(
    "assay_http_request_duration_seconds",
    "Time to a response's headers, by URL route (the pattern, never the path), method and status class.",
    ["route", "method", "status"],
    buckets=HTTP_BUCKETS,
)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def exposition() -> bytes:
    """The text a scrape gets: this process's (or, in multi-process mode, every process's) counters and
    histograms, then the figures read from the database now."""
    if multiprocess_dir():
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY  # with the process's own CPU, memory and Python figures
    read = CollectorRegistry(auto_describe=False)
    read.register(QueueCollector())
    return generate_latest(counted) + generate_latest(read)


class QueueCollector:
    """Queue depth and workers seen, read at scrape time in two grouped queries (no per-queue query)."""

    def collect(self):
        up = GaugeMetricFamily("assay_metrics_database_up", "1 if the database answered this scrape's queries.")
        try:
            families = list(self._families())
        except DatabaseError as exc:
            log.warning("metrics: the database did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self):
        now = timezone.now()
        since = now - dt.timedelta(minutes=SEEN_MINUTES)
        tokens = (
            WorkerToken.objects.filter(revoked_at__isnull=True)
            .values_list("queue_name")
            .annotate(last=Max("last_used_at"), seen=Count("pk", filter=Q(last_used_at__gte=since)))
            .order_by()
        )
        jobs = (
            Submission.objects.filter(status__in=(*WAITING, Submission.Status.RUNNING))
            .values_list("queue_name", "status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        queues = {PLATFORM_QUEUE}
        counts: dict[tuple[str, bool], int] = {}  # (queue, held by a worker) -> submissions
        for queue, status, n in jobs:
            key = (queue, status == Submission.Status.RUNNING)
            counts[key] = counts.get(key, 0) + n
            queues.add(queue)
        seen = GaugeMetricFamily(
            "assay_workers_seen", f"Worker tokens heard from in the last {SEEN_MINUTES} minutes.", labels=["queue"]
        )
        last = GaugeMetricFamily(
            "assay_worker_last_seen_timestamp_seconds",
            "When a worker of the queue last claimed, renewed a lease or reported (Unix time).",
            labels=["queue"],
        )
        for queue, last_used, count in tokens:
            seen.add_metric([queue], count)
            if last_used is not None:
                last.add_metric([queue], last_used.timestamp())
            queues.add(queue)
        waiting = GaugeMetricFamily(
            "assay_queue_depth", "Submissions waiting for a worker (submitted or resuming).", labels=["queue"]
        )
        held = GaugeMetricFamily("assay_queue_running", "Submissions a worker holds now.", labels=["queue"])
        for queue in sorted(queues):
            waiting.add_metric([queue], counts.get((queue, False), 0))
            held.add_metric([queue], counts.get((queue, True), 0))
        yield from (waiting, held, seen, last)
