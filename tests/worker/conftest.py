"""The container tests' real Docker engine and busybox test images, for the worker's container-job tests."""

from tests.containers.conftest import docker_client, images  # noqa: F401
