"""A worker with two slots is told one job ended (the host cancelled it): that job's run is stopped alone
and nothing is reported for it; the other job runs to its end and is reported. Once with prediction files
(the evaluator pool), once with container images on the real Docker engine (images built locally)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assay.evaluation import EvaluatorPool
from assay.evaluation.containers.docker_backend import DockerBackend
from assay.worker import Worker
from assay.worker.containers import ContainerRunner
from tests.containers.conftest import owned_by
from tests.worker import test_container_jobs as container_jobs
from tests.worker.test_container_jobs import PREDICT, FakeServer, digest_of, sh, static_job

busybox_tar, made, script_zip = container_jobs.busybox_tar, container_jobs.made, container_jobs.script_zip  # fixtures

# Sleeps as long as the submission says, then scores it.
SLEEPER = """import json, time

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    seconds = json.load(open(user_submission_file))["sleep"]
    time.sleep(seconds)
    return {"result": [{"test_split": {"slept": seconds}}]}
"""


class BatchedServer(FakeServer):
    """The batched protocol in memory: a claim hands out up to ``max_jobs``; the heartbeat answers "ended"
    for a job once ``ends(submission_id)`` says so (the host cancelled it), "extended" otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: Callable[[int], bool] = lambda sid: False
        self.ended: list[int] = []  # told "ended", in order
        self.reported: dict[int, dict[str, Any]] = {}

    def claim_several(
        self, worker_id: str, max_jobs: int, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> list[dict[str, Any]]:
        self.claims.append(containers)
        jobs, self.jobs = self.jobs[:max_jobs], self.jobs[max_jobs:]
        return jobs

    def heartbeat_several(self, jobs: list[tuple[int, int]]) -> list[str]:
        states = []
        for sid, _attempt in jobs:
            self.heartbeats.append(sid)
            if sid in self.ended or self.ends(sid):
                self.ended.append(sid)
                states.append("ended")
            else:
                states.append("extended")
        return states

    def complete_several(self, reports: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any]]:
        answers = []
        for sid, attempt, report in reports:
            self.reported[sid] = report
            answers.append(self.complete(sid, attempt, report))
        return answers


def serve(worker: Worker, jobs: int) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": jobs}, daemon=True)
    thread.start()
    return thread


def file_job(server: FakeServer, sid: int, seconds: float, script: bytes) -> dict[str, Any]:
    return {
        "submission_id": sid, "attempt": 1, "phase": {"codename": "test"}, "lease_seconds": 3,
        "submission_file": server.add(json.dumps({"sleep": seconds, "sid": sid}).encode(), "submission.json"),
        "evaluation_script": server.add(script, "evaluation_script.zip"), "annotation": None,
        "submission_metadata": {}, "limits": {"wall_seconds": 900}, "chunking": None,
    }  # fmt: skip


def test_a_cancelled_file_job_is_stopped_alone_and_the_other_is_reported(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__init__.py", SLEEPER)
    server = BatchedServer()
    server.jobs = [file_job(server, 21, 600, buf.getvalue()), file_job(server, 22, 15, buf.getvalue())]
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:
        busy: list[Any] = []

        def ends(sid: int) -> bool:  # 21 is cancelled once both evaluations run (or, failing that, after 22)
            if sid == 21 and len(pool._busy) == 2 and not busy and 22 not in server.reported:
                busy.extend(ev.proc for ev in pool._busy.values())
            return sid == 21 and (bool(busy) or 22 in server.reported)

        server.ends = ends
        worker = Worker(server, tmp_path / "w", pool=pool, containers="off", slots=2)
        thread = serve(worker, 2)
        thread.join(timeout=120)  # 21 sleeps 600 s: only its stop ends it
        assert not thread.is_alive()
        assert 21 in server.ended and len(busy) == 2  # it was stopped while 22 ran
        assert list(server.reported) == [22]  # nothing for the cancelled job
        assert server.reported[22]["error"] is None, server.reported[22]
        assert server.reported[22]["output"] == {"result": [{"test_split": {"slept": 15}}]}
        assert server.released == []  # ended by the host, not handed back
        assert all(p.poll() is not None for p in busy)  # both evaluators are gone (max_warm=0)


@pytest.fixture
def runner(docker_client: Any, tmp_path: Path) -> Any:
    runner = ContainerRunner(DockerBackend(docker_client), tmp_path / "w" / "containers", images=docker_client)
    yield runner
    leftovers = docker_client.containers.list(all=True, filters=owned_by(runner.backend))
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"


def test_a_cancelled_container_job_is_stopped_alone_and_the_other_is_reported(
    runner: ContainerRunner, made: Any, script_zip: bytes, docker_client: Any, tmp_path: Path
) -> None:
    server = BatchedServer()
    sleeper = made("sleeper", sh("sleep 600"))
    predictor = made("slow-predictor", sh("sleep 15; " + PREDICT))
    server.jobs = [
        dict(static_job(server, sleeper, script_zip, inputs=None), submission_id=31, lease_seconds=3),
        dict(static_job(server, predictor, script_zip, inputs=b"a\nb\n", inputs_name="inputs.txt"), submission_id=32),
    ]
    server.jobs[1]["lease_seconds"] = 3

    def images_running() -> list[str]:
        return [c.attrs["Config"]["Image"] for c in docker_client.containers.list(filters=owned_by(runner.backend))]

    both: list[bool] = []

    def ends(sid: int) -> bool:  # 31 is cancelled once both containers run (or, failing that, after 32)
        if sid == 31 and not both and 32 not in server.reported and len(images_running()) == 2:
            both.append(True)
        return sid == 31 and (bool(both) or 32 in server.reported)

    server.ends = ends
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:
        worker = Worker(server, tmp_path / "w", pool=pool, containers=runner, slots=2)
        thread = serve(worker, 2)
        for _ in range(300):
            if server.ended:
                break
            time.sleep(0.1)
        assert server.ended and server.ended[0] == 31 and both  # while 32 ran
        for _ in range(100):  # the cancelled container is killed and removed; the other one runs on
            if len(images_running()) < 2:
                break
            time.sleep(0.1)
        assert images_running() == [digest_of(predictor)]
        thread.join(timeout=120)  # 31 sleeps 600 s: only its stop ends it
        assert not thread.is_alive()
    assert list(server.reported) == [32]  # nothing for the cancelled job
    report = server.reported[32]
    assert report["error"] is None, report
    assert report["output"] == {"result": [{"test_split": {"count": 2}}]}
    assert server.released == []


def test_with_one_slot_a_cancelled_file_job_is_stopped_too(tmp_path: Path) -> None:
    """The one-job loop: its evaluator is killed when the lease is refused, not left to run its 600 s."""
    from assay.worker.client import LeaseLostError

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__init__.py", SLEEPER)
    server = FakeServer()  # job by job: no batched heartbeat
    job = file_job(server, 41, 600, buf.getvalue())
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:

        def heartbeat(submission_id: int, attempt: int) -> None:
            if pool._busy:  # cancelled once its evaluation runs
                raise LeaseLostError(f"submission {submission_id} was cancelled")

        server.heartbeat = heartbeat  # type: ignore[method-assign]
        worker = Worker(server, tmp_path / "w", pool=pool, containers="off")
        thread = threading.Thread(target=worker.run_job, args=(job,), daemon=True)
        thread.start()
        thread.join(timeout=120)  # it sleeps 600 s: only its stop ends it
        assert not thread.is_alive()
        assert server.completed == [] and server.released == []
        assert pool.started_evaluators == 1 and not pool._busy
