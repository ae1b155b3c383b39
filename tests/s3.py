"""A real S3 API server for the tests: moto's server mode (``moto[server]``, the test extra) in a subprocess.

``s3_server`` (session) starts it on a free loopback port and gives its endpoint URL; ``s3_bucket`` makes
a fresh bucket per test; ``s3_storage`` points the server's default storage at that bucket for one test
(the local MEDIA_ROOT is then the ``media`` fixture's empty folder, so a test can assert nothing landed
there). ``s3_settings(endpoint, bucket)`` is the environment a server process needs to use it — for suites
that start real server processes. A suite gets the fixtures by importing them into its conftest
(``from tests.s3 import s3_server, …``; tests/server's does). Needs only the test extra: no Docker, no MinIO.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

ACCESS_KEY = "assay-test"  # moto accepts any credentials; real ones are never needed
SECRET_KEY = "assay-test-secret"
REGION = "us-east-1"


def s3_settings(endpoint: str, bucket: str, prefix: str = "") -> dict[str, str]:
    """The environment that puts a server's files in ``bucket`` on the S3 API server at ``endpoint``."""
    return {
        "ASSAY_STORAGE_URL": f"s3://{bucket}/{prefix}".rstrip("/"),
        "ASSAY_S3_ENDPOINT_URL": endpoint,
        "ASSAY_S3_REGION": REGION,
        "ASSAY_S3_ACCESS_KEY": ACCESS_KEY,
        "ASSAY_S3_SECRET_KEY": SECRET_KEY,
        "ASSAY_S3_ADDRESSING_STYLE": "path",  # loopback has no per-bucket host names
    }


def s3_client(endpoint: str):
    """A plain boto3 client of the test server (to look at the bucket behind the server's back)."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )


@dataclass
class S3Server:
    endpoint: str

    def new_bucket(self, name: str = "") -> str:
        name = name or f"assay-{uuid.uuid4().hex[:16]}"
        s3_client(self.endpoint).create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = s3_client(self.endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 API server on loopback for the whole session (it starts in about half a second)."""
    for _ in range(3):  # the port was free when asked; another process could take it before moto binds
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        proc.wait()
    else:
        raise RuntimeError(f"moto's S3 server did not start: {proc.stderr.read().decode(errors='replace')[-2000:]}")
    try:
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket of the test S3 server."""
    return s3_server.new_bucket()


@pytest.fixture
def s3_storage(settings, media, s3_server: S3Server, s3_bucket: str) -> str:
    """The server's files in ``s3_bucket`` (under the prefix ``media``); the local MEDIA_ROOT is the
    ``media`` fixture's fresh folder, so a test can assert nothing was written there. Gives the bucket."""
    from assay.server.storage_config import default_storage_settings

    settings.STORAGES = {
        **settings.STORAGES,
        "default": default_storage_settings(s3_settings(s3_server.endpoint, s3_bucket, "media")),
    }
    return s3_bucket
