"""Container jobs on the worker (docs/containers.md): participant images, static datasets, agent ↔ environment.

The runner layer (:mod:`assay.evaluation.containers`) knows how to run one image safely; this module
turns a leased job's ``container`` block into those runs and into one :class:`EvaluationOutcome`, so
the loop completes a container job exactly like any other. Every refusal is a one-line, failed
outcome the participant can act on; the participant image and every container are removed whatever
happened, while the host's environment images stay loaded for the next job.

Code bundles (a zip with ``run.sh`` or ``main.py``, ``container.image.code``) need no Docker:
:class:`CodeBundleRunner` unpacks them into a private folder per job and runs them with the
bubblewrap :class:`~assay.evaluation.containers.process_backend.ProcessBackend`, on any worker where
bwrap works; their predictions are scored exactly like an image's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.evaluation import (
    ErrorKind,
    EvaluationJob,
    EvaluationLimits,
    EvaluationOutcome,
    EvaluatorPool,
    RunHandle,
    UnsafeZipError,
)
from assay.evaluation.containers import (
    AcceptedImage,
    ContainerBackend,
    ContainerUnavailable,
    ImageRefused,
    StaticRun,
    UnsafeRun,
    is_root_user,
    load_image,
    release_image,
    run_environment,
    run_static_dataset,
)
from assay.evaluation.containers.docker_backend import _explain, docker
from assay.evaluation.containers.process_backend import ProcessBackend
from assay.evaluation.containers.registry import pull_image
from assay.evaluation.handles import STOPPED
from assay.evaluation.safezip import safe_extract

log = logging.getLogger("assay.worker")

MODES = ("auto", "docker", "kubernetes", "off")
#: EvalAI's default ``max_docker_image_size`` (40 GiB), for a payload that omits the bundle's value.
DEFAULT_MAX_IMAGE_BYTES = 42949672960
#: Test inputs come from the host, not the participant; the cap only stops a broken zip filling the disk.
MAX_INPUT_BYTES = 64 * 1024**3
#: Files a code bundle may hold (the server refuses more at upload; this is the worker's own guard).
MAX_CODE_ENTRIES = 20000
DATASET_PATH = "/dataset"
#: The server keeps at most this much of a result's ``sandbox`` description.
MAX_SANDBOX_CHARS = 500


@dataclass
class ContainerFiles:
    """A container job's files, fetched by the loop (so the lease is kept alive while they download).

    ``evaluation`` is the job as the loop would score an uploaded file (script, annotation, limits,
    chunking); static-dataset jobs score the container's predictions with it. ``image`` is the
    participant's ``docker save`` tarball (None for a registry reference), ``environment`` the host's
    environment tarball when the phase ships one as a file, ``code`` a code bundle's zip.
    """

    limits: EvaluationLimits
    image: Path | None = None
    code: Path | None = None
    test_inputs: Path | None = None
    environment: Path | None = None
    annotation: Path | None = None
    evaluation: EvaluationJob | None = None


def failed(error: str, kind: ErrorKind = "setup", *, sandbox: str = "") -> EvaluationOutcome:
    """A failed outcome with nothing run (or nothing worth showing)."""
    return EvaluationOutcome(
        ok=False, output=None, stdout="", stderr="", error=error, error_kind=kind, duration=0.0, sandbox=sandbox
    )


class ContainerRunner:
    """One worker's container engine: runs container jobs, keeps host environment images loaded.

    ``images`` is the ``docker.DockerClient`` that loads and checks images (the backend's own for
    Docker). With ``registry`` set (the Kubernetes backend, whose nodes cannot see this engine), loaded
    images are pushed there and run by ``repo@sha256:…``.
    """

    def __init__(
        self,
        backend: ContainerBackend,
        workdir: Path,
        *,
        images: Any,
        registry: str | None = None,
        numeric_user: bool = False,
    ) -> None:
        self.backend = backend
        self.images = images
        self.registry = registry.rstrip("/") if registry else None
        self.numeric_user = numeric_user
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "runs").mkdir(mode=0o700, exist_ok=True)
        self._environments: dict[str, str] = {}  # tarball sha256 → image ID (or pushed reference)

    def describe(self) -> str:
        return self.backend.describe()

    def stop_all(self) -> None:
        """End every container in progress (the worker is stopping); never raises."""
        try:
            self.backend.stop_all()
        except Exception as exc:  # noqa: BLE001 - shutting down: say so and carry on
            log.warning("could not stop the running containers: %s", exc)

    # -- one job ---------------------------------------------------------------------------------------
    def evaluate(
        self, job: dict[str, Any], files: ContainerFiles, pool: EvaluatorPool, handle: RunHandle | None = None
    ) -> EvaluationOutcome:
        """Run the job's container(s) and score them; every failure is an outcome, never an exception.
        ``handle.stop()`` ends this job's containers and scoring alone (the worker's other jobs run on)."""
        spec = job.get("container") or {}
        kind = spec.get("kind")
        if kind not in ("static_dataset", "environment"):
            return failed(f"this worker does not know container jobs of kind {kind!r}; update the worker")
        workdir = Path(tempfile.mkdtemp(prefix=f"job-{job.get('submission_id', 'x')}-", dir=self.workdir / "runs"))
        image: AcceptedImage | None = None
        try:
            environment = self._environment_image(spec, files) if kind == "environment" else None
            image = self._participant_image(spec, files)
            if handle is not None and handle.stopped:  # ended while its images loaded: nothing is run
                return failed(STOPPED)
            if kind == "static_dataset":
                return self._static(spec, files, image, workdir, pool, handle)
            assert environment is not None
            return self._environment(files, environment, self._runnable(image), workdir, handle)
        except ImageRefused as exc:
            return failed(str(exc), sandbox=self.describe())
        except ContainerUnavailable as exc:
            log.error("container job %s: %s", job.get("submission_id"), exc)
            return failed(f"the worker has no usable container engine, so the image was not run ({exc})")
        except UnsafeRun as exc:
            return failed(f"the worker refused to run the container: {exc}")
        except Exception as exc:
            if docker is None or not isinstance(exc, docker.errors.DockerException):
                raise
            log.exception("container job %s: the Docker engine failed", job.get("submission_id"))
            return failed(f"the worker's Docker engine failed, so the image was not run: {_explain(exc)}")
        finally:
            if image is not None:
                self._release(image)
            shutil.rmtree(workdir, ignore_errors=True)

    def _static(
        self,
        spec: dict[str, Any],
        files: ContainerFiles,
        image: AcceptedImage,
        workdir: Path,
        pool: EvaluatorPool,
        handle: RunHandle | None = None,
    ) -> EvaluationOutcome:
        if files.evaluation is None:
            return failed("the phase has no evaluation script to score the container's predictions")
        inputs = prepare_inputs(spec, files.test_inputs, workdir, self.workdir / "inputs")
        run = run_static_dataset(
            self.backend,
            self._runnable(image),
            inputs,
            workdir / "static",
            limits=files.evaluation.limits,
            handle=handle,
        )
        return score_static(run, files.evaluation, pool, "participant container", handle)

    def _environment(
        self, files: ContainerFiles, environment: str, agent: str, workdir: Path, handle: RunHandle | None = None
    ) -> EvaluationOutcome:
        mounts: dict[Path, str] = {}
        if files.annotation is not None:
            _readable(files.annotation)
            name = re.sub(r"[^A-Za-z0-9._-]", "_", files.annotation.name).lstrip(".") or "annotation"
            mounts[files.annotation.resolve()] = f"{DATASET_PATH}/{name}"
        outcome = run_environment(
            self.backend, environment, agent, workdir, limits=files.limits, environment_inputs=mounts, handle=handle
        )
        outcome.sandbox = outcome.sandbox[:MAX_SANDBOX_CHARS]
        return outcome

    # -- images ----------------------------------------------------------------------------------------
    def _participant_image(self, spec: dict[str, Any], files: ContainerFiles) -> AcceptedImage:
        max_bytes = int(spec.get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES)
        source = spec.get("image") or {}
        if source.get("reference"):
            # pinned by digest (the server pinned it at submission): only ``repo@sha256:…`` is pulled, since a
            # tag could name another image by now, or re-tag one this worker already has (the host's environment)
            return pull_image(
                self.images, str(source["reference"]), max_bytes=max_bytes, numeric_user=self.numeric_user
            )
        if files.image is None:
            raise ImageRefused("the submission names no container image")
        image = load_image(self.images, files.image, max_bytes=max_bytes, numeric_user=self.numeric_user)
        expected = spec.get("image_digest") or ""
        if expected and image.digest != expected:
            self._release(image)
            raise ImageRefused(
                f"the uploaded image is not the one that was submitted (expected {expected[:19]}…, "
                f"the tarball holds {image.digest[:19]}…); submit it again"
            )
        return image

    def _environment_image(self, spec: dict[str, Any], files: ContainerFiles) -> str:
        """The host's environment image, as the backend runs it. Host images are trusted (no participant
        checks) and loaded once per tarball; a reference must already be on the engine."""
        import docker.errors

        source = spec.get("environment") or {}
        if source.get("reference"):
            reference = str(source["reference"])
            if self.registry is not None:  # the cluster pulls it; this engine may not have it
                return reference
            try:
                return str(self.images.images.get(reference).id)
            except docker.errors.ImageNotFound:
                raise ImageRefused(
                    f"the environment image {reference} is not on this worker's Docker engine; "
                    "the host must docker pull or docker load it there"
                ) from None
        if files.environment is None or not source.get("file"):
            raise ImageRefused("the phase names no environment image (environment_image in the bundle)")
        sha = str(source["file"].get("sha256") or files.environment.parent.name)
        known = self._environments.get(sha)
        if known is not None and (self.registry is not None or self._present(known)):
            return known
        with open(files.environment, "rb") as handle:
            try:
                loaded = self.images.images.load(handle)
            except docker.errors.APIError as exc:
                raise ImageRefused(f"the environment image could not be loaded: {_explain(exc)}") from exc
        if len(loaded) != 1:
            raise ImageRefused(f"the environment tarball must hold exactly one image, not {len(loaded)}")
        image_id = str(loaded[0].id)
        if is_root_user((loaded[0].attrs.get("Config") or {}).get("User")):
            log.info("environment image %s has no non-root USER: it runs as nobody", image_id[:19])
        runnable = self._publish(image_id) if self.registry is not None else image_id
        self._environments[sha] = runnable
        log.info("loaded the environment image %s (tarball %s…)", image_id[:19], sha[:12])
        return runnable

    def _present(self, image_id: str) -> bool:
        import docker.errors

        try:
            self.images.images.get(image_id)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _runnable(self, image: AcceptedImage) -> str:
        return self._publish(image.reference) if self.registry is not None else image.reference

    def _publish(self, image_id: str) -> str:
        """Push a loaded image to the cluster's registry; returns ``repo@sha256:…`` (content-addressed)."""
        import docker.errors

        repository = f"{self.registry}/assay-images"
        tag = image_id.removeprefix("sha256:")[:40]
        try:
            self.images.images.get(image_id).tag(repository, tag)
            digest = None
            for line in self.images.api.push(repository, tag=tag, stream=True, decode=True):
                if line.get("error"):
                    raise ContainerUnavailable(f"could not push to {self.registry}: {line['error']}")
                digest = (line.get("aux") or {}).get("Digest") or digest
        except docker.errors.DockerException as exc:
            raise ContainerUnavailable(f"could not push to {self.registry}: {_explain(exc)}") from exc
        if not digest:
            raise ContainerUnavailable(f"the registry {self.registry} reported no digest for the pushed image")
        return f"{repository}@{digest}"

    def _release(self, image: AcceptedImage) -> None:
        try:
            release_image(self.images, image)
        except Exception as exc:  # noqa: BLE001 - the result stands; the image is an operator's leftover
            log.warning("could not remove the participant image %s: %s", image.reference[:19], exc)


class CodeBundleRunner:
    """Code bundles of static-dataset phases, in the bubblewrap process sandbox: no Docker needed.

    The :class:`ProcessBackend` is made at the first such job (a worker that never meets one never
    probes bwrap for it); where bwrap cannot sandbox, each code-bundle job fails with that reason,
    because participant code never runs unsandboxed. ``workdir`` may be the :class:`ContainerRunner`'s
    own: job folders are private and unpacked inputs are shared by their sha256.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._backend: ProcessBackend | None = None
        self._lock = threading.Lock()

    def backend(self) -> ProcessBackend:
        """The process backend; :class:`ContainerUnavailable` with the reason when bwrap cannot sandbox here."""
        with self._lock:
            if self._backend is None:
                self.workdir.mkdir(parents=True, exist_ok=True)
                (self.workdir / "runs").mkdir(mode=0o700, exist_ok=True)
                self._backend = ProcessBackend(self.workdir / "sandboxes")
                log.info("code bundles: on, %s", self._backend.describe())
            return self._backend

    def available(self) -> bool:
        """Whether bubblewrap can sandbox here (probed once): the worker asks for code-bundle jobs only then."""
        from assay.evaluation.sandbox import detect_sandbox

        report = detect_sandbox()
        return report.usable and report.bwrap is not None

    def stop_all(self) -> None:
        """End every code bundle in progress (the worker is stopping); never raises."""
        if self._backend is not None:
            try:
                self._backend.stop_all()
            except Exception as exc:  # noqa: BLE001 - shutting down: say so and carry on
                log.warning("could not stop the running code bundles: %s", exc)

    def evaluate(
        self, job: dict[str, Any], files: ContainerFiles, pool: EvaluatorPool, handle: RunHandle | None = None
    ) -> EvaluationOutcome:
        """Unpack, run and score one code bundle; every failure is an outcome, never an exception.
        ``handle.stop()`` kills this bundle's process tree and scoring alone."""
        spec = job.get("container") or {}
        if spec.get("kind") != "static_dataset":
            return failed("code bundles are taken only by static-dataset phases; submit a container image")
        if files.evaluation is None:
            return failed("the phase has no evaluation script to score the code's predictions")
        if files.code is None:
            return failed("the submission names no code bundle")
        try:
            backend = self.backend()
        except ContainerUnavailable as exc:
            log.error("code bundle job %s: %s", job.get("submission_id"), exc)
            return failed(f"this worker cannot run code bundles: {exc}")
        workdir = Path(tempfile.mkdtemp(prefix=f"job-{job.get('submission_id', 'x')}-", dir=self.workdir / "runs"))
        try:
            code = workdir / "code"
            max_bytes = int(spec.get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES)
            try:
                safe_extract(files.code, code, max_total_bytes=max_bytes, max_entries=MAX_CODE_ENTRIES)
            except UnsafeZipError as exc:
                return failed(f"the code bundle cannot be unpacked safely: {exc}", sandbox=backend.describe())
            inputs = prepare_inputs(spec, files.test_inputs, workdir, self.workdir / "inputs")
            run = run_static_dataset(
                backend,
                str(code),
                inputs,
                workdir / "static",
                limits=files.evaluation.limits,
                who="participant's code",
                handle=handle,
            )
            return score_static(run, files.evaluation, pool, "participant code", handle)
        except UnsafeRun as exc:
            return failed(f"the worker refused to run the code bundle: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def is_code_bundle(job: dict[str, Any]) -> bool:
    """Whether a container job's submission is a code bundle (a zip), not an image."""
    return bool(((job.get("container") or {}).get("image") or {}).get("code"))


def score_static(
    run: StaticRun, evaluation: EvaluationJob, pool: EvaluatorPool, who: str, handle: RunHandle | None = None
) -> EvaluationOutcome:
    """A static-dataset run's predictions scored by the evaluator pool like an uploaded file, or its failure."""
    failure = run.failure()
    if failure is not None:
        return failure
    assert run.predictions is not None
    scored = pool.evaluate(dataclasses.replace(evaluation, submission_file=run.predictions), handle)
    stdout, stderr = scored.stdout, scored.stderr
    if run.outcome.stdout or run.outcome.stderr:  # the participant's own logs, for their debugging
        stdout = _section(who, run.outcome.stdout, stdout)
        stderr = _section(who, run.outcome.stderr, stderr)
    return dataclasses.replace(
        scored,
        stdout=stdout,
        stderr=stderr,
        duration=run.outcome.duration + scored.duration,
        sandbox=f"{who}: {run.sandbox}; scoring: {scored.sandbox}"[:MAX_SANDBOX_CHARS],
    )


def prepare_inputs(spec: dict[str, Any], inputs: Path | None, workdir: Path, cache: Path) -> Path:
    """What is mounted at ``/input``: an empty folder, the file itself, or a zip unpacked once into ``cache``."""
    if inputs is None:
        empty = workdir / "no-inputs"
        empty.mkdir(mode=0o755)
        return empty
    if inputs.suffix.lower() != ".zip":
        _readable(inputs)
        return inputs
    sha = (spec.get("test_inputs") or {}).get("sha256") or inputs.parent.name
    folder = cache / sha
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".part-", dir=folder.parent))
    try:
        safe_extract(inputs, partial / "inputs", max_total_bytes=MAX_INPUT_BYTES, max_entries=1_000_000)
        os.replace(partial / "inputs", folder)
    except UnsafeZipError as exc:
        raise UnsafeRun(f"the phase's test inputs zip cannot be unpacked safely: {exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def open_runner(mode: str, workdir: Path) -> ContainerRunner | None:
    """The container runner for ``--containers MODE`` (in ``workdir/containers``), or None when this worker
    takes no container jobs. ``workdir`` is the worker's: its file cache is mounted into containers too.

    ``auto`` probes the Docker engine once and logs the answer; ``docker`` and ``kubernetes`` raise
    :class:`ContainerUnavailable` with the reason when their engine cannot be used.
    """
    if mode not in MODES:
        raise ValueError(f"--containers must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        log.info("container jobs: off (this worker never claims them)")
        return None
    if mode == "kubernetes":
        return _kubernetes_runner(workdir)
    from assay.evaluation.containers.docker_backend import DockerBackend

    try:
        version = DockerBackend(timeout=10.0).client.version().get("Version", "?")  # a quick probe
    except Exception as exc:  # noqa: BLE001 - whatever the probe met, the engine is not usable
        if mode == "docker":
            if isinstance(exc, ContainerUnavailable):
                raise
            raise ContainerUnavailable(f"the Docker engine does not answer properly: {exc}") from exc
        log.info("container jobs: off (%s)", exc)
        return None
    backend = DockerBackend(timeout=600.0)  # the runs' client: loading a large image takes a while
    log.info("container jobs: on, Docker engine %s", version)
    return ContainerRunner(backend, workdir / "containers", images=backend.client)


def _kubernetes_runner(workdir: Path) -> ContainerRunner:
    """Kubernetes Jobs, configured from the environment (credentials: in-cluster or kubeconfig).

    ``ASSAY_KUBERNETES_PVC`` (required) names a ReadWriteMany claim that this worker sees at
    ``ASSAY_KUBERNETES_DATA_ROOT`` (default: its workdir, which must be on it: cached inputs are mounted
    from there); ``ASSAY_KUBERNETES_REGISTRY`` (required)
    receives participant images, loaded and checked on a local Docker engine first;
    ``ASSAY_KUBERNETES_NAMESPACE`` (default ``assay-runs``) and ``ASSAY_KUBERNETES_RUNTIME_CLASS``.
    """
    try:
        from kubernetes import client as k8s

        from assay.evaluation.containers.kubernetes_backend import KubernetesBackend
    except ImportError as exc:
        raise ContainerUnavailable(str(exc)) from exc
    from assay.evaluation.containers.docker_backend import DockerBackend

    claim = os.environ.get("ASSAY_KUBERNETES_PVC")
    registry = os.environ.get("ASSAY_KUBERNETES_REGISTRY")
    if not claim or not registry:
        raise ContainerUnavailable(
            "--containers kubernetes needs ASSAY_KUBERNETES_PVC (a ReadWriteMany claim holding the worker's "
            "workdir) and ASSAY_KUBERNETES_REGISTRY (where participant images are pushed for the cluster)"
        )
    data_root = Path(os.environ.get("ASSAY_KUBERNETES_DATA_ROOT") or workdir).resolve()
    if not workdir.resolve().is_relative_to(data_root):
        raise ContainerUnavailable(f"the workdir {workdir} must be on the shared volume ({data_root})")
    backend = KubernetesBackend(
        os.environ.get("ASSAY_KUBERNETES_NAMESPACE") or "assay-runs",
        data_volume=k8s.V1Volume(
            name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim)
        ),
        data_root=data_root,
        runtime_class=os.environ.get("ASSAY_KUBERNETES_RUNTIME_CLASS") or None,
    )
    backend._api()  # credentials now, not at the first job
    images = DockerBackend(timeout=600.0).client
    log.info("container jobs: on, Kubernetes namespace %s, images pushed to %s", backend.namespace, registry)
    return ContainerRunner(backend, workdir / "containers", images=images, registry=registry, numeric_user=True)


def _readable(path: Path) -> None:
    """Let a container's non-root user read a downloaded file (downloads are created 0600).

    Only files of the worker's cache (a folder named by their sha256) are changed; a host's own local
    file keeps its mode, and a warning says why the container may not read it.
    """
    mode = path.stat().st_mode
    if mode & 0o444 == 0o444:
        return
    if re.fullmatch(r"[0-9a-f]{64}", path.parent.name):
        path.chmod(mode | 0o444)
    else:
        log.warning("%s is not readable by others: the container's non-root user may not read it", path)


def _section(title: str, container: str, scoring: str) -> str:
    return f"--- {title} ---\n{container}\n--- evaluation script ---\n{scoring}"
