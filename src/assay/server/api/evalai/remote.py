"""EvalAI's remote-worker protocol on Assay's queue.

EvalAI's host-run workers read an SQS message without taking it, then say ``running`` and later PUT
the result; they never heartbeat. So: reading a message peeks; reporting ``running`` (or a result
straight away) leases the job for the challenge's whole ``submission_time_limit``; the result is
recorded by the queue service's ``complete`` like any worker's, once, for the current attempt.

Leasing a named job is ``queue.take``; this module only adapts EvalAI's requests to it.
"""

from __future__ import annotations

import json
from typing import Any

from assay.server.challenges.models import Challenge
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services import queue, results
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.tokens import remote_queue_name

S = Submission.Status
WORKER_ID = "evalai-remote-worker"


def queue_token(challenge: Challenge) -> WorkerToken:
    """The queue services act for a queue, named by a worker token; a host stands for their challenge's
    (an unsaved row: no lease is recorded as theirs, and they may act on any job of the queue)."""
    return WorkerToken(queue_name=remote_queue_name(challenge), challenge=challenge, name="host (EvalAI API)")


def take(token: WorkerToken, sub: Submission, job_name: str, challenge: Challenge) -> Submission:
    return queue.take(
        token, sub.pk, worker_id=WORKER_ID, lease_seconds=challenge.submission_time_limit, job_name=job_name
    )


def _output(data: Any, sub: Submission) -> Any:
    raw = data.get("result")
    if raw is None or raw == "":
        raise SubmissionError("invalid", "result is required when the submission finished", 400)
    try:
        output = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except json.JSONDecodeError as exc:
        raise SubmissionError("invalid", f"result is not valid JSON: {exc.msg}", 400) from None
    if isinstance(output, list) and output and isinstance(output[0], dict) and "split" in output[0]:
        output = results._remote_list_to_result(output)
    elif isinstance(output, list):
        output = {"result": output}  # EvalAI's own remote worker sends evaluate()["result"] as it is
    metadata = data.get("metadata")
    if isinstance(output, dict) and metadata not in (None, "") and "submission_metadata" not in output:
        try:
            output["submission_metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
        except json.JSONDecodeError:
            output["submission_metadata"] = metadata
    try:
        results.parse_output(output, sub.phase)  # EvalAI answers 400 for unknown labels or non-numbers
    except results.ResultError as exc:
        raise SubmissionError("invalid_result", str(exc), 400) from None
    return output


def report(token: WorkerToken, sub: Submission, challenge: Challenge, data: Any) -> Submission:
    status = str(data.get("submission_status", "")).strip().lower()
    if status not in ("finished", "failed", "cancelled", "partially_evaluated"):
        raise SubmissionError("invalid", "submission_status is finished, failed, cancelled or partially_evaluated", 400)
    if sub.status != S.RUNNING or token.pk is not None:
        sub = take(token, sub, "", challenge)  # a worker token reports only a job it holds (or takes now)
    stdout = str(data.get("stdout", "") or "")
    stderr = str(data.get("stderr", "") or "")
    output, error = None, None
    if status in ("finished", "partially_evaluated"):
        output = _output(data, sub)
    elif status == "cancelled":
        error = "the host's evaluation cancelled this submission"
    else:
        error = (stderr.strip().splitlines() or ["the host's evaluation reported a failure"])[-1][:2000]
    done = queue.complete(
        token,
        sub.pk,
        queue.Completion(
            attempt=sub.attempt, output=output, error=error, stdout=stdout, stderr=stderr, sandbox="remote"
        ),
    )
    return done
