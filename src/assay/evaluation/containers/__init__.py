"""Participant and host containers: image intake, a runner interface, Docker and Kubernetes backends.

Pure Python (no Django). The backends need the optional extra ``assay[containers]`` (the ``docker``
and ``kubernetes`` SDKs) and are imported from their modules, so this package imports without them::

    from assay.evaluation.containers import run_static_dataset, load_image
    from assay.evaluation.containers.docker_backend import DockerBackend

    backend = DockerBackend()
    image = load_image(backend.client, Path("submission.tar"), max_bytes=2 * 1024**3)
    run = run_static_dataset(backend, image.reference, test_inputs, workdir, limits=limits)
    # run.predictions is then scored by the phase's evaluation script (EvaluatorPool.evaluate)

Modules: ``contract`` (ContainerRun, ContainerOutcome, ContainerBackend), ``intake`` (docker save
tarballs), ``submissions`` (static-dataset and agent ↔ environment runs), ``docker_backend``,
``kubernetes_backend``.
"""

from .contract import (
    ContainerBackend,
    ContainerOutcome,
    ContainerRun,
    ContainerUnavailable,
    UnsafeRun,
    is_root_user,
)
from .intake import AcceptedImage, ImageManifest, ImageRefused, load_image, read_manifest, release_image
from .submissions import SUBMISSION_FILES, StaticRun, read_environment_result, run_environment, run_static_dataset

__all__ = [
    "SUBMISSION_FILES", "AcceptedImage", "ContainerBackend", "ContainerOutcome", "ContainerRun",
    "ContainerUnavailable", "ImageManifest", "ImageRefused", "StaticRun", "UnsafeRun", "is_root_user", "load_image",
    "read_environment_result", "read_manifest", "release_image", "run_environment", "run_static_dataset",
]  # fmt: skip
