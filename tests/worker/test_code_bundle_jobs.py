"""Code-bundle jobs through the worker (docs/containers.md, "Code bundles"): no Docker, the bubblewrap sandbox.

The server is the in-memory fake of test_container_jobs; the bundles run for real under bwrap, with
``containers="off"`` (the worker has no container engine at all). Skipped where bwrap cannot sandbox.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest

from assay.evaluation import EvaluatorPool
from assay.evaluation.containers import process_backend
from assay.evaluation.sandbox import SandboxReport, detect_sandbox
from assay.worker import Worker
from tests.worker.test_container_jobs import LIMITS, PREDICT, SCRIPT, FakeServer

PREDICT_PY = """import json, os, model
lines = open("/input/inputs.txt").read().split()
json.dump({"predictions": model.count(lines)}, open(os.environ["SUBMISSION_PATH"] + "/submission.json", "w"))
print("predicted", len(lines))
"""


@pytest.fixture
def bwrap() -> None:
    report = detect_sandbox()
    if not report.usable:
        pytest.skip(f"bubblewrap cannot sandbox here: {report.reason}")


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture
def pool(tmp_path: Path):
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:
        yield pool


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def worker(bwrap: None, server: FakeServer, pool: EvaluatorPool, tmp_path: Path) -> Worker:
    worker = Worker(server, tmp_path / "w", pool=pool, containers="off")
    assert worker.containers is None  # no container engine: code bundles run anyway
    return worker


def code_job(server: FakeServer, bundle: bytes, *, inputs: bytes | None, inputs_name: str = "", lease: float = 60):
    code = server.add(bundle, "model.zip")
    script = zipped({"__init__.py": SCRIPT})
    return {
        "submission_id": 21, "attempt": 1, "phase": {"codename": "test"}, "lease_seconds": lease,
        "submission_file": code, "evaluation_script": server.add(script, "evaluation_script.zip"),
        "annotation": None, "submission_metadata": {}, "limits": LIMITS, "chunking": None,
        "container": {
            "kind": "static_dataset", "image": {"code": code}, "image_digest": "",
            "max_image_bytes": 64 * 1024**2, "environment": None,
            "test_inputs": server.add(inputs, inputs_name) if inputs is not None else None,
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("files", "inputs", "name", "count"),
    [
        ({"run.sh": PREDICT}, b"a\nb\nc\n", "inputs.txt", 3),
        (
            {"main.py": PREDICT_PY, "model.py": "def count(lines):\n    return len(lines)\n"},
            zipped({"inputs.txt": "a\nb\nc\nd\n"}),
            "inputs.zip",
            4,
        ),
    ],
    ids=["run.sh-file-inputs", "main.py-zip-inputs"],
)
def test_a_code_bundle_is_run_and_scored_without_docker(
    worker: Worker, server: FakeServer, files: dict[str, str], inputs: bytes, name: str, count: int
) -> None:
    job = code_job(server, zipped(files), inputs=inputs, inputs_name=name)
    worker.run_job(job)
    [report] = server.completed
    assert report["error"] is None, report
    assert report["output"] == {"result": [{"test_split": {"count": count}}]}
    assert f"predicted {count}" in report["stdout"] and "--- participant code ---" in report["stdout"]
    assert report["sandbox"].startswith("participant code: process sandbox (bwrap") and len(report["sandbox"]) <= 500
    assert not list((worker.workdir / "containers" / "runs").iterdir())  # the unpacked code is gone
    assert not (worker.cache.root / job["submission_file"]["sha256"]).exists()  # and the zip too


def test_a_bundle_without_an_entry_point_fails_clearly(worker: Worker, server: FakeServer) -> None:
    worker.run_job(code_job(server, zipped({"predict.py": "print(1)"}), inputs=None))
    [report] = server.completed
    assert report["error"] == (
        "the participant's code could not run: the code bundle has no entry point: "
        "put run.sh or main.py at the root of the zip (zip the folder's contents)"
    )


def test_an_unsafe_zip_is_not_unpacked(worker: Worker, server: FakeServer, tmp_path: Path) -> None:
    worker.run_job(code_job(server, zipped({"run.sh": "true", "../escape.txt": "x"}), inputs=None))
    [report] = server.completed
    assert report["error"].startswith("the code bundle cannot be unpacked safely: zip entry '../escape.txt'")
    assert not (worker.workdir / "containers" / "runs" / "escape.txt").exists()


def test_a_failing_bundle_reports_the_engine_facts(worker: Worker, server: FakeServer) -> None:
    worker.run_job(code_job(server, zipped({"run.sh": "echo trying; exit 3"}), inputs=None))
    [report] = server.completed
    assert report["error"] == "the participant's code exited with code 3" and report["output"] is None


def test_without_bwrap_code_bundles_fail_with_the_reason(
    worker: Worker, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_backend, "detect_sandbox", lambda: SandboxReport("none", "bwrap is not installed"))
    worker.run_job(code_job(server, zipped({"run.sh": PREDICT}), inputs=b"a\n", inputs_name="inputs.txt"))
    [report] = server.completed
    assert report["error"].startswith("this worker cannot run code bundles: code bundles run only in the bubblewrap")


def test_stopping_hands_the_job_back_and_ends_the_bundle(worker: Worker, server: FakeServer) -> None:
    job = code_job(server, zipped({"run.sh": "sleep 600"}), inputs=None, lease=3)
    thread = threading.Thread(target=worker.run_job, args=(job,))
    thread.start()
    time.sleep(2.5)
    assert server.heartbeats  # the lease is kept alive while the code runs
    worker.stop()
    thread.join(timeout=60)  # the bundle sleeps 600 s: only the stop ends it
    assert not thread.is_alive()
    assert server.released == [21] and server.completed == []


def test_a_worker_with_containers_off_still_claims_without_them(tmp_path: Path) -> None:
    """Code bundles need no capability flag: the server hands them to workers without containers."""
    server = FakeServer()
    worker = Worker(server, tmp_path / "w", pool=EvaluatorPool(workdir=tmp_path / "e"), containers="off")
    server.on_claim = worker.stop
    worker.run()
    assert server.claims == [False]
