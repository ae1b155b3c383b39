"""Container jobs through the worker (docs/containers.md) on a real Docker engine; the server is an in-memory fake.

Participant and environment images are ``docker save`` tarballs of the busybox test image with their
configuration rewritten (command, user, a nonce so each is a new image that the worker must load and
remove). Tests that need an engine skip, with the reason, where none can run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.evaluation import EvaluatorPool
from assay.evaluation.containers import AcceptedImage, ContainerUnavailable
from assay.evaluation.containers.docker_backend import DockerBackend, docker
from assay.worker import Worker, WorkerClient
from assay.worker.containers import ContainerRunner, open_runner
from tests.containers.conftest import owned_by, save_image

LIMITS = {"wall_seconds": 30, "memory_bytes": 512 * 1024**2, "tmp_bytes": 16 * 1024**2}
SCRIPT = """import json

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    predicted = json.load(open(user_submission_file))
    return {"result": [{"test_split": {"count": predicted["predictions"]}}]}
"""
# The participant's static-dataset program: one prediction per line of its inputs.
PREDICT = """n=0; while read -r line; do n=$((n+1)); done < /input/inputs.txt
printf '{"predictions": %s}\\n' "$n" > "$SUBMISSION_PATH/submission.json"; echo predicted $n"""
# The host's environment: scores the agent's first line against the annotation it alone can read.
ENVIRONMENT = """answer=$(cat /dataset/answer.txt); got=$(nc -l -p 8085 </dev/null | head -n 1)
accuracy=0; [ "$got" = "$answer" ] && accuracy=1; echo "environment heard: $got"
printf '{"secret": "%s", "result": [{"test_split": {"accuracy": %s}}]}' "$ASSAY_RESULT_SECRET" "$accuracy" \\
  > "$ASSAY_RESULT_PATH\""""
AGENT = """[ -e /dataset/answer.txt ] && echo saw-the-answer > /tmp/m || echo 42 > /tmp/m
until nc $ENVIRONMENT_HOST 8085 < /tmp/m; do sleep 0.1; done; sleep 600"""


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def info(data: bytes, name: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "name": name}


class FakeServer:
    """The worker protocol in memory: files by sha256 (downloaded 0600, as the real client does),
    and every claim, heartbeat, release and completion recorded."""

    base = "http://fake/api/v1/worker"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.jobs: list[dict[str, Any]] = []
        self.claims: list[bool] = []
        self.heartbeats: list[int] = []
        self.released: list[int] = []
        self.completed: list[dict[str, Any]] = []
        self.on_claim: Any = None
        self.code_claims: list[bool] = []

    def add(self, data: bytes, name: str) -> dict[str, Any]:
        self.files[hashlib.sha256(data).hexdigest()] = data
        return info(data, name)

    def claim(
        self, worker_id: str, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> dict[str, Any] | None:
        self.claims.append(containers)
        self.code_claims.append(code_bundles)
        if self.on_claim is not None:
            self.on_claim()
        return self.jobs.pop(0) if self.jobs else None

    def download(self, sha256: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.files[sha256])
        return target

    def heartbeat(self, submission_id: int, attempt: int) -> None:
        self.heartbeats.append(submission_id)

    def release(self, submission_id: int, attempt: int) -> None:
        self.released.append(submission_id)

    def complete(self, submission_id: int, attempt: int, report: dict[str, Any]) -> dict[str, Any]:
        self.completed.append(report)
        return {"status": "failed" if report.get("error") else "finished", "failure_reason": report.get("error")}


def image_tarball(base: Path, target: Path, *, command: list[str] | None, user: str = "1000") -> Path:
    """A copy of a saved image with a new command, user and nonce (so a new image ID) and no tags."""
    with tarfile.open(base) as src:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config_name = manifest[0]["Config"]
        with tarfile.open(target, "w") as dst:
            for member in src:
                data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if member.name == config_name:
                    config = json.loads(data or b"{}")
                    config["config"].update(User=user, Cmd=command, Env=[f"NONCE={uuid.uuid4().hex}"])
                    data = json.dumps(config).encode()
                elif member.name == "manifest.json":
                    manifest[0]["RepoTags"] = None
                    data = json.dumps(manifest).encode()
                if data is not None:
                    member.size = len(data)
                    dst.addfile(member, io.BytesIO(data))
                else:
                    dst.addfile(member)
    return target


def digest_of(tarball: Path) -> str:
    """The image ID the tarball's manifest names (``sha256`` of its configuration), whoever its user is."""
    with tarfile.open(tarball) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        return "sha256:" + hashlib.sha256(tar.extractfile(manifest[0]["Config"]).read()).hexdigest()  # type: ignore[union-attr]


def present(client: Any, image_id: str) -> bool:
    try:
        client.images.get(image_id)
        return True
    except docker.errors.ImageNotFound:
        return False


@pytest.fixture(scope="module")
def busybox_tar(docker_client: Any, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_image(docker_client, images["busybox"], tmp_path_factory.mktemp("saved") / "busybox.tar")


@pytest.fixture
def made(busybox_tar: Path, tmp_path: Path, docker_client: Any):
    """Makes image tarballs; removes whatever they loaded that is still on the engine afterwards."""
    digests: list[str] = []

    def make(name: str, command: list[str] | None, user: str = "1000") -> Path:
        tarball = image_tarball(busybox_tar, tmp_path / f"{name}.tar", command=command, user=user)
        digests.append(digest_of(tarball))
        return tarball

    yield make
    for digest in digests:
        if present(docker_client, digest):
            docker_client.images.remove(digest, force=True)


@pytest.fixture
def script_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__init__.py", SCRIPT)
    return buf.getvalue()


@pytest.fixture
def pool(tmp_path: Path):
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:
        yield pool


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def worker(docker_client: Any, pool: EvaluatorPool, tmp_path: Path, server: FakeServer):
    runner = ContainerRunner(DockerBackend(docker_client), tmp_path / "w" / "containers", images=docker_client)
    yield Worker(server, tmp_path / "w", pool=pool, containers=runner)
    leftovers = docker_client.containers.list(all=True, filters=owned_by(runner.backend))
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"


def static_job(
    server: FakeServer, tarball: Path, script: bytes, *, inputs: bytes | None, inputs_name: str = ""
) -> dict:
    data = tarball.read_bytes()
    image = server.add(data, "submission.tar")
    return {
        "submission_id": 11, "attempt": 1, "phase": {"codename": "test"}, "lease_seconds": 60,
        "submission_file": image, "evaluation_script": server.add(script, "evaluation_script.zip"),
        "annotation": None, "submission_metadata": {}, "limits": LIMITS, "chunking": None,
        "container": {
            "kind": "static_dataset", "image": {"file": image}, "image_digest": digest_of(tarball),
            "max_image_bytes": 64 * 1024**2, "environment": None,
            "test_inputs": server.add(inputs, inputs_name) if inputs is not None else None,
        },
    }  # fmt: skip


def environment_job(server: FakeServer, agent: Path, environment: dict[str, Any], *, lease: float = 60) -> dict:
    data = agent.read_bytes()
    image = server.add(data, "agent.tar")
    return {
        "submission_id": 12, "attempt": 1, "phase": {"codename": "test"}, "lease_seconds": lease,
        "submission_file": image, "evaluation_script": None, "submission_metadata": {}, "limits": LIMITS,
        "annotation": server.add(b"42\n", "answer.txt"), "chunking": None,
        "container": {
            "kind": "environment", "image": {"file": image}, "image_digest": digest_of(agent),
            "max_image_bytes": 64 * 1024**2, "test_inputs": None, "environment": environment,
        },
    }  # fmt: skip


def inputs_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inputs.txt", "a\nb\nc\nd\n")
    return buf.getvalue()


# -- static dataset -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "name", "count"), [(b"a\nb\nc\n", "inputs.txt", 3), (inputs_zip(), "inputs.zip", 4)], ids=["file", "zip"]
)
def test_a_static_dataset_image_is_run_scored_and_removed(
    worker: Worker,
    server: FakeServer,
    made: Any,
    script_zip: bytes,
    docker_client: Any,
    inputs: bytes,
    name: str,
    count: int,
) -> None:
    tarball = made("predictor", sh(PREDICT))
    worker.run_job(static_job(server, tarball, script_zip, inputs=inputs, inputs_name=name))
    [report] = server.completed
    assert report["error"] is None, report
    assert report["output"] == {"result": [{"test_split": {"count": count}}]}
    assert f"predicted {count}" in report["stdout"] and "--- evaluation script ---" in report["stdout"]
    assert report["sandbox"].startswith("participant container: docker") and len(report["sandbox"]) <= 500
    assert not present(docker_client, digest_of(tarball))  # released after the run
    assert not list((worker.workdir / "containers" / "runs").iterdir())  # the job's folder is gone


def test_a_corrupt_test_inputs_zip_fails_the_job_as_a_setup_error(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any
) -> None:
    tarball = made("corrupt-inputs", sh(PREDICT))
    worker.run_job(static_job(server, tarball, script_zip, inputs=b"not a zip at all", inputs_name="inputs.zip"))
    [report] = server.completed
    assert report["output"] is None
    assert report["error"].startswith(
        "the worker refused to run the container: the phase's test inputs zip cannot be unpacked safely: "
        "not a readable zip"
    ), report["error"]
    assert not present(docker_client, digest_of(tarball))


def test_a_root_image_is_refused_with_a_clear_message(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any
) -> None:
    tarball = made("root", sh(PREDICT), user="")
    worker.run_job(static_job(server, tarball, script_zip, inputs=b"a\n", inputs_name="inputs.txt"))
    [report] = server.completed
    assert report["output"] is None
    assert report["error"] == (
        "the image runs as root (no USER); add a non-root USER to the Dockerfile, e.g. USER 1000"
    )
    assert not present(docker_client, digest_of(tarball))


def test_a_digest_mismatch_is_refused_and_the_image_removed(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any
) -> None:
    tarball = made("other", sh(PREDICT))
    job = static_job(server, tarball, script_zip, inputs=b"a\n", inputs_name="inputs.txt")
    job["container"]["image_digest"] = "sha256:" + "0" * 64
    worker.run_job(job)
    [report] = server.completed
    assert report["error"].startswith("the uploaded image is not the one that was submitted (expected sha256:0000")
    assert not present(docker_client, digest_of(tarball))


def test_an_image_that_writes_no_predictions_fails_clearly(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any
) -> None:
    tarball = made("silent", sh("echo thinking; ls /input"))
    worker.run_job(static_job(server, tarball, script_zip, inputs=None))
    [report] = server.completed
    assert report["error"] == "the container wrote no /output/submission.json or /output/submission.csv"
    assert "thinking" in report["stdout"]  # the participant sees their own logs to debug
    assert not present(docker_client, digest_of(tarball))


def test_a_participant_reference_that_cannot_be_pulled_fails_clearly(
    docker_client: Any, pool: EvaluatorPool, tmp_path: Path, script_zip: bytes, busybox_tar: Path
) -> None:
    runner = ContainerRunner(DockerBackend(docker_client), tmp_path / "c", images=docker_client)
    server = FakeServer()
    job = static_job(server, busybox_tar, script_zip, inputs=None)
    job["container"].update(image={"reference": "127.0.0.1:9/team/agent@sha256:" + "0" * 64}, image_digest="")
    worker = Worker(server, tmp_path / "w", pool=pool, containers=runner)
    worker.run_job(job)
    [report] = server.completed
    assert report["error"].startswith("the image 127.0.0.1:9/team/agent@sha256:000")
    assert "could not be pulled" in report["error"]


def test_an_engine_that_stops_answering_fails_the_job_clearly(
    docker_client: Any, pool: EvaluatorPool, tmp_path: Path, server: FakeServer, made: Any,
    script_zip: bytes, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    tarball = made("predictor", sh(PREDICT))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")  # the runs' engine, not the intake's
    runner = ContainerRunner(DockerBackend(), tmp_path / "c", images=docker_client)
    worker = Worker(server, tmp_path / "w", pool=pool, containers=runner)
    worker.run_job(static_job(server, tarball, script_zip, inputs=b"a\n", inputs_name="inputs.txt"))
    [report] = server.completed
    assert report["error"].startswith("the worker has no usable container engine, so the image was not run (no Docker")
    assert not present(docker_client, digest_of(tarball))


def test_stopping_hands_the_job_back_and_ends_the_container(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any
) -> None:
    tarball = made("sleeper", sh("sleep 600"))
    job = dict(static_job(server, tarball, script_zip, inputs=None), lease_seconds=3)
    thread = threading.Thread(target=worker.run_job, args=(job,))
    thread.start()
    for _ in range(100):
        if docker_client.containers.list(filters=owned_by(worker.containers.backend)):
            break
        time.sleep(0.1)
    time.sleep(1.5)
    assert server.heartbeats  # the lease is kept alive while the container runs
    worker.stop()
    thread.join(timeout=60)  # the container sleeps 600 s: only the stop ends it
    assert not thread.is_alive()
    assert server.released == [11] and server.completed == []
    for _ in range(50):  # the evaluation thread removes the image as it unwinds
        if not present(docker_client, digest_of(tarball)):
            break
        time.sleep(0.1)
    assert not present(docker_client, digest_of(tarball))


def test_a_cancelled_job_ends_its_container_at_once(
    worker: Worker, server: FakeServer, made: Any, script_zip: bytes, docker_client: Any, monkeypatch: Any
) -> None:
    """The lease is lost (the participant cancelled): the run stops now, not at its wall clock."""
    from assay.worker.client import LeaseLostError

    def cancelled(submission_id: int, attempt: int) -> None:
        raise LeaseLostError("submission 11 was cancelled")

    monkeypatch.setattr(server, "heartbeat", cancelled)
    tarball = made("sleeper", sh("sleep 600"))
    job = dict(static_job(server, tarball, script_zip, inputs=None), lease_seconds=3)
    thread = threading.Thread(target=worker.run_job, args=(job,))
    thread.start()
    thread.join(timeout=120)  # the container sleeps 600 s: only the lost lease ends it
    assert not thread.is_alive() and server.completed == []
    assert not docker_client.containers.list(filters=owned_by(worker.containers.backend))


# -- agent ↔ environment ------------------------------------------------------------------------------
def test_an_agent_scores_against_an_environment_tarball_loaded_once(
    worker: Worker, server: FakeServer, made: Any, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = made("environment", sh(ENVIRONMENT), user="")  # a host image: no non-root rule for it
    loads: list[str] = []
    real_load = docker.models.images.ImageCollection.load

    def counting_load(self: Any, data: Any) -> Any:
        loads.append(Path(getattr(data, "name", "?")).name)
        return real_load(self, data)

    monkeypatch.setattr(docker.models.images.ImageCollection, "load", counting_load)
    env_file = server.add(environment.read_bytes(), "environment.tar")
    for attempt in (1, 2):
        agent = made(f"agent-{attempt}", sh(AGENT))
        worker.run_job(environment_job(server, agent, {"file": env_file}, lease=3))
        report = server.completed[-1]
        assert report["error"] is None, report
        assert report["output"] == {"result": [{"test_split": {"accuracy": 1}}]}
        assert "environment heard: 42" in report["stdout"]
        assert not present(docker_client, digest_of(agent))
    assert loads.count("environment.tar") == 1 and len(loads) == 3
    assert present(docker_client, digest_of(environment))  # kept for the next job


def test_an_agent_scores_against_an_environment_reference(
    worker: Worker, server: FakeServer, made: Any, docker_client: Any
) -> None:
    environment = made("environment", sh(ENVIRONMENT))
    with open(environment, "rb") as handle:
        [image] = docker_client.images.load(handle)
    tag = f"assay-test/worker-env:{uuid.uuid4().hex[:8]}"
    image.tag(tag)
    agent = made("agent", sh(AGENT))
    worker.run_job(environment_job(server, agent, {"reference": tag}))
    [report] = server.completed
    assert report["error"] is None, report
    assert report["output"] == {"result": [{"test_split": {"accuracy": 1}}]}
    assert not present(docker_client, digest_of(agent)) and present(docker_client, tag)


def test_an_environment_reference_missing_from_the_engine_is_a_clear_error(
    worker: Worker, server: FakeServer, made: Any, docker_client: Any
) -> None:
    agent = made("agent", sh(AGENT))
    worker.run_job(environment_job(server, agent, {"reference": "host/no-such-env:1"}))
    [report] = server.completed
    assert report["error"] == (
        "the environment image host/no-such-env:1 is not on this worker's Docker engine; "
        "the host must docker pull or docker load it there"
    )
    assert not present(docker_client, digest_of(agent))


# -- claiming -------------------------------------------------------------------------------------------
def test_claim_sends_the_containers_flag() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    client = WorkerClient("http://assay.test", "aw_x")
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    assert client.claim("w1", wait=0, containers=True) is None
    assert client.claim("w1", wait=0) is None
    assert [b["containers"] for b in bodies] == [True, False]


def test_a_worker_with_containers_off_claims_without_them(tmp_path: Path) -> None:
    server = FakeServer()
    worker = Worker(server, tmp_path / "w", pool=EvaluatorPool(workdir=tmp_path / "e"), containers="off")
    server.on_claim = worker.stop
    worker.run()
    assert worker.containers is None and server.claims == [False]
    assert server.code_claims == [worker.code_bundles.available()]  # code bundles need only bubblewrap


def test_a_worker_without_a_sandbox_does_not_ask_for_code_bundles(tmp_path: Path, monkeypatch) -> None:
    from assay.worker.containers import CodeBundleRunner

    monkeypatch.setattr(CodeBundleRunner, "available", lambda self: False)
    server = FakeServer()
    worker = Worker(server, tmp_path / "w", pool=EvaluatorPool(workdir=tmp_path / "e"), containers="off")
    server.on_claim = worker.stop
    worker.run()
    assert server.code_claims == [False]


def test_a_worker_with_docker_claims_with_them(docker_client: Any, tmp_path: Path) -> None:
    server = FakeServer()
    worker = Worker(server, tmp_path / "w", pool=EvaluatorPool(workdir=tmp_path / "e"), containers="docker")
    server.on_claim = worker.stop
    worker.run()
    assert server.claims == [True]


def test_without_an_engine_auto_turns_containers_off_and_docker_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    assert open_runner("auto", tmp_path / "c") is None
    assert open_runner("off", tmp_path / "c") is None
    with pytest.raises(ContainerUnavailable, match="no Docker engine answers|Docker SDK is not installed"):
        open_runner("docker", tmp_path / "c")
    with pytest.raises(ValueError, match="--containers must be one of"):
        open_runner("podman", tmp_path / "c")


def test_kubernetes_mode_says_what_it_needs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("kubernetes", reason="the kubernetes client is not installed (pip install -e '.[containers]')")
    monkeypatch.delenv("ASSAY_KUBERNETES_PVC", raising=False)
    with pytest.raises(ContainerUnavailable, match="ASSAY_KUBERNETES_PVC"):
        open_runner("kubernetes", tmp_path / "c")


def test_the_cli_refuses_an_unknown_mode_and_a_missing_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli.main import app

    runner = CliRunner()
    args = ["worker", "--server", "http://assay.test", "--token", "aw_x", "--workdir", str(tmp_path)]
    bad = runner.invoke(app, [*args, "--containers", "podman"])
    assert bad.exit_code == 2 and "--containers wants one of auto, docker, kubernetes, off" in bad.output
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    missing = runner.invoke(app, [*args, "--containers", "docker"])
    assert missing.exit_code == 2 and "--containers docker:" in missing.output


def test_images_for_a_cluster_are_pushed_and_run_by_digest(tmp_path: Path) -> None:
    """Kubernetes nodes cannot see this engine: a loaded image is pushed and named by its registry digest."""

    class Image:
        tagged: list[tuple[str, str]] = []

        def tag(self, repository: str, tag: str) -> None:
            self.tagged.append((repository, tag))

    class Images:
        def get(self, image_id: str) -> Image:
            return Image()

    class Api:
        def push(self, repository: str, tag: str, stream: bool, decode: bool) -> list[dict[str, Any]]:
            return [{"status": "Pushed"}, {"aux": {"Tag": tag, "Digest": "sha256:" + "d" * 64}}]

    class Client:
        images = Images()
        api = Api()

    runner = ContainerRunner(DockerBackend(), tmp_path / "c", images=Client(), registry="registry.test:5000/")
    reference = runner._runnable(AcceptedImage("sha256:" + "a" * 64, "sha256:" + "a" * 64, "1000", "amd64", 1, ()))
    assert reference == "registry.test:5000/assay-images@sha256:" + "d" * 64
    assert Image.tagged == [("registry.test:5000/assay-images", "a" * 40)]
