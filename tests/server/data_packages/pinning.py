"""Builders for phases that pin a data package version: the demo bundle with a ``data_package`` key, and
packages published from the demo's own annotations through the real publishing service."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from assay.bundle import read_bundle
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.data_packages.models import DataPackage, DataPackageVersion
from assay.server.data_packages.services import publishing
from tests.factories import DEMO_BUNDLE

from .archives import package_zip

DEV_LABELS = (DEMO_BUNDLE / "annotations" / "dev_annotations.json").read_bytes()
CASES = b"case_id,sex,age_band\ndev-a0,F,40-60\ndev-a1,M,60+\n"


def flipped(labels: bytes) -> bytes:
    """The same cases with every label of the public split flipped: a version whose scores differ."""
    data = json.loads(labels)
    data["public"] = {case: 1 - int(value) for case, value in data["public"].items()}
    return json.dumps(data).encode()


def package(user, host_team, slug: str = "even-numbers", access: str = "on_request") -> DataPackage:
    return publishing.create_package(user, host_team.pk, slug, "Even numbers", access, {"summary": "Numbers."})


def publish(user, pkg: DataPackage, files: dict[str, bytes]) -> DataPackageVersion:
    return publishing.publish_version(user, pkg, io.BytesIO(package_zip(files)), "")


def labels_version(user, pkg: DataPackage, labels: bytes = DEV_LABELS, **more: bytes) -> DataPackageVersion:
    """A version with ``labels/dev.json`` (the demo's dev annotations unless given), an input file, and ``more``."""
    files = {"labels/dev.json": labels, "inputs/numbers.txt": b"1\n2\n3\n", "metadata/cases.csv": CASES}
    files.update({path.replace("__", "/"): data for path, data in more.items()})
    return publish(user, pkg, files)


def bundle_folder(
    tmp_path: Path, ref: dict[str, Any] | None, name: str = "bundle", top: dict[str, Any] | None = None, **dev: Any
) -> Path:
    """The demo bundle whose dev phase takes ``ref`` as its ``data_package`` (and drops its own annotation
    file) — or keeps embedding it when ``ref`` is None; ``dev`` sets more keys of the dev phase, ``top`` of
    the challenge."""
    folder = tmp_path / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(DEMO_BUNDLE, folder)
    config_path = folder / "challenge_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    phase = next(p for p in config["challenge_phases"] if p["codename"] == "dev")
    if ref is not None:
        phase.pop("test_annotation_file")
        phase["data_package"] = ref
    phase.update(dev)
    config.update(top or {})
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def import_folder(folder: Path, host_team, challenge=None, user=None):
    with read_bundle(folder) as bundle:
        return import_bundle(bundle, host_team=host_team, challenge=challenge, user=user)


def ref(version: int = 1, slug: str = "even-numbers", **files: str) -> dict[str, Any]:
    return {"name": slug, "version": version, "annotations": "labels/dev.json", **files}
